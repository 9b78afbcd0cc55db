//! State survives restarts, checked from outside through a real broker:
//! a stopped and restarted `care run` publishes exactly what one that never
//! stopped would, a dormancy deadline that passes while care is down fires
//! once after restart, topics that cannot hold a task's state together
//! fail at start, and a second process with a live one's instance id exits.

mod common;

use std::time::Duration;

use common::*;

/// Runs care until every record produced so far is committed, then stops it.
fn run_until_committed(cfg: &std::path::Path, group: &str, source: &str, partitions: i32, records: i64) {
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(
        wait_for(Duration::from_secs(60), || committed_total(group, source, partitions) == records),
        "care did not commit all {records} records: {}",
        committed_total(group, source, partitions)
    );
    assert!(care.terminate(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_run_publishes_exactly_what_an_uninterrupted_one_would() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(23);
    let group = unique("care");
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &group, port, ""));
    let replay_state = std::env::temp_dir().join(format!("{}.jsonl", unique("state")));
    let want = replay_with(&cfg, &recs, 3, &["--state", replay_state.to_str().unwrap()]);
    let to_topic = |part: &[(Option<String>, Vec<u8>)]| part.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>();

    // Three lives, each stopped mid-stream: every customer's history must
    // come back from the changelog for the declines and dormancies to match.
    let cuts = [0, recs.len() / 3, 2 * recs.len() / 3, recs.len()];
    for w in cuts.windows(2) {
        produce(&to_topic(&recs[w[0]..w[1]]));
        run_until_committed(&cfg, &group, &source, 3, w[1] as i64);
    }
    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], want.len() + 1, Duration::from_secs(5));
    assert_eq!(got.len(), want.len(), "published {} records, an uninterrupted run {}", got.len(), want.len());
    assert_same_records(got.iter().map(from_kafka).collect(), want, &outs[2]);

    // The changelog holds every customer and one meta record per task.
    let changelog = consume(&[&format!("{group}-care-changelog")], 10_000, Duration::from_secs(5));
    let customers: std::collections::BTreeSet<&str> = changelog.iter().filter(|r| r.raw_key.as_deref().is_some_and(|k| k.first() != Some(&0xff))).map(|r| r.key.as_str()).collect();
    assert_eq!(customers.len(), 36, "every customer, and nothing for the dead letters: {customers:?}");
    assert!(changelog.iter().filter(|r| r.raw_key.as_deref().is_some_and(|k| k.first() == Some(&0xff))).count() >= 3);

    // Restored state equals replayed state, customer by customer, every field.
    let restored = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["state", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    let customers = |text: &str| -> Vec<serde_json::Value> {
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|v| v.get("customer").is_some()).collect()
    };
    let restored = customers(&String::from_utf8(restored.stdout).unwrap());
    let replayed = customers(&std::fs::read_to_string(&replay_state).unwrap());
    assert_eq!(restored.len(), 36);
    assert_eq!(restored, replayed, "restored state differs from replayed state");
    let one = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["state", "--config", cfg.to_str().unwrap(), "--customer", "cust-07"]).output().unwrap();
    let one = customers(&String::from_utf8(one.stdout).unwrap());
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["customer"]["customer_id"], "cust-07");
    // Printed for people: times in RFC 3339, every field named.
    let first_seen = one[0]["customer"]["first_seen"].as_str().unwrap_or_else(|| panic!("{}", one[0]));
    assert!(chrono::DateTime::parse_from_rfc3339(first_seen).is_ok(), "{first_seen}");
    let text = one[0].to_string();
    assert!(!text.contains("_ms\"") && !text.contains("[["), "epoch ms or positional arrays in {text}");
    let meta = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["state", "--config", cfg.to_str().unwrap(), "--partition", "0"]).output().unwrap();
    let meta: serde_json::Value = serde_json::from_str(String::from_utf8(meta.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert!(meta["meta"]["stream_time"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()), "{meta}");
    assert!(meta["meta"]["offsets"][0]["next_offset"].as_i64().is_some_and(|o| o > 0), "{meta}");
    let _ = std::fs::remove_file(cfg);
    let _ = std::fs::remove_file(replay_state);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dormancy_deadline_that_passed_while_down_fires_once_after_restart() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    let click = |id: &str, d: i64| (source.clone(), Some(id.to_string()), format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{}}}"#, T0 + d * DAY + 3_600_000).into_bytes());
    let group = unique("care");
    let cfg = write_config(&config(&source, &outs, &group, free_port(), ""));

    let before: Vec<_> = (0..5).map(|d| click("a", d)).chain((0..10).map(|d| click("b", d))).collect();
    produce(&before);
    run_until_committed(&cfg, &group, &source, 1, before.len() as i64);
    assert!(consume(&[&outs[1]], 1, Duration::from_secs(2)).is_empty(), "nothing is due before the restart");

    // Both deadlines (a: day 4 + 60, b: day 9 + 60) pass in stream time only
    // with this record, read by the restarted instance from restored state
    // and timers; b's click then reactivates b.
    produce(&[click("b", 80)]);
    run_until_committed(&cfg, &group, &source, 1, before.len() as i64 + 1);
    let triggers = consume(&[&outs[1]], 4, Duration::from_secs(5));
    let dormant: Vec<_> = triggers.iter().map(|t| (t.key.as_str(), t.header("ce_type").unwrap_or_default(), t.header("ce_time").unwrap_or_default())).collect();
    let want = [
        ("a", "io.care.dormant.v1", "2025-03-06T01:00:00.000Z"),
        ("b", "io.care.dormant.v1", "2025-03-11T01:00:00.000Z"),
        ("b", "io.care.reactivated.v1", "2025-03-22T01:00:00.000Z"),
    ];
    assert_eq!(dormant, want, "each once, at the last click + 60 days");
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changelog_with_another_partition_count_fails_at_start_naming_both() {
    let source = unique("web");
    let outs = outputs();
    let group = unique("care");
    let changelog = format!("{group}-care-changelog");
    create_topics(&[&source], 2).await;
    create_topics(&[&changelog], 3).await;
    let cfg = write_config(&config(&source, &outs, &group, free_port(), ""));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{source:?} has 2")) && err.contains(&format!("{changelog:?} has 3")), "{err}");
    let _ = std::fs::remove_file(cfg);
}

/// Two live processes with one instance id: the one started second exits
/// naming the id, the first is not fenced and finishes the stream exactly,
/// and once the first stops cleanly the id is free again at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_with_a_live_instance_id_exits_and_the_first_carries_on() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(41);
    let group = unique("care");
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &group, port, ""));
    let want = replay_records(&cfg, &recs, 3);
    let to_topic = |part: &[(Option<String>, Vec<u8>)]| part.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>();
    let half = recs.len() / 2;
    let args = ["run", "--config", cfg.to_str().unwrap(), "--instance-id", "twin"];

    produce(&to_topic(&recs[..half]));
    let first = CareProcess::start(&args);
    assert!(wait_for(Duration::from_secs(60), || committed_total(&group, &source, 3) == half as i64), "the first never caught up");

    // Its own HTTP port, or it would fail on that before anything else.
    let cfg2 = write_config(&config(&source, &outs, &group, free_port(), ""));
    let second = CareProcess::start_capturing(&["run", "--config", cfg2.to_str().unwrap(), "--instance-id", "twin"]);
    let (status, err) = second.exit_with_stderr(Duration::from_secs(30));
    assert!(!status.success(), "the second process must not run");
    assert!(err.contains(r#"instance id "twin" is in use by a live process"#), "{err}");

    produce(&to_topic(&recs[half..]));
    assert!(
        wait_for(Duration::from_secs(60), || committed_total(&group, &source, 3) == recs.len() as i64),
        "the first process was stopped or fenced: {} of {} committed",
        committed_total(&group, &source, 3),
        recs.len()
    );
    assert!(first.terminate(Duration::from_secs(30)).success(), "the first exits cleanly");
    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], want.len() + 1, Duration::from_secs(5));
    assert_eq!(got.len(), want.len(), "published {} records, an uninterrupted run {}", got.len(), want.len());
    assert_same_records(got.iter().map(from_kafka).collect(), want, &outs[2]);

    // Stopped cleanly: its last word on the id is a tombstone, so a restart
    // does not wait, and it runs.
    let said = consume(&[&format!("{group}-care-instances")], 1_000_000, Duration::from_secs(3));
    let last = said.iter().filter(|r| r.key == "twin").last().expect("the first announced its id");
    assert!(last.value.is_empty(), "last record for the id is a tombstone: {:?}", String::from_utf8_lossy(&last.value));
    let third = CareProcess::start(&args);
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/readyz").0 == 200), "a restart with the freed id runs");
    assert!(third.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
    let _ = std::fs::remove_file(cfg2);
}

