//! Exactly-once under faults, checked from outside through a real broker:
//! `care run` killed with SIGKILL at random moments and at named crash
//! points, and a transaction aborted on purpose, still publishes exactly
//! what an uninterrupted run does: for every key the same records in the
//! same order, none missing, none twice.

mod common;

use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const OUTS_AT_LEAST: usize = 20;

fn all_outputs(outs: &[String; 3], want: usize) -> Vec<Rec> {
    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(outs), &anomalies_topic(outs)], want + 1, Duration::from_secs(10));
    got.iter().map(from_kafka).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_and_crash_points_loses_and_repeats_nothing() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream_of(31, 90, 8);
    let group = unique("care");
    let cfg = write_config(&config(&source, &outs, &group, free_port(), ""));
    let want = replay_records(&cfg, &recs, 3);
    for t in &outs {
        let n = want.iter().filter(|r| &r.0 == t).count();
        assert!(n >= OUTS_AT_LEAST, "the script must give at least {OUTS_AT_LEAST} records on {t}, got {n}");
    }
    let total = recs.len() as i64;
    let args = ["run", "--config", cfg.to_str().unwrap()];
    let mut rng = StdRng::seed_from_u64(7);

    // Random SIGKILLs, the stream arriving in chunks so there is always more to do.
    let chunks = 12;
    let mut kills = 0;
    for i in 0..chunks {
        let (from, to) = (recs.len() * i / chunks, recs.len() * (i + 1) / chunks);
        produce(&recs[from..to].iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
        let care = CareProcess::start(&args);
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        if committed_total(&group, &source, 3) < to as i64 {
            kills += 1;
        }
        care.kill9();
    }
    assert!(kills >= 10, "only {kills} kills landed before the end of the input");

    // Crash points: dying after producing, just before committing, and halfway through a restore.
    for fault in ["after_produce:2", "before_commit:3", "mid_restore"] {
        let care = CareProcess::start_with(&args, &[("CARE_FAULT", fault)]);
        let status = care.wait_exit(Duration::from_secs(60));
        assert!(!status.success(), "CARE_FAULT={fault} must kill the process");
    }

    // A last life runs to the end.
    let care = CareProcess::start(&args);
    assert!(wait_for(Duration::from_secs(90), || committed_total(&group, &source, 3) == total), "not all committed");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let got = all_outputs(&outs, want.len());
    assert_eq!(got.len(), want.len(), "published {} records, an uninterrupted run {}", got.len(), want.len());
    assert_same_records(got, want, &outs[2]);
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aborted_transaction_is_invisible_to_read_committed_and_rolled_back() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(41);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let group = unique("care");
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &group, port, "").replace("commit_interval_ms = 100", "commit_interval_ms = 300"));
    let want = replay_records(&cfg, &recs, 3);

    let care = CareProcess::start_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_FAULT", "abort_batch:1")]);
    assert!(wait_for(Duration::from_secs(60), || committed_total(&group, &source, 3) == recs.len() as i64), "not all committed");
    let (_, metrics) = http_get(port, "/metrics");
    assert!(metrics.contains("care_transactions_aborted_total 1"), "one abort: {}", metrics.lines().filter(|l| l.contains("abort")).collect::<Vec<_>>().join("\n"));
    let failed: Vec<&str> = metrics.lines().filter(|l| l.starts_with("care_commit_errors_total") && !l.ends_with(" 0")).collect();
    assert_eq!(failed, ["care_commit_errors_total{code=\"injected\",during=\"batch\"} 1"], "the failed commit, counted by its code");
    let consumed: u64 = metrics.lines().filter(|l| l.starts_with("care_events_consumed_total")).filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum();
    assert_eq!(consumed, recs.len() as u64, "the aborted batch is not counted twice");
    assert!(care.terminate(Duration::from_secs(30)).success());

    let changelog = format!("{group}-care-changelog");
    let topics = [outs[0].as_str(), outs[1].as_str(), outs[2].as_str(), changelog.as_str()];
    let committed = consume(&topics, 1_000_000, Duration::from_secs(5));
    let uncommitted = consume_isolated(&topics, 1_000_000, Duration::from_secs(5), "read_uncommitted");
    assert!(uncommitted.len() > committed.len(), "a read_uncommitted reader sees the aborted records: {} vs {}", uncommitted.len(), committed.len());
    let got = all_outputs(&outs, want.len());
    assert_same_records(got, want, &outs[2]);
    let _ = std::fs::remove_file(cfg);
}

/// A transactional call that never returns (librdkafka's
/// `send_offsets_to_transaction` can hang, #5456) costs a producer, not the
/// process: care replaces the producer, whose transactional id fences the
/// stuck one and aborts its transaction, and the outputs stay exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_transactional_call_that_never_returns_replaces_the_producer() {
    stuck_call_is_survived("hang_offsets:1").await;
}

/// The worst case: a commit that lands but never returns. Its outcome is
/// unknown, so care restores every task from the changelog rather than
/// rolling back (which would publish the landed batch twice).
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_that_lands_but_never_returns_repeats_nothing() {
    stuck_call_is_survived("hang_commit:1").await;
}

/// A transaction open past its timeout, as a broker outage longer than the
/// timeout leaves one, is aborted by its coordinator, which fences the
/// producer (a new epoch): care replaces the producer instead of stopping,
/// restores its tasks (a fence leaves a commit's outcome unknown), and the
/// outputs stay exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_aborted_for_outliving_its_timeout_replaces_the_fenced_producer() {
    stuck_call_is_survived("outlive_txn:1").await;
}

async fn stuck_call_is_survived(fault: &str) {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(43);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let group = unique("care");
    let port = free_port();
    // A 3 s transaction timeout: the hung call counts as stuck after its
    // own timeout (1.5 s to add offsets, 3 s to commit) plus 5 s of grace.
    let text = config(&source, &outs, &group, port, "").replace("commit_interval_ms = 100", "commit_interval_ms = 300\ntransaction_timeout_ms = 3000");
    let cfg = write_config(&text);
    let want = replay_records(&cfg, &recs, 3);

    let care = CareProcess::start_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_FAULT", fault)]);
    let replaced = || http_get(port, "/metrics").1.lines().any(|l| l == "care_producers_replaced_total 1");
    assert!(wait_for(Duration::from_secs(60), replaced), "the stuck producer was never replaced");
    assert!(wait_for(Duration::from_secs(60), || committed_total(&group, &source, 3) == recs.len() as i64), "not all committed");
    assert!(care.terminate(Duration::from_secs(30)).success(), "care lives on and stops cleanly");
    let got = all_outputs(&outs, want.len());
    assert_same_records(got, want, &outs[2]);
    let _ = std::fs::remove_file(cfg);
}
