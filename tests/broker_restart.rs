//! A broker restart mid-stream is ridden out, checked from outside: care
//! keeps running while its (own, single) broker is down for 10 s and, once
//! it is back, publishes exactly what an uninterrupted run does.
//!
//! This test binary runs its own broker on other ports and data directory,
//! so stopping it disturbs no other test. It also checks `/readyz` is 503
//! while the broker is down and 200 once it is back.
//!
//! About one run in three used to leave care blocked for good in
//! `send_offsets_to_transaction` once the broker was back (librdkafka
//! #5456); care now replaces a producer stuck in a transactional call
//! (`shell::txn`, tested on its own by `CARE_FAULT=hang_offsets`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// A broker of this test's own, stopped when dropped.
struct OwnBroker {
    env: Vec<(&'static str, String)>,
}

impl OwnBroker {
    fn run(&self, cmd: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local/kafka.sh");
        let out = Command::new("bash").arg(script).arg(cmd).envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
        assert!(out.status.success(), "kafka.sh {cmd} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.run("stop"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_restart_mid_stream_is_ridden_out_with_exact_outputs() {
    let data = std::env::temp_dir().join(unique("care-broker"));
    let broker = OwnBroker {
        env: vec![
            ("CARE_KAFKA_PORT", free_port().to_string()),
            ("CARE_KAFKA_CONTROLLER_PORT", free_port().to_string()),
            ("CARE_KAFKA_DATA", data.display().to_string()),
            // The shared broker holds the SASL_SSL port; this one needs none.
            ("CARE_KAFKA_SASL_PORT", "0".to_string()),
        ],
    };
    let addr = broker.run("start");
    // Every helper of this test binary, and the care child, use this broker.
    std::env::set_var("CARE_TEST_BROKERS", &addr);
    assert_eq!(brokers(), addr);

    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream_of(53, 90, 8);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let group = unique("care");
    let port = free_port();
    // A 10 s transaction timeout: should a transactional call hang when the
    // broker is back (librdkafka #5456), the producer is replaced within
    // 10 s (5 s + 5 s of grace to add offsets, 10 s + 5 s to commit).
    let text = config(&source, &outs, &group, port, "")
        .replace("commit_interval_ms = 100", "commit_interval_ms = 100\ntransaction_timeout_ms = 10000")
        // Liveness must ride the 10 s outage out even when it fails after 3 s of a stuck loop.
        .replace(&format!("listen = \"127.0.0.1:{port}\""), &format!("listen = \"127.0.0.1:{port}\"\nstall_secs = 3"));
    let cfg = write_config(&text);
    let want = replay_records(&cfg, &recs, 3);

    let mut care = CareProcess::start_capturing(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(wait_for(Duration::from_secs(30), || committed_total(&group, &source, 3) > 0), "care never committed");
    broker.run("stop");
    std::thread::sleep(Duration::from_secs(10));
    assert!(care.0.try_wait().unwrap().is_none(), "care exited while the broker was down");
    let (status, body) = http_get(port, "/readyz");
    assert_eq!(status, 503, "not ready while Kafka is down: {body}");
    let (status, body) = http_get(port, "/livez");
    assert_eq!(status, 200, "live while Kafka is down (waiting on it is not a stall): {body}");
    let (_, metrics) = http_get(port, "/metrics");
    let errors: Vec<&str> = metrics.lines().filter(|l| l.starts_with("care_") && l.contains("errors_total{") && !l.ends_with(" 0")).collect();
    assert!(errors.iter().any(|l| l.starts_with("care_producer_errors_total{code=\"transport\"}")), "the outage counted by its code: {errors:?}");
    broker.run("start");

    let total = recs.len() as i64;
    if !wait_for(Duration::from_secs(120), || committed_total(&group, &source, 3) == total) {
        // Seen in about one run in eight until session 16: the outage
        // outlived the 10 s transaction timeout, the coordinator fenced the
        // producer, and care stopped (now it replaces the producer). The
        // log is what will say why, should it happen again.
        let committed = committed_total(&group, &source, 3);
        let (_, log) = care.terminate_with_stderr(Duration::from_secs(30));
        panic!("care did not finish after the broker came back: {committed} of {total} committed; its log:\n{log}");
    }
    assert!(care.0.try_wait().unwrap().is_none(), "care exited");
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/readyz").0 == 200), "ready again once Kafka is back");
    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], want.len() + 1, Duration::from_secs(10));
    let (status, log) = care.terminate_with_stderr(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    // What care waited for during the outage is in the log, named.
    assert!(log.lines().any(|l| l.contains("Waiting on Kafka") && l.contains("waiting_for=")), "no named wait in:\n{log}");
    assert_eq!(got.len(), want.len(), "published {} records, an uninterrupted run {}", got.len(), want.len());
    assert_same_records(got.iter().map(from_kafka).collect(), want, &outs[2]);
    let _ = std::fs::remove_file(cfg);
    drop(broker);
    let _ = std::fs::remove_dir_all(data);
}
