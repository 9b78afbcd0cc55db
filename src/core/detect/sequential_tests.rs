use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::detect::Status;
use crate::time::Buckets;
use crate::changelog::Meta;
use crate::engine::{Engine, Input, Rules};
use crate::render::OutputRecord;
use crate::state::codec::decode_customer;
use crate::task::TaskId;

const DAY: i64 = 86_400_000;
const GRID: Buckets = Buckets { bucket_ms: DAY, offset_ms: 0 };

fn params() -> Params {
    let mut cfg = DeclineConfig::default();
    cfg.method = crate::config::DeclineMethod::Sequential;
    cfg.false_alerts_per_1000_customer_months = 0.5; // the known answers below
    Params::new(&cfg, KindSet::ALL, 86_400)
}

fn at(sealed_bucket: i64) -> Moment {
    let ms = GRID.start_ms(sealed_bucket);
    Moment { now_ms: ms, trigger_ms: ms, sealed_ms: ms, buckets: GRID, superseded: false, outage: crate::detect::Outage::NONE }
}

/// Runs days `from..to` for `c`: each day folds what the day before sealed,
/// then adds `per_day(day)` clicks. Returns the signals, by day.
fn days(p: &Params, c: &mut Customer, from: i64, to: i64, per_day: impl Fn(i64) -> u32) -> Vec<(i64, Signal)> {
    let mut out = Vec::new();
    for d in from..to {
        if let Some(s) = fold_sealed(p, c, at(d)) {
            out.push((d, s));
        }
        (0..per_day(d)).for_each(|_| { c.activity.add(d, Kind::Click); });
    }
    out
}

fn customer(p: &Params) -> Customer {
    Customer::new("c".into(), 0, p.window_width(0))
}

#[test]
fn threshold_is_the_log_of_the_average_run_length() {
    let p = params();
    // 0.5 false alerts per 1,000 customer-months of daily buckets:
    // ARL = 1000 × 30.4375 / 0.5 = 60,875 days.
    assert!((p.threshold - 60_875f64.ln()).abs() < 1e-9, "{}", p.threshold);
    assert!((p.rho - 0.3).abs() < 1e-12 && (p.log_inv_rho - (1.0f64 / 0.3).ln()).abs() < 1e-12);
}

#[test]
fn a_customer_who_stops_opens_once_in_the_bucket_the_statistic_crosses() {
    let p = params();
    let mut c = customer(&p);
    assert!(days(&p, &mut c, 0, 40, |_| 4).is_empty(), "steady: nothing");
    assert!(fold_sealed(&p, &mut c, at(40)).is_none(), "day 39 sealed");
    assert_eq!(c.decline_stat.rate, 4.0);
    assert_eq!(c.decline_stat.stat, 0.0, "4 events a day push the statistic down to 0");
    // From day 40 nothing: +4 × 0.7 = 2.8 a day; 4 days reach 11.2 ≥ 11.02.
    assert_eq!(Sequential(p.clone()).next_deadline(&c, at(40)), Some(GRID.start_ms(44)), "the timer is set for the crossing");
    let got = days(&p, &mut c, 40, 50, |_| 0);
    assert_eq!(got.len(), 1, "one alert per episode: {got:?}");
    let (day, s) = &got[0];
    let evidence = s.body::<Evidence>().expect("sequential evidence");
    assert_eq!((s.status(), s.version()), (Status::Opened, 2));
    assert_eq!((*day, s.episode_ms()), (44, GRID.start_ms(44)), "decided when bucket 43 sealed, named by its end");
    // The baseline learns a week late: the empty days have not moved it.
    assert_eq!((evidence.baseline_rate, evidence.recent_events), (4.0, 12), "days 37–39 of the last 7");
    assert!((evidence.statistic - 11.2).abs() < 1e-4 && (evidence.drop() - (1.0 - 12.0 / 7.0 / 4.0)).abs() < 1e-9);
    assert!(matches!(c.decline, Episode::Open { .. }));
}

