//! Loyalty through the real broker: `care run` with tiers on, scripted
//! customers on one topic. A climber rises tier by tier with each order, a
//! champion who stops ordering falls tier by tier with time alone, and a
//! customer who goes dormant and comes back has it on their profile. The
//! profiles topic, read to its end, holds each customer's current profile:
//! the same JSON `/customers/{id}` answers.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;
const DAY: i64 = 86_400_000;
const LAST_DAY: i64 = 400;

fn event(customer: &str, kind: &str, day: i64, extra: &str) -> (i64, Vec<u8>) {
    let ts = T0 + day * DAY + 3_600_000;
    (ts, format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{extra}}}"#).into_bytes())
}

fn script() -> Vec<(i64, Vec<u8>)> {
    let mut e: Vec<(i64, Vec<u8>)> = (0..=LAST_DAY).map(|d| event("clock", "click", d, "")).collect();
    // Weekly orders: potential, loyal, champion as F rises.
    e.extend((0..8).map(|k| event("climber", "order", 300 + 7 * k, r#","total":80"#)));
    // Champion by day 50, then no order again: R falls with time.
    e.extend((0..11).map(|k| event("lapser", "order", 5 * k, r#","total":120"#)));
    // Active for a month, away for 90 days (dormant after 60), then back.
    e.extend((0..30).chain(120..=LAST_DAY).map(|d| event("sleeper", "click", d, "")));
    e.sort_by_key(|(ts, _)| *ts);
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn tiers_rise_and_fall_and_the_profiles_topic_ends_with_each_current_profile() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    produce(&script().into_iter().map(|(_, v)| (source.clone(), None, v)).collect::<Vec<_>>());
    let (group, port) = (unique("care"), free_port());
    let cfg = write_config(&format!("{}\n[detect.tiers]\nenabled = true\n", config(&source, &outs, &group, port, "")));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let last = "2026-02-05T01:00:00.000Z";
    assert!(
        wait_for(Duration::from_secs(90), || {
            let (status, body) = http_get(port, "/customers/clock");
            status == 200 && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["as_of"] == last)
        }),
        "care never reached the last day"
    );
    let profiles = profiles_topic(&outs);
    assert_eq!(topic_setting(&profiles, "cleanup.policy").await.as_deref(), Some("compact"), "care creates the profiles topic compacted");
    let got = consume(&[&outs[0], &outs[1], &profiles], usize::MAX, Duration::from_secs(10));
    let (mut tiers, mut history): (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<Value>>) = Default::default();
    for g in &got {
        match g.header("ce_type") {
            Some("io.care.tier_changed.v1") => tiers.entry(g.key.clone()).or_default().push(g.json()["to"].as_str().unwrap().to_string()),
            Some("io.care.customer_profile.v1") => history.entry(g.key.clone()).or_default().push(g.json()),
            _ => {}
        }
    }
    let tiers_of = |who: &str| tiers.get(who).cloned().unwrap_or_default();
    assert_eq!(tiers_of("climber"), ["potential", "loyal", "champion"], "one change per step up, at the order that made it");
    assert_eq!(tiers_of("lapser"), ["potential", "loyal", "champion", "loyal", "at_risk", "lost"], "down by timer as days pass without an order");
    assert!(tiers_of("sleeper").is_empty(), "no orders, no tier");

    // The topic's last profile per customer is their current one: what
    // /customers/{id} answers, but for the time it is as of.
    for who in ["climber", "lapser", "sleeper"] {
        let last = history[who].last().unwrap().clone();
        let (status, body) = http_get(port, &format!("/customers/{who}"));
        assert_eq!(status, 200);
        let mut now: Value = serde_json::from_str(&body).unwrap();
        // What moves with every click or with time alone is as of the
        // last profile there (a profile is not a feed of clicks).
        for drifts in ["as_of", "recent_activity", "reactivation_score", "rfm", "last_seen_at", "last_activity_at", "activity_events"] {
            now[drifts] = last[drifts].clone();
        }
        assert_eq!(last, now, "{who}: the last profile on the topic is the current scorecard");
    }
    let tier_seen: Vec<&str> = history["lapser"].iter().filter_map(|p| p["tier"].as_str()).collect();
    let mut steps = tier_seen.clone();
    steps.dedup();
    assert_eq!(steps, tiers_of("lapser"), "each tier change reaches the profile");
    assert_eq!(history["lapser"].last().unwrap()["tier"], "lost");
    let dormant: Vec<bool> = history["sleeper"].iter().map(|p| p["open_episodes"].get("dormancy").is_some()).collect();
    let mut phases = dormant.clone();
    phases.dedup();
    assert_eq!(phases, [false, true, false], "the profile shows the dormancy while it lasts: {dormant:?}");
    assert!(history["sleeper"].len() <= 12, "a profile when something changes, not one per click (311): {}", history["sleeper"].len());
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}
