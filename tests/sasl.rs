//! care against a broker that requires TLS and SASL, as managed Kafka does:
//! the local broker's SASL_SSL listener (`deploy/local/kafka.sh sasl`),
//! with a SCRAM user and a self-signed CA. With the right credentials the
//! pipeline runs; with a wrong password, an untrusted CA or a mechanism the
//! broker does not offer, care exits at start within 30 s naming the cause
//! and never printing the secret. The password comes from the environment
//! only, and is found neither in the most verbose logs nor in `/metrics`
//! nor in `check-config`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The SASL_SSL listener's client settings, as `kafka.sh sasl` prints them.
fn sasl() -> BTreeMap<String, String> {
    brokers(); // started, SASL listener included
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local/kafka.sh");
    let out = Command::new("bash").arg(script).arg("sasl").output().unwrap();
    assert!(out.status.success(), "this test needs the broker's SASL_SSL listener: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A one-source config whose Kafka settings are `options` over SASL_SSL.
fn sasl_config(source: &str, out: &[String; 3], port: u16, options: &BTreeMap<String, String>) -> std::path::PathBuf {
    let plain = config(source, out, &unique("care"), port, "");
    let text = plain.replace(&format!("brokers = \"{}\"", brokers()), &format!("brokers = \"{}\"", options["bootstrap.servers"]));
    let opts: String = options.iter().filter(|(k, _)| *k != "bootstrap.servers").map(|(k, v)| format!("\"{k}\" = \"{v}\"\n")).collect();
    write_config(&format!("{text}\n[kafka.options]\n{opts}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn care_runs_over_sasl_ssl_with_scram() {
    let opts = sasl();
    let source = unique("web");
    create_topics(&[&source], 1).await;
    let mut recs: Vec<_> = (0..20)
        .map(|i| (source.clone(), Some("s-1".to_string()), format!(r#"{{"user":{{"id":"s-1"}},"type":"click","sent_at":{}}}"#, 1_735_689_600_000i64 + i * 3_600_000).into_bytes()))
        .collect();
    recs.push((source.clone(), None, b"{not json".to_vec()));
    produce(&recs);
    let (out, port) = (outputs(), free_port());
    let mut file_opts = opts.clone();
    let password = file_opts.remove("sasl.password").unwrap();
    file_opts.insert("debug".into(), "security,broker,conf".into());
    let cfg = sasl_config(&source, &out, port, &file_opts);
    let env = [("CARE_KAFKA__OPTIONS__SASL_PASSWORD", password.as_str()), ("CARE_LOG", "trace")];
    let care = CareProcess::start_capturing_with(&["run", "--config", cfg.to_str().unwrap()], &env);
    let dlq = consume(&[&out[2]], 1, Duration::from_secs(60));
    assert_eq!(dlq.len(), 1, "the bad record's dead letter, written over SASL_SSL");
    assert_eq!(dlq[0].value, b"{not json");
    let consumed = || http_get(port, "/metrics").1.lines().filter(|l| l.starts_with("care_events_consumed_total")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>();
    assert!(wait_for(Duration::from_secs(30), || consumed() == 21.0), "consumed {}", consumed());
    assert!(!http_get(port, "/metrics").1.contains(&password), "the password in /metrics");
    let check = Command::new(env!("CARGO_BIN_EXE_care")).args(["check-config", cfg.to_str().unwrap()]).envs(env).output().unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && shown.contains(r#""sasl.password" = "<redacted>""#), "{shown}");
    assert!(shown.contains("kafka.options.\"sasl.password\" from the environment (CARE_KAFKA__OPTIONS__SASL_PASSWORD)"), "{shown}");
    Command::new("kill").arg("-TERM").arg(care.0.id().to_string()).status().unwrap();
    let (status, stderr) = care.exit_with_stderr(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(stderr.contains("SASL") && stderr.len() > 10_000, "the most verbose logs, librdkafka's SASL debug included: {} bytes", stderr.len());
    assert!(!stderr.contains(&password) && !shown.contains(&password), "the password was printed");
    let _ = std::fs::remove_file(cfg);
}

/// Runs care with `options` changed and returns its stderr, asserting it
/// failed at start within 30 s and never printed `secret`.
fn fails_at_start(change: impl FnOnce(&mut BTreeMap<String, String>), secret: &str) -> String {
    let mut opts = sasl();
    change(&mut opts);
    let (out, port) = (outputs(), free_port());
    let cfg = sasl_config("any-topic", &out, port, &opts);
    let started = Instant::now();
    let care = CareProcess::start_capturing(&["run", "--config", cfg.to_str().unwrap()]);
    let (status, stderr) = care.exit_with_stderr(Duration::from_secs(30));
    assert!(!status.success() && started.elapsed() < Duration::from_secs(30), "{status} after {:?}: {stderr}", started.elapsed());
    assert!(!stderr.contains(secret), "the secret was printed: {stderr}");
    let _ = std::fs::remove_file(cfg);
    stderr
}

#[test]
fn a_wrong_password_fails_at_start_naming_authentication() {
    // From a file, as a mounted secret: its content is the password.
    let wrong = "not-the-password-7f3a";
    let file = std::env::temp_dir().join(unique("password"));
    std::fs::write(&file, format!("{wrong}\n")).unwrap();
    let err = fails_at_start(
        |o| {
            o.remove("sasl.password");
            o.insert("sasl.password_file".into(), file.display().to_string());
        },
        wrong,
    );
    assert!(err.to_lowercase().contains("authentication") && err.contains("SCRAM-SHA-256"), "{err}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn an_untrusted_ca_fails_at_start_naming_the_certificate() {
    let password = sasl()["sasl.password"].clone();
    let err = fails_at_start(|o| drop(o.remove("ssl.ca.location")), &password);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn a_mechanism_the_broker_does_not_offer_fails_at_start_naming_it() {
    let password = sasl()["sasl.password"].clone();
    let err = fails_at_start(
        |o| {
            o.insert("sasl.mechanism".into(), "OAUTHBEARER".into());
            o.remove("sasl.username");
            o.remove("sasl.password");
            o.insert("enable.sasl.oauthbearer.unsecure.jwt".into(), "true".into());
            o.insert("sasl.oauthbearer.config".into(), "principal=care".into());
        },
        &password,
    );
    assert!(err.contains("OAUTHBEARER") && err.contains("SCRAM-SHA-256"), "{err}");
}