#[test]
fn recovery_resolves_the_episode_then_a_cooldown() {
    let p = params();
    let mut c = customer(&p);
    days(&p, &mut c, 0, 40, |_| 4);
    days(&p, &mut c, 40, 44, |_| 0);
    assert!(fold_sealed(&p, &mut c, at(44)).is_some_and(|s| s.opens()));
    let (opened_at, frozen) = (GRID.start_ms(44), c.decline_stat.rate);
    assert!(matches!(c.decline, Episode::Open { episode_ms, .. } if episode_ms == opened_at));
    // Back at 4 a day: recovery evidence 4 × 1.204 − 2.8 = 2.016 a day,
    // 6 days to 11.02.
    let got = days(&p, &mut c, 44, 51, |_| 4);
    assert_eq!(got.len(), 1, "{got:?}");
    let (day, s) = &got[0];
    assert_eq!(s.status(), Status::Resolved);
    assert_eq!((*day, s.episode_ms(), s.trigger_ms()), (50, opened_at, GRID.start_ms(50)), "buckets 44–49 recover, decided as 49 seals");
    assert_eq!(c.decline, Episode::Cooldown { until: 50 + 7 });
    assert_eq!(c.decline_stat.rate, frozen, "the baseline stayed frozen through the episode");
    assert!(days(&p, &mut c, 51, 90, |_| 4).is_empty(), "no new episode");
    assert_eq!(c.decline, Episode::Normal, "the cooldown ended");
}

#[test]
fn a_stretch_folded_at_once_says_everything_it_decided_in_order() {
    let p = params();
    let s = Sequential(p.clone());
    // A window as wide as a lateness of several days needs.
    let mut c = Customer::new("c".into(), 0, p.window_width(12));
    days(&p, &mut c, 0, 40, |_| 4);
    // Quiet on days 40–43 (opens as 43 seals), back on 44–49 (resolves as
    // 49 seals), all folded by one call on day 50.
    for d in 44..50 {
        (0..4).for_each(|_| {
            c.activity.add(d, Kind::Click);
        });
    }
    let mut out = Vec::new();
    s.advance(&mut c, at(50), &mut out);
    let statuses: Vec<Status> = out.iter().map(Signal::status).collect();
    assert_eq!(statuses, [Status::Opened, Status::Resolved], "{out:?}");
    assert_eq!(c.decline, Episode::Cooldown { until: 57 });
}

#[test]
fn an_open_episode_sets_a_timer_for_its_newest_active_bucket() {
    let p = params();
    let s = Sequential(p.clone());
    let mut c = customer(&p);
    days(&p, &mut c, 0, 40, |_| 4);
    days(&p, &mut c, 40, 45, |_| 0);
    assert!(matches!(c.decline, Episode::Open { .. }));
    assert_eq!(s.next_deadline(&c, at(45)), None, "nothing to fold: recovery needs activity");
    c.activity.add(46, Kind::Click);
    assert_eq!(s.next_deadline(&c, at(46)), Some(GRID.start_ms(47)), "decide once day 46 is sealed");
}

#[test]
fn a_burst_neither_opens_nor_inflates_the_baseline() {
    let p = params();
    let mut c = customer(&p);
    let got = days(&p, &mut c, 0, 120, |d| if d == 60 { 40 } else { 2 });
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(c.decline_stat.rate, 2.0, "the burst was not learned");
}

#[test]
fn a_monthly_payday_leaves_the_baseline_at_the_ordinary_days_rate() {
    let p = params();
    let mut c = customer(&p);
    // 3 a day, 15 on one day in 30 (5×): learned, it would raise μ by 0.4.
    let got = days(&p, &mut c, 0, 150, |d| if d % 30 == 29 { 15 } else { 3 });
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(c.decline_stat.rate, 3.0);
}

proptest! {
    /// The burst line μ + 3√μ + 1 costs a steady Poisson customer almost
    /// nothing: it is crossed in under 0.5 % of buckets, and skipping those
    /// lowers the learned mean by at most 2.2 % below μ = 2 (the least
    /// judged rate is 0.5) and 0.8 % from there.
    #[test]
    fn the_burst_line_is_rarely_crossed_by_a_steady_count(rate in 0.5f32..60.0) {
        let d = DeclineStat { rate, buckets: 30, ..DeclineStat::default() };
        let first_burst = (0u32..).find(|&x| is_burst(x, &d)).unwrap();
        let mu = f64::from(rate);
        let p_burst = 1.0 - crate::detect::stats::poisson_cdf(first_burst - 1, mu);
        prop_assert!(p_burst < 0.005, "P(burst) {p_burst} at μ {mu}");
        // E[X; X ≥ k] = μ P(X ≥ k − 1) for a Poisson count; the learned
        // mean is E[X | X < k].
        let lost = mu * (1.0 - crate::detect::stats::poisson_cdf(first_burst.saturating_sub(2), mu));
        let bias = 1.0 - (mu - lost) / (1.0 - p_burst) / mu;
        prop_assert!(bias < if mu >= 2.0 { 0.008 } else { 0.022 }, "learned mean {bias} low at μ {mu}");
    }
}

