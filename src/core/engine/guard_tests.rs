use super::*;

const PARAMS: GuardParams = GuardParams { factor: 10.0, min_openings: 50, activity: crate::event::KindSet::ALL };

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

/// A guard after 40 ordinary days of `clicks` clicks and `openings`
/// openings, and what it reported (nothing: they are ordinary).
fn steady(clicks: u32, openings: u32) -> (Guard, Vec<Anomaly>) {
    let (mut g, mut out) = (Guard::new(PARAMS), Vec::new());
    for d in 0..40 {
        day(&mut g, d, clicks, openings, &mut out);
    }
    (g, out)
}

#[test]
fn a_surge_far_past_the_tasks_own_history_trips_and_the_source_coming_back_clears() {
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    for d in 0..40 {
        assert_eq!(day(&mut g, d, 1000, 30, &mut out), (30, 0), "day {d}: the usual openings pass");
    }
    assert!(out.is_empty());
    // Clicks stop on day 40 (its openings, decided early, are judged by
    // the day before, still whole); the next day 2,000 openings: day 40
    // stalled, so the first trips, with no line to pass. It names the
    // kinds the day before was short of.
    assert_eq!(day(&mut g, 40, 0, 30, &mut out), (30, 0));
    assert_eq!(day(&mut g, 41, 0, 2000, &mut out), (0, 2000));
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
    assert!(!out[1].tripped && out[1].withheld == 2000 + 40 + 10 && out[1].at_ms == 51 * DAY_MS, "{:?}", out[1]);
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
    // Clicks stop at the start of day 70 and openings come at its noon:
    // the day before was whole, so no stall yet; half the day without a
    // click is short, and the floor of 50 holds (no openings in its
    // history).
    let mut busy = Guard::new(PARAMS);
    for d in 0..70 {
        day(&mut busy, d, 100, 0, &mut out);
    }
    let noon = |g: &mut Guard, out: &mut Vec<Anomaly>| (0..60).filter(|i| g.opening(70 * DAY_MS + DAY_MS / 2 + i, out) == Decision::Emit).count();
    assert_eq!(noon(&mut busy, &mut out), 50, "the outage's first day: the floor of 50");
    let mut off = Guard::new(GuardParams { factor: 0.0, min_openings: 50, activity: crate::event::KindSet::ALL });
    assert_eq!(day(&mut off, 0, 10, 600, &mut out), (600, 0));
}

/// A day of event time of the simulated task.
const SIM_DAY: i64 = DAY_MS;

/// 600 customers at 1-4 clicks a day and an order a week, for `days` days:
/// clicks stop on the days of `outage` while orders flow, and from day
/// `decline_from` the customers [`decliner`] says stop clicking (their
/// orders go on). Returns every output record.
fn simulate(cfg: &str, outage: std::ops::Range<i64>, decline_from: i64, days: i64) -> Vec<crate::render::OutputRecord> {
    simulate_restarting(cfg, outage, 24, decline_from, days, None)
}

