//! The README's metric table is what `/metrics` of a live `care run`
//! exposes, both ways: every documented metric exists from the start (at
//! zero), nothing undocumented is exported, and `run` exports no series of
//! the canonical source that only `replay` and `demo` read. Its logs are
//! JSON lines with `CARE_LOG_FORMAT=json`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;

/// Metric names in the README's table (`process_*` stands for the family).
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("## Metrics").nth(1).expect("a Metrics section").split("\n## ").next().unwrap();
    table.lines().filter_map(|l| l.strip_prefix("| `")?.split('`').next().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_metric_table_matches_a_live_run_both_ways() {
    let source = unique("web");
    create_topics(&[&source], 1).await;
    let (outs, port) = (outputs(), free_port());
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));
    // A backlog of one record: lag and stream time appear with the first
    // statistics and record, and the task's summary once it has caught up.
    produce(&[(source.clone(), Some("m-1".into()), br#"{"user":{"id":"m-1"},"type":"click","sent_at":1735689600000}"#.to_vec())]);
    let care = CareProcess::start_capturing_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_LOG_FORMAT", "json")]);
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/readyz").0 == 200));
    let exposed = || -> BTreeSet<String> {
        let text = http_get(port, "/metrics").1;
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next().map(str::to_string)).collect()
    };
    assert!(wait_for(Duration::from_secs(30), || exposed().contains("care_stream_time_seconds") && exposed().contains("care_consumer_lag")), "{:?}", exposed());
    let (doc, live) = (documented(), exposed());
    let missing: Vec<&String> = doc.iter().filter(|m| *m != "process_*" && !live.contains(*m)).collect();
    assert!(missing.is_empty(), "documented but not exported: {missing:?}");
    let undocumented: Vec<&String> = live.iter().filter(|m| !doc.contains(*m) && !(m.starts_with("process_") && doc.contains("process_*"))).collect();
    assert!(undocumented.is_empty(), "exported but not in the README's table: {undocumented:?}");
    let text = http_get(port, "/metrics").1;
    assert!(!text.contains("source=\"canonical\""), "run exports the canonical source's series");
    for series in [
        "care_commit_errors_total{code=\"transport\",during=\"revoke\"} 0",
        "care_commit_errors_total{code=\"stuck\",during=\"batch\"} 0",
        "care_consumer_errors_total{code=\"auth\"} 0",
        "care_produce_errors_total{code=\"too_large\"} 0",
        "care_restore_errors_total{code=\"corrupt_record\"} 0",
    ] {
        assert!(text.contains(series), "errors exist at zero from the start, by code: {series} in {text}");
    }
    assert!(!text.contains("care_consumer_errors_total{code=\"corrupt_record\"}"), "no code that cannot occur there");
    // The restore's progress stays at its end while the task lives here.
    assert!(text.contains("care_restore_records_remaining{task=\"0_0\"} 0"), "{text}");
    // Caught up once a lag sample after the record says so; the next
    // turn of the commit interval (100 ms) logs the summary.
    assert!(wait_for(Duration::from_secs(10), || http_get(port, "/metrics").1.lines().any(|l| l.starts_with("care_consumer_lag{") && l.ends_with(" 0"))));
    std::thread::sleep(Duration::from_millis(500));
    let (status, log) = care.terminate_with_stderr(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    // CARE_LOG_FORMAT=json: one JSON object per line, fields included.
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let summary = lines.iter().find(|v| v["fields"]["message"] == "Data summary").unwrap_or_else(|| panic!("no data summary in {log}"));
    assert_eq!(summary["fields"]["consumed"], 1, "{summary}");
    assert_eq!(summary["fields"]["task"], "0_0", "a summary per task: {summary}");
    assert_eq!(summary["fields"]["why"], "caught up after its restore", "at once, not a minute later: {summary}");
    assert_eq!(summary["fields"]["stream_time"], "2025-01-01T00:00:00.000Z", "{summary}");
    let restored = lines.iter().find(|v| v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("Task restored"))).unwrap_or_else(|| panic!("{log}"));
    assert_eq!(restored["fields"]["customers"], 0, "{restored}");
    let _ = std::fs::remove_file(cfg);
}