#[test]
fn customers_below_the_minimum_rate_or_history_are_not_judged() {
    let p = params();
    let mut c = customer(&p);
    assert!(days(&p, &mut c, 0, 40, |d| u32::from(d % 3 == 0)).is_empty());
    assert!(days(&p, &mut c, 40, 200, |_| 0).is_empty(), "0.33 a day is below min_baseline_rate");
    let mut c = customer(&p);
    assert!(days(&p, &mut c, 0, 14, |_| 5).is_empty());
    assert!(days(&p, &mut c, 14, 21, |_| 0).is_empty(), "20 buckets of history, 21 needed");
}

#[test]
fn a_new_customer_is_judged_once_baseline_buckets_have_passed() {
    let p = params();
    let mut c = customer(&p);
    // Until judged the baseline learns each bucket as it seals, not a week late.
    assert!(days(&p, &mut c, 0, 21, |_| 4).is_empty());
    assert!(fold_sealed(&p, &mut c, at(21)).is_none());
    assert_eq!((c.decline_stat.rate, c.decline_stat.buckets), (4.0, 21), "21 buckets learned when bucket 20 sealed");
    // Silent from day 21: +2.8 a day from bucket 21 on crosses 11.02 in bucket 24
    // (learning a week late, the first judged bucket was 28).
    let got = days(&p, &mut c, 21, 30, |_| 0);
    assert_eq!(got.iter().map(|(d, _)| *d).collect::<Vec<_>>(), [25], "{got:?}");
    // Then learning switches to its lag: buckets 21-27 pause (14-20 were learned).
    assert_eq!(c.decline_stat.rate, 4.0, "the episode froze the baseline, nothing was learned twice");
}

#[test]
fn switching_to_the_lag_learns_no_bucket_twice() {
    let p = params();
    let mut c = customer(&p);
    // 21 buckets at 2 (learned as they seal), 7 at 3 (the pause: buckets
    // 14-20 were learned already), then 2s: buckets 21-27 are learned from
    // bucket 28 on, each once.
    days(&p, &mut c, 0, 21, |_| 2);
    days(&p, &mut c, 21, 28, |_| 3);
    fold_sealed(&p, &mut c, at(28));
    assert_eq!((c.decline_stat.rate, c.decline_stat.buckets), (2.0, 28), "the pause learned nothing");
    days(&p, &mut c, 28, 35, |_| 2);
    fold_sealed(&p, &mut c, at(35));
    // Buckets 21-27 (3 each) learned from bucket 28 to 34, a running mean
    // over the buckets passed: α = 1/29 .. 1/35 (below the memory of 56).
    let want = (0..7).fold(2.0f64, |r, k| r + (3.0 - r) / f64::from(29 + k));
    assert!((f64::from(c.decline_stat.rate) - want).abs() < 1e-5, "{} vs {want}", c.decline_stat.rate);
}

#[test]
fn a_long_gap_restarts_the_baseline_without_a_decision() {
    let p = params();
    let mut c = customer(&p);
    days(&p, &mut c, 0, 10, |_| 3);
    assert!(fold_sealed(&p, &mut c, at(10 + MAX_GAP_BUCKETS + 1)).is_none());
    assert_eq!(c.decline_stat, DeclineStat { next: 10 + MAX_GAP_BUCKETS + 1, ..DeclineStat::default() });
}

// ---- through the engine ----

const T0: i64 = 1_767_225_600_000;
const LATENESS_MS: i64 = 2 * 3_600_000;

fn rules() -> Arc<Rules> {
    let cfg = "[engine]\nallowed_lateness_secs = 7200\n[detect.decline]\nmethod = \"sequential\"\n[detect.dormancy]\nenabled = false\n";
    Arc::new(Rules::new(&crate::test_support::config(cfg)))
}

