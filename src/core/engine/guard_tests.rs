use super::*;

const PARAMS: GuardParams = GuardParams { factor: 10.0, min_openings: 50 };

/// A day of `clicks` click events and `openings` openings, in time order.
fn day(g: &mut Guard, d: i64, clicks: u32, openings: u32, out: &mut Vec<Anomaly>) -> (u32, u32) {
    let (mut emitted, mut withheld) = (0, 0);
    for i in 0..clicks {
        g.event(Kind::Click, d * DAY_MS + i64::from(i), out);
    }
    for i in 0..openings {
        match g.opening(d * DAY_MS + 1000 + i64::from(i), out) {
            Decision::Emit => emitted += 1,
            Decision::Withhold => withheld += 1,
        }
    }
    (emitted, withheld)
}

#[test]
fn a_surge_far_past_the_tasks_own_history_trips_and_the_source_coming_back_clears() {
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    for d in 0..40 {
        assert_eq!(day(&mut g, d, 1000, 30, &mut out), (30, 0), "day {d}: the usual openings pass");
    }
    assert!(out.is_empty());
    // Clicks stop on day 40; the next day 2,000 openings: 10 × 30 = 300
    // pass, then it trips. Decided at the day's start, it names the kinds
    // the day before was short of.
    assert_eq!(day(&mut g, 40, 0, 30, &mut out), (30, 0));
    assert_eq!(day(&mut g, 41, 0, 2000, &mut out), (300, 1700));
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert!(a.tripped && a.since_ms == 41 * DAY_MS && (a.expected_per_day - 30.0).abs() < 1e-9 && a.threshold == 300.0, "{a:?}");
    assert_eq!(a.kinds_affected, ["click"]);
    // Everyone is open by now: few openings, but clicks are still missing.
    for d in 42..50 {
        assert_eq!(day(&mut g, d, 0, 5, &mut out), (0, 5), "day {d}: still withheld while clicks are away");
    }
    assert_eq!(out.len(), 1);
    // Clicks come back on day 50; the day after it ends, the guard clears.
    day(&mut g, 50, 900, 10, &mut out);
    assert_eq!(day(&mut g, 51, 1000, 30, &mut out), (30, 0));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(!out[1].tripped && out[1].withheld == 1700 + 40 + 10 && out[1].at_ms == 51 * DAY_MS, "{:?}", out[1]);
    assert!(!g.is_tripped());
}

#[test]
fn a_task_without_35_days_of_history_never_trips_then_the_floor_holds_and_factor_zero_turns_it_off() {
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    assert_eq!(day(&mut g, 0, 10, 600, &mut out), (600, 0), "a fresh start: everyone judged at once is no outage");
    for d in 1..70 {
        day(&mut g, d, 10, 0, &mut out);
    }
    assert_eq!(day(&mut g, 70, 0, 60, &mut out), (60, 0), "clicks flow (10 a day is too few to be waited for): no outage");
    let mut busy = Guard::new(PARAMS);
    for d in 0..69 {
        day(&mut busy, d, 100, 0, &mut out);
    }
    day(&mut busy, 69, 0, 0, &mut out);
    assert_eq!(day(&mut busy, 70, 0, 60, &mut out), (50, 10), "clicks stopped, no openings in its history: the floor of 50");
    let mut off = Guard::new(GuardParams { factor: 0.0, min_openings: 50 });
    assert_eq!(day(&mut off, 0, 10, 600, &mut out), (600, 0));
}

/// 600 customers at 1-4 clicks a day and an order a week, for 160 days;
/// with `outage`, clicks stop on days 100-129 while orders flow. Returns
/// the decline and silence `opened` records triggered on days 100-159,
/// and the source anomaly records.
fn run(cfg: &str, outage: bool) -> (usize, Vec<serde_json::Value>) {
    use crate::test_support::{engine, FAR_FUTURE, T0};
    let mut e = engine(cfg);
    let source = e.rules().canonical_source();
    let (mut out, mut seed) = (Vec::new(), 7u64);
    let mut next = || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb) >> 11
    };
    let mut offset = 0;
    for d in 0..160i64 {
        let mut lines: Vec<(i64, String)> = Vec::new();
        for c in 0..600u64 {
            let clicks = 1 + c % 4;
            if !(outage && (100..130).contains(&d)) {
                for _ in 0..clicks {
                    let ts = T0 + d * DAY_MS + (next() % DAY_MS as u64) as i64;
                    lines.push((ts, format!(r#"{{"customer_id":"c{c}","kind":"click","ts":{ts}}}"#)));
                }
            }
            if (d + c as i64) % 7 == 0 {
                let ts = T0 + d * DAY_MS + (next() % DAY_MS as u64) as i64;
                lines.push((ts, format!(r#"{{"customer_id":"c{c}","kind":"order","ts":{ts},"amount":20}}"#)));
            }
        }
        lines.sort();
        for (_, l) in &lines {
            let input = crate::engine::Input { source, partition: 0, offset, key: None, payload: l.as_bytes() };
            offset += 1;
            e.process(&input, FAR_FUTURE, &mut out);
        }
    }
    let in_window = |r: &&crate::render::OutputRecord| (T0 + 100 * DAY_MS..T0 + 160 * DAY_MS).contains(&r.trigger_ms);
    let activity = ["io.care.activity_decline.v2", "io.care.silence.v1"];
    let opened = out.iter().filter(in_window).filter(|r| r.status() == Some(crate::detect::Status::Opened) && activity.contains(&r.header("ce_type").unwrap_or(""))).count();
    let anomalies = out.iter().filter(|r| r.header("ce_type") == Some(crate::render::SOURCE_ANOMALY_CE_TYPE)).map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    (opened, anomalies)
}

#[test]
fn a_clickstream_outage_while_orders_flow_sends_no_alert_storm() {
    let (normal, none) = run("", false);
    assert!(none.is_empty(), "no anomaly without an outage: {none:?}");
    let (unguarded, _) = run("[engine]\noutage_guard_factor = 0\n", true);
    assert!(unguarded > 500, "without the guard the outage opens an episode for nearly every customer: {unguarded}");
    let (guarded, anomalies) = run("", true);
    // At most the floor leaks on the day it trips.
    assert!(guarded <= normal + 50, "{guarded} openings with the guard, {normal} without an outage");
    assert_eq!(anomalies.len(), 2, "tripped once, cleared once: {anomalies:?}");
    assert_eq!((anomalies[0]["status"].as_str(), anomalies[1]["status"].as_str()), (Some("opened"), Some("resolved")));
    assert_eq!(anomalies[0]["kinds_affected"], serde_json::json!(["click"]));
    assert!(anomalies[1]["openings_withheld"].as_u64().unwrap() > 400, "{}", anomalies[1]);
    assert_eq!(anomalies[0]["task"], "0_0");
}

#[test]
fn a_wave_of_openings_while_every_kind_flows_is_sent() {
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    for d in 0..40 {
        day(&mut g, d, 1000, 30, &mut out);
    }
    assert_eq!(day(&mut g, 40, 900, 2000, &mut out), (2000, 0), "customers changing, not a source stopping");
    assert!(out.is_empty());
}
