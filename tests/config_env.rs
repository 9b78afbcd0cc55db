//! Config from the environment, as a user sets it: `CARE_<SECTION>__<KEY>`
//! over the file (defaults < file < environment), shown by `check-config`
//! with where each value came from; a variable naming nothing fails
//! naming the variable; and a flag wins over both (defaults < file <
//! environment < flags).

mod common;

use std::process::{Command, Output};

fn check_config(file_text: &str, env: &[(&str, &str)]) -> Output {
    let path = std::env::temp_dir().join(format!("{}.toml", common::unique("care-env")));
    std::fs::write(&path, file_text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_care")).args(["check-config", path.to_str().unwrap()]).envs(env.iter().copied()).output().unwrap();
    let _ = std::fs::remove_file(path);
    out
}

const FILE: &str = r#"
[kafka]
brokers = "from-file:9092"
commit_interval_ms = 250

[[sources]]
name = "web-events"
topic = "web.events"
fields = { customer_id = "/u", ts = "/t" }
kind = { fixed = "click" }
"#;

#[test]
fn the_environment_overrides_the_file_and_check_config_says_so() {
    let out = check_config(
        FILE,
        &[
            ("CARE_KAFKA__BROKERS", "from-env:9092"),
            ("CARE_ENGINE__ALLOWED_LATENESS_SECS", "7200"),
            ("CARE_SOURCES__WEB_EVENTS__TOPIC", "web.events.v2"),
            ("CARE_KAFKA__OPTIONS__SASL_OAUTHBEARER_CONFIG", "principal=care secret=marker-9c1"),
            ("CARE_HTTP__TOKEN", "marker-tok-77"),
        ],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "# kafka.brokers from the environment (CARE_KAFKA__BROKERS)",
        "# engine.allowed_lateness_secs from the environment (CARE_ENGINE__ALLOWED_LATENESS_SECS)",
        "# sources[web_events].topic from the environment (CARE_SOURCES__WEB_EVENTS__TOPIC)",
        // Each key says where its value came from.
        r#"brokers = "from-env:9092"  # env CARE_KAFKA__BROKERS"#,
        "commit_interval_ms = 250  # file",
        "session_timeout_ms = 10000  # default",
        "allowed_lateness_secs = 7200  # env CARE_ENGINE__ALLOWED_LATENESS_SECS",
        r#"topic = "web.events.v2"  # env CARE_SOURCES__WEB_EVENTS__TOPIC"#,
        r#"name = "web-events"  # file"#,
        r#"customer_id = "/u"  # file"#,
        r#""sasl.oauthbearer.config" = "<redacted>""#,
        r#"token = "<redacted>""#,
    ] {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }
    assert!(!shown.contains("marker-9c1") && !shown.contains("marker-tok-77"), "a secret was printed");
}

#[test]
fn a_variable_that_names_nothing_or_has_the_wrong_type_fails_naming_it() {
    for (var, value, named) in [
        ("CARE_KAFAK__BROKERS", "x:1", "CARE_KAFAK__BROKERS"),
        ("CARE_SOURCES__ORDERS__TOPIC", "o", "CARE_SOURCES__ORDERS__TOPIC"),
        ("CARE_KAFKA__COMMIT_INTERVAL_MS", "soon", "commit_interval_ms"),
        ("CARE_ENGINE__BUKCET_SECS", "60", "bukcet_secs"),
    ] {
        let out = check_config(FILE, &[(var, value)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(named), "{var}: {err}");
    }
    // Variables without a double underscore are not config.
    let out = check_config(FILE, &[("CARE_SOMETHING_ELSE", "1")]);
    assert!(out.status.success());
}

#[test]
fn check_config_takes_config_like_every_other_command() {
    let path = std::env::temp_dir().join(format!("{}.toml", common::unique("care-env")));
    std::fs::write(&path, FILE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_care")).args(["check-config", "--config", path.to_str().unwrap()]).output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(r#"brokers = "from-file:9092""#), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The instance id a running care used, from its transactional id.
async fn instance_id_used(file_id: &str, env: &[(&str, &str)], flag: Option<&str>) -> String {
    use common::*;
    let source = unique("web");
    create_topics(&[&source], 1).await;
    let (outs, group, port) = (outputs(), unique("care"), free_port());
    let text = config(&source, &outs, &group, port, "").replace("[kafka]\n", &format!("[kafka]\ninstance_id = \"{file_id}\"\n"));
    let cfg = write_config(&text);
    let mut args = vec!["run", "--config", cfg.to_str().unwrap()];
    if let Some(f) = flag {
        args.extend(["--instance-id", f]);
    }
    let care = CareProcess::start_capturing_with(&args, env);
    assert!(wait_for(std::time::Duration::from_secs(30), || http_get(port, "/readyz").0 == 200), "care never became ready");
    let (status, stderr) = care.terminate_with_stderr(std::time::Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let _ = std::fs::remove_file(cfg);
    let prefix = format!("transactional_id={group}-");
    let at = stderr.find(&prefix).unwrap_or_else(|| panic!("no transactional id logged: {stderr}")) + prefix.len();
    stderr[at..].split(char::is_whitespace).next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_win_over_the_environment_which_wins_over_the_file() {
    assert_eq!(instance_id_used("from-file", &[], None).await, "from-file");
    assert_eq!(instance_id_used("from-file", &[("CARE_KAFKA__INSTANCE_ID", "from-env")], None).await, "from-env");
    assert_eq!(instance_id_used("from-file", &[("CARE_KAFKA__INSTANCE_ID", "from-env")], Some("from-flag")).await, "from-flag");
}