fn feed(e: &mut Engine, events: &[(u8, i64)], out: &mut Vec<OutputRecord>) {
    for (i, (c, ts)) in events.iter().enumerate() {
        let line = format!(r#"{{"customer_id":"c{c}","kind":"click","ts":{}}}"#, T0 + ts);
        let input = Input { source: e.rules().canonical_source(), partition: 0, offset: i as i64, key: None, payload: line.as_bytes() };
        e.process(&input, i64::MAX / 4, out);
    }
}

/// Per customer: a rate for days 0..60, then another until day 100; event
/// times spread over each day by `jitter`.
fn population() -> impl Strategy<Value = Vec<(u8, i64)>> {
    let customer = (1u32..6, 0u32..6);
    (proptest::collection::vec(customer, 1..5), proptest::collection::vec(0i64..DAY, 600)).prop_map(|(cs, jitter)| {
        let mut events = Vec::new();
        let mut j = jitter.iter().cycle();
        for (i, (before, after)) in cs.iter().enumerate() {
            for d in 0..100 {
                let n = if d < 60 { *before } else { *after };
                (0..n).for_each(|_| events.push((i as u8, d * DAY + j.next().copied().unwrap_or(0))));
            }
        }
        events.sort_by_key(|e| e.1);
        events
    })
}

/// Per customer and type, messages alternate `opened`, `resolved`, except
/// that an open episode closes silently when a stronger type opens; and no
/// `ce_id` repeats.
fn episodes_well_formed(out: &[OutputRecord]) -> Result<(), String> {
    // Supersession order: dormant, then silence, then decline.
    let rank = |t: &str| ["dormant", "silence", "activity_decline"].iter().position(|n| t.contains(n)).unwrap_or(3);
    let mut ids = std::collections::HashSet::new();
    let mut open: std::collections::HashMap<(Option<crate::render::Bytes>, usize), bool> = Default::default();
    for r in out {
        if !ids.insert(r.header("ce_id").unwrap_or_default().to_string()) {
            return Err(format!("ce_id repeated: {r:?}"));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        let t = rank(r.header("ce_type").unwrap_or_default());
        let was_open = open.get(&(r.key.clone(), t)).copied().unwrap_or(false);
        match v["status"].as_str() {
            Some("opened") if was_open => return Err(format!("opened twice: {v}")),
            Some("opened") => {
                open.insert((r.key.clone(), t), true);
                (t + 1..3).for_each(|weaker| {
                    open.insert((r.key.clone(), weaker), false);
                });
            }
            Some("resolved") if !was_open => return Err(format!("resolved without an open episode: {v}")),
            _ => {
                open.insert((r.key.clone(), t), false);
            }
        }
    }
    Ok(())
}

fn sorted(out: &[OutputRecord]) -> Vec<(Option<crate::render::Bytes>, crate::render::Bytes)> {
    let mut v: Vec<_> = out.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Events arriving out of order, but never later than the allowed
    /// lateness, give the same decisions: same alerts, same figures.
    #[test]
    fn decisions_do_not_depend_on_the_order_within_the_lateness(events in population(), shifts in proptest::collection::vec(0i64..LATENESS_MS, 600)) {
        let mut shuffled: Vec<(i64, (u8, i64))> = events.iter().zip(shifts.iter().cycle()).map(|(e, s)| (e.1 + s, *e)).collect();
        shuffled.sort_by_key(|(k, _)| *k);
        let shuffled: Vec<(u8, i64)> = shuffled.into_iter().map(|(_, e)| e).collect();
        let end = 130 * DAY + T0;
        let (mut a, mut b) = (Engine::new(rules(), TaskId::source(0)), Engine::new(rules(), TaskId::source(0)));
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        feed(&mut a, &events, &mut out_a);
        a.advance(end, &mut out_a);
        feed(&mut b, &shuffled, &mut out_b);
        b.advance(end, &mut out_b);
        prop_assert_eq!(b.tally().sources[b.rules().canonical_source()].late, 0);
        prop_assert_eq!(episodes_well_formed(&out_a), Ok(()));
        prop_assert_eq!(sorted(&out_a), sorted(&out_b));
    }

    /// A task restored from its changelog records mid-stream continues
    /// exactly as one that never stopped.
    #[test]
    fn a_restored_task_continues_where_it_left_off(events in population(), cut in 0.1f64..0.9) {
        let cut = (events.len() as f64 * cut) as usize;
        let end = 130 * DAY + T0;
        let mut whole = Engine::new(rules(), TaskId::source(0));
        let mut out_whole = Vec::new();
        feed(&mut whole, &events, &mut out_whole);
        whole.advance(end, &mut out_whole);

        let mut first = Engine::new(rules(), TaskId::source(0));
        let mut out = Vec::new();
        feed(&mut first, &events[..cut], &mut out);
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        first.write_changes(|k, v| { records.push((k.to_vec(), v.unwrap().to_vec())); Ok::<(), ()>(()) }).unwrap();
        let mut second = Engine::new(rules(), TaskId::source(0));
        for (k, v) in &records {
            if k.as_slice() == crate::changelog::META_KEY {
                second.restore_meta(&Meta::decode(v).unwrap());
            } else {
                second.restore_customer(decode_customer(std::str::from_utf8(k).unwrap(), v, second.rules().window_width()).unwrap());
            }
        }
        feed(&mut second, &events[cut..], &mut out);
        second.advance(end, &mut out);
        prop_assert_eq!(sorted(&out), sorted(&out_whole));
    }
}