/// [`simulate`], the clicks stopping at hour `from_hour` of the day
/// before `outage` (24: at its start), and the task killed at the start of
/// day `restart` and a new one restored from its changelog records.
fn simulate_restarting(cfg: &str, outage: std::ops::Range<i64>, from_hour: i64, decline_from: i64, days: i64, restart: Option<i64>) -> Vec<crate::render::OutputRecord> {
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
    for d in 0..days {
        if restart == Some(d) {
            e = restored(&mut e, engine(cfg));
        }
        let mut lines: Vec<(i64, String)> = Vec::new();
        for c in 0..600u64 {
            let clicks = if d >= decline_from && decliner(c) { 0 } else { 1 + c % 4 };
            if !outage.contains(&d) {
                for _ in 0..clicks {
                    let ts = T0 + d * SIM_DAY + (next() % SIM_DAY as u64) as i64;
                    if d == outage.start - 1 && ts - T0 - d * SIM_DAY >= from_hour * 3_600_000 {
                        continue;
                    }
                    lines.push((ts, format!(r#"{{"customer_id":"c{c}","kind":"click","ts":{ts}}}"#)));
                }
            }
            if (d + c as i64) % 7 == 0 {
                let ts = T0 + d * SIM_DAY + (next() % SIM_DAY as u64) as i64;
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
    out
}

/// `fresh` with what `e` wrote to its changelog, as a restore reads it back.
fn restored(e: &mut crate::engine::Engine, mut fresh: crate::engine::Engine) -> crate::engine::Engine {
    use crate::changelog::{decode_record, Record};
    let mut records = Vec::new();
    e.write_changes(|k, v| {
        records.push((k.to_vec(), v.map(<[u8]>::to_vec)));
        Ok::<(), ()>(())
    })
    .unwrap();
    for (k, v) in &records {
        match decode_record(k, v.as_deref(), fresh.rules().window_width()).unwrap() {
            Record::Meta(m) => fresh.restore_meta(&m),
            Record::Customer(c) => fresh.restore_customer(c),
            Record::Tombstone(id) => fresh.forget(&id),
        }
    }
    fresh
}

/// The customers who really decline in [`simulate`]: 80 of the 600, 20 at
/// each click rate (too few for the guard: clicks stay above half).
fn decliner(c: u64) -> bool {
    c % 30 < 4
}

/// The `opened` records of decline and silence triggered on days `days`.
fn openings(out: &[crate::render::OutputRecord], days: std::ops::Range<i64>) -> impl Iterator<Item = &crate::render::OutputRecord> {
    use crate::test_support::T0;
    let activity = ["io.care.activity_decline.v2", "io.care.silence.v1"];
    let window = T0 + days.start * SIM_DAY..T0 + days.end * SIM_DAY;
    out.iter().filter(move |r| window.contains(&r.trigger_ms) && r.status() == Some(crate::detect::Status::Opened) && activity.contains(&r.header("ce_type").unwrap_or("")))
}

fn anomalies(out: &[crate::render::OutputRecord]) -> Vec<serde_json::Value> {
    out.iter().filter(|r| r.header("ce_type") == Some(crate::render::SOURCE_ANOMALY_CE_TYPE)).map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
}

/// With `outage`, clicks stop on days 100-129. Returns the decline and
/// silence `opened` records triggered on days 100-159, and the source
/// anomaly records.
fn run(cfg: &str, outage: bool) -> (usize, Vec<serde_json::Value>) {
    let out = simulate(cfg, if outage { 100..130 } else { 0..0 }, i64::MAX, 160);
    (openings(&out, 100..160).count(), anomalies(&out))
}

#[test]
fn a_clickstream_outage_while_orders_flow_sends_no_alert_storm() {
    let (normal, none) = run("", false);
    assert!(none.is_empty(), "no anomaly without an outage: {none:?}");
    let (unguarded, _) = run("[engine]\noutage_guard_factor = 0\n", true);
    assert!(unguarded > 500, "without the guard the outage opens an episode for nearly every customer: {unguarded}");
    let (guarded, anomalies) = run("", true);
    // Nothing leaks: the openings come days into the outage, when a whole
    // day of clicks is missing, and the first trips.
    eprintln!("{guarded} openings with the guard, {normal} without an outage, {unguarded} unguarded");
    assert!(guarded <= normal, "{guarded} openings with the guard, {normal} without an outage");
    assert_eq!(anomalies.len(), 2, "tripped once, cleared once: {anomalies:?}");
    assert_eq!((anomalies[0]["status"].as_str(), anomalies[1]["status"].as_str()), (Some("opened"), Some("resolved")));
    assert_eq!(anomalies[0]["kinds_affected"], serde_json::json!(["click"]));
    assert!(anomalies[1]["openings_withheld"].as_u64().unwrap() > 400, "{}", anomalies[1]);
    assert_eq!(anomalies[0]["task"], "0_0");
}

#[test]
fn a_clickstream_stopping_in_the_afternoon_sends_no_alert_either() {
    // The clicks stop at 14:00 on day 99: the day is short by less than a
    // stall (10 of 24 hours missing), yet the outage's openings come days
    // later, after whole days without a click.
    let (normal, _) = run("", false);
    let out = simulate_restarting("", 100..130, 14, i64::MAX, 160, None);
    let sent = openings(&out, 99..160).count();
    assert!(sent <= normal, "{sent} openings with the guard, {normal} without an outage");
    assert_eq!(anomalies(&out).len(), 2, "tripped and cleared: {:?}", anomalies(&out));
}

#[test]
fn a_wave_of_openings_while_every_kind_flows_is_sent() {
    let (mut g, mut out) = steady(1000, 30);
    assert_eq!(day(&mut g, 40, 900, 2000, &mut out), (2000, 0), "customers changing, not a source stopping");
    assert!(out.is_empty());
}

#[test]
fn a_wave_of_openings_on_a_quiet_weekday_is_sent() {
    // Clicks follow a weekly profile with Sundays at 0.6 of the week's
    // mean (the grid's "Mon-Sun 1.05 .. 0.55"); from day 42 a third of the
    // customers change, so the volume thins by a fifth and the openings
    // come by the hundred. A Sunday's clicks are then under half the mean
    // of all days, and not under half the mean of Sundays: no outage (the
    // openings at a Monday's start are judged by the Sunday).
    let (mut g, mut out) = (Guard::new(PARAMS), Vec::new());
    let profile = [1.05, 1.1, 1.1, 1.05, 1.0, 0.6, 0.55];
    for d in 0..70 {
        let thinned = if d >= 42 { 0.8 } else { 1.0 };
        let clicks = (1000.0 * profile[d as usize % 7] * thinned) as u32;
        let openings = if d >= 42 { 120 } else { 6 };
        assert_eq!(day(&mut g, d, clicks, openings, &mut out), (openings, 0), "day {d}");
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_weekly_profile_a_small_kind_and_surveys_stopping_are_no_stall() {
    // Clicks follow a weekly profile with Sundays at 0.4 of the week's
    // mean (under half the mean, but not under half the quietest day),
    // give or take 15 %; orders come 8 a day. Every Monday 40 openings
    // (8 times the usual 5, under the line of 50): sent.
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    let profile = [1.15, 1.15, 1.15, 1.15, 1.15, 0.85, 0.4];
    let mut seed = 3u64;
    for d in 0..140 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let noise = 0.85 + 0.3 * ((seed >> 33) as f64 / (1u64 << 31) as f64);
        let clicks = (1000.0 * profile[d as usize % 7] * noise) as u32;
        // The orders stop on day 100 for good: 8 a day is too few to be
        // waited for. So do the survey answers, 100 a day: no activity
        // kind, their absence opens no decline or silence.
        if d < 100 {
            (0..8).for_each(|i| g.event(Kind::Order, d * DAY_MS + 5000 + i, &mut out));
            (0..100).for_each(|i| g.event(Kind::Survey, d * DAY_MS + 6000 + i, &mut out));
        }
        let openings = if d % 7 == 0 { 40 } else { 5 };
        let (emitted, _) = day(&mut g, d, clicks, openings, &mut out);
        assert_eq!(emitted, openings, "day {d}");
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_small_kinds_quiet_day_is_no_stall_but_its_stopping_is() {
    // Clicks flow at 1,000 a day; logins come 25 a day, 20 on the
    // quietest day. A day of 9 logins is under half that, but within 4
    // standard deviations (√20 ≈ 4.5): chance, so the next day's openings
    // are sent. A day without one is a stall: the next day's first
    // opening trips the guard.
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    let logins = |g: &mut Guard, d: i64, n: u32, out: &mut Vec<Anomaly>| (0..n).for_each(|i| g.event(Kind::Login, d * DAY_MS + 9000 + i64::from(i), out));
    for d in 0..60 {
        logins(&mut g, d, if d == 30 { 20 } else { 25 }, &mut out);
        day(&mut g, d, 1000, 0, &mut out);
    }
    logins(&mut g, 60, 9, &mut out);
    day(&mut g, 60, 1000, 0, &mut out);
    assert_eq!(day(&mut g, 61, 1000, 20, &mut out), (20, 0), "9 logins of 20 at the least: chance");
    logins(&mut g, 61, 25, &mut out);
    day(&mut g, 62, 1000, 0, &mut out);
    assert_eq!(day(&mut g, 63, 1000, 20, &mut out), (0, 20), "a day without a login: a stall");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kinds_affected, ["login"]);
}

#[test]
fn a_kind_retired_upstream_is_waited_for_until_it_is_no_activity_kind() {
    // Logins stop for good on day 60 while clicks flow: the first opening
    // after the stall trips the guard, and it waits for the logins.
    let mut g = Guard::new(PARAMS);
    let mut out = Vec::new();
    let logins = |g: &mut Guard, d: i64, out: &mut Vec<Anomaly>| (0..500).for_each(|i| g.event(Kind::Login, d * DAY_MS + 9000 + i, out));
    for d in 0..60 {
        logins(&mut g, d, &mut out);
        day(&mut g, d, 1000, 2, &mut out);
    }
    day(&mut g, 60, 1000, 0, &mut out);
    assert_eq!(day(&mut g, 61, 1000, 2, &mut out), (0, 2));
    assert_eq!(out[0].kinds_affected, ["login"]);
    for d in 62..70 {
        assert_eq!(day(&mut g, d, 1000, 2, &mut out), (0, 2), "day {d}: the logins are still away");
    }
    assert_eq!(out.len(), 1);
    // Logins taken out of the activity kinds (a restart with the new
    // config restores the history): the next day under the line clears.
    let mut back = Guard::new(GuardParams { activity: crate::event::KindSet::of(&[Kind::Click, Kind::Chat, Kind::Ticket, Kind::Order]), ..PARAMS });
    back.restore(g.history());
    day(&mut back, 70, 1000, 2, &mut out);
    assert_eq!(day(&mut back, 71, 1000, 2, &mut out), (2, 0));
    assert_eq!(out.len(), 2);
    assert!(!out[1].tripped && out[1].kinds_affected.is_empty(), "{:?}", out[1]);
}

/// Days from `from` to each decliner's first decline or silence opening
/// after it (`None` if never within the run).
fn caught_after(out: &[crate::render::OutputRecord], from: i64, days: i64) -> Vec<Option<f64>> {
    use crate::test_support::T0;
    (0..600u64)
        .filter(|c| decliner(*c))
        .map(|c| {
            let id = format!("c{c}");
            let first = openings(out, from..days).filter(|r| r.key.as_deref() == Some(id.as_bytes())).map(|r| r.trigger_ms).min();
            first.map(|t| (t - T0 - from * SIM_DAY) as f64 / SIM_DAY as f64)
        })
        .collect()
}

#[test]
fn after_a_30_day_outage_a_real_decline_is_caught_as_quickly_and_no_wave_follows_the_return() {
    // Clicks stop on days 100-129; 80 customers stop clicking on day 145.
    let (days, decline) = (185, 145);
    let normal = simulate("", 0..0, decline, days);
    let outage = simulate("", 100..130, decline, days);
    assert_eq!(anomalies(&outage).len(), 2, "tripped and cleared: {:?}", anomalies(&outage));
    // The return: a day back, the guard clears; the outage's episodes end
    // without a message and nobody's baseline learned the empty days.
    let (after_normal, after_outage) = (openings(&normal, 130..decline).count(), openings(&outage, 130..decline).count());
    assert!(after_outage <= after_normal + 5, "{after_outage} openings in the 15 days after the return, {after_normal} without an outage");
    let (quick, late) = (caught_after(&normal, decline, days), caught_after(&outage, decline, days));
    assert!(quick.iter().all(Option::is_some) && late.iter().all(Option::is_some), "every decliner caught: {quick:?} {late:?}");
    let mean = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>() / v.len() as f64;
    assert!(mean(&late) <= mean(&quick) + 0.5, "caught {:.2} days after the decline with the outage before, {:.2} without", mean(&late), mean(&quick));
    let slowest = |v: &[Option<f64>]| v.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    assert!(slowest(&late) <= slowest(&quick) + 1.0, "slowest {} against {}", slowest(&late), slowest(&quick));
}

#[test]
fn a_task_restored_mid_outage_keeps_withholding_and_clears_once() {
    let (normal, _) = run("", false);
    // Tripped on day 104 (its first opening); killed on day 110, twenty days before the clicks
    // come back. Restored without its history, the guard would wait 35 days
    // of event time and the openings of days 110-129 would all be sent.
    let out = simulate_restarting("", 100..130, 24, i64::MAX, 160, Some(110));
    let sent = openings(&out, 100..160).count();
    assert!(sent <= normal, "{sent} openings sent across the restart, {normal} without an outage");
    let a = anomalies(&out);
    assert_eq!(a.len(), 2, "the trip before the kill, the clear after it: {a:?}");
    assert_eq!((a[0]["status"].as_str(), a[1]["status"].as_str()), (Some("opened"), Some("resolved")));
    assert_eq!(a[0]["episode_started_at"], a[1]["episode_started_at"], "one episode across the restart");
    assert!(a[1]["openings_withheld"].as_u64().unwrap() > 400, "the withheld count survives: {}", a[1]);
}

#[test]
fn a_guard_restored_from_its_history_decides_as_the_one_that_wrote_it() {
    let (mut g, mut out) = steady(1000, 30);
    day(&mut g, 40, 0, 30, &mut out);
    assert_eq!(day(&mut g, 41, 0, 2000, &mut out), (0, 2000));
    let mut bytes = Vec::new();
    g.history().unwrap().encode(&mut bytes);
    let h = History::decode(&mut Reader::new(&bytes)).unwrap();
    assert_eq!(Some(&h), g.history().as_ref());
    let mut back = Guard::new(PARAMS);
    back.restore(Some(h));
    assert_eq!(back.outage(), g.outage());
    assert!(back.outage().from_ms == 39 * DAY_MS && back.outage().until_ms == i64::MAX, "{:?}", back.outage());
    // Both withhold while clicks are away and clear alike once they are back.
    let (mut a, mut b) = (out.clone(), out.clone());
    for (d, clicks) in [(42, 0), (43, 950), (44, 1000)] {
        assert_eq!(day(&mut g, d, clicks, 30, &mut a), day(&mut back, d, clicks, 30, &mut b), "day {d}");
    }
    assert_eq!(a, b);
    assert!(!a.last().unwrap().tripped && a.last().unwrap().withheld == 2000 + 30 + 30);
    assert!(Guard::new(PARAMS).history().is_none(), "nothing to keep before the first day");
    for len in 0..bytes.len() {
        assert!(History::decode(&mut Reader::new(&bytes[..len])).is_err(), "{len}");
    }
}

#[test]
fn a_rolled_back_batch_leaves_the_guards_history_as_it_was() {
    use crate::test_support::{engine, feed, line};
    let mut e = engine("");
    let lines: Vec<String> = (0..40).map(|d| line("c1", "click", d * DAY_MS, "")).collect();
    feed(&mut e, &lines);
    let before = e.meta().guard;
    assert!(before.is_some());
    e.begin_batch();
    feed(&mut e, &[line("c1", "click", 40 * DAY_MS, ""), line("c2", "order", 41 * DAY_MS, r#","amount":5"#)]);
    assert_ne!(e.meta().guard, before);
    e.rollback().unwrap();
    assert_eq!(e.meta().guard, before, "an aborted batch replayed must not count its events twice");
}

#[test]
fn customers_leaving_one_by_one_are_no_stall_however_many_leave() {
    let (mut g, mut out) = steady(300, 3);
    // Two thirds of the customers leave over ten days: clicks thin by 20
    // a day, to a third, and their declines open. From day 51 the last
    // day is under half the quietest baseline day (day 44's 220), but it
    // fell there a little a day: they are customers, and sent.
    for d in 40..70 {
        let clicks = 300 - (d.min(50) as u32 - 40) * 20;
        assert_eq!(day(&mut g, d, clicks, 8, &mut out), (8, 0), "day {d}: {clicks} clicks");
    }
    assert!(out.is_empty() && !g.is_tripped(), "{out:?}");
    // The same clicks falling to a third overnight is a source stopping.
    let (mut g, _) = steady(300, 3);
    day(&mut g, 40, 100, 3, &mut out);
    assert_eq!(day(&mut g, 41, 100, 8, &mut out), (0, 8), "an abrupt fall stalls");
}