/// A metric's value on `/metrics`, if the series is there.
fn sample(port: u16, series: &str) -> Option<i64> {
    http_get(port, "/metrics").1.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok()).map(|v| v as i64)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_shows_its_progress_in_metrics_and_says_what_it_waits_for() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    let recs = stream_of(31, 40, 0);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let group = unique("care");
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &group, port, ""));
    run_until_committed(&cfg, &group, &source, 1, recs.len() as i64);

    // The restart's restore pauses 3 s halfway through the changelog.
    let care = CareProcess::start_capturing_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_FAULT", "slow_restore")]);
    let (remaining, customers) = ("care_restore_records_remaining{task=\"0_0\"}", "care_restore_customers{task=\"0_0\"}");
    assert!(
        wait_for(Duration::from_secs(30), || sample(port, remaining).is_some_and(|n| n > 0) && sample(port, customers).is_some_and(|n| n > 0)),
        "progress while restoring: {:?} {:?}",
        sample(port, remaining),
        sample(port, customers)
    );
    let (_, ready) = http_get(port, "/readyz");
    assert!(ready.contains("0_0 restoring"), "not ready while restoring: {ready}");
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/readyz").0 == 200));
    assert_eq!(sample(port, remaining), Some(0));
    assert_eq!(sample(port, customers), Some(40));
    assert_eq!(sample(port, "care_customers"), Some(40));
    assert!(sample(port, "care_state_bytes").is_some_and(|b| b > 40 * 100), "state size measured once restored: {:?}", sample(port, "care_state_bytes"));
    let (status, log) = care.terminate_with_stderr(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    let waiting = log.lines().find(|l| l.contains("Waiting for a restore")).unwrap_or_else(|| panic!("a restore over a second says so: {log}"));
    assert!(waiting.contains("task=0_0") && !waiting.contains("remaining=0 "), "{waiting}");
    let restored = log.lines().find(|l| l.contains("Task restored")).unwrap_or_else(|| panic!("{log}"));
    assert!(restored.contains("customers=40") && restored.contains("stream_time=20"), "{restored}");
    let _ = std::fs::remove_file(cfg);
}
