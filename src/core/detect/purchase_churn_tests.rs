use proptest::prelude::*;

use super::*;
use crate::detect::Status;
use crate::render::OutputRecord;
use crate::state::codec::{decode_customer, encode_customer};
use crate::test_support::{engine_with, feed, line, payloads, with_fit, DAY, T0};

const CE: &str = "io.care.purchase_churn_risk.v1";

fn detector() -> PurchaseChurn {
    let cfg = with_fit("");
    PurchaseChurn::new(&cfg, purchases::ValueContext::from_config(&cfg).expect("a fit"))
}

fn history(days: &[(i64, f64)]) -> PurchaseHistory {
    let mut h = PurchaseHistory::new(days[0].0, days[0].1);
    days[1..].iter().for_each(|&(d, a)| h.add(d, a));
    h
}

fn p_alive(d: &PurchaseChurn, h: &PurchaseHistory, day: i64) -> f64 {
    d.figures(h, day).p_alive.unwrap()
}

proptest! {
    /// The closed form: on the due day P(alive) is below θ, and the day
    /// before it was not, unless the customer's usual gap held it back.
    #[test]
    fn the_due_day_is_the_first_day_below_the_threshold(gaps in prop::collection::vec(1i64..120, 2..12)) {
        let d = detector();
        let mut day = 20_000;
        let mut days = vec![(day, 10.0)];
        for g in &gaps {
            day += g;
            days.push((day, 10.0));
        }
        let h = history(&days);
        let due = d.due_day(&h).expect("enough repeat purchases");
        prop_assert!(due > h.days.last_day);
        prop_assert!(p_alive(&d, &h, due) < 0.3, "P(alive) {} on the due day", p_alive(&d, &h, due));
        let x = gaps.len() as f64;
        let rhythm = h.days.last_day + ((h.days.last_day - h.days.first_day) as f64 / x).ceil() as i64;
        prop_assert!(p_alive(&d, &h, due - 1) >= 0.3 || due - 1 < rhythm || due - 1 == h.days.last_day, "not the first day");
    }
}

#[test]
fn buyers_with_too_few_repeats_are_not_judged() {
    let d = detector();
    assert_eq!(d.due_day(&history(&[(0, 5.0)])), None, "a one-time buyer: P(alive) is 1");
    assert_eq!(d.due_day(&history(&[(0, 5.0), (30, 5.0)])), None, "one repeat, two needed");
    assert!(d.due_day(&history(&[(0, 5.0), (30, 5.0), (60, 5.0)])).is_some());
}

/// A buyer who orders every 20 days, five times, then stops.
fn stopping_buyer() -> Vec<String> {
    (0..5).map(|k| line("b", "order", k * 20 * DAY, r#","amount":40"#)).collect()
}

fn opened_day(out: &[OutputRecord]) -> Vec<i64> {
    out.iter().filter(|r| r.header("ce_type") == Some(CE) && r.status() == Some(Status::Opened)).map(|r| (r.trigger_ms - T0).div_euclid(DAY)).collect()
}

#[test]
fn a_buyer_who_stops_is_alerted_on_the_predicted_day_and_resolved_by_the_next_order() {
    let cfg = with_fit("[detect.dormancy]\nenabled = false\n[engine]\nallowed_lateness_secs = 0\n");
    let mut e = engine_with(&cfg);
    let mut out = feed(&mut e, &stopping_buyer());
    let h = history(&(0..5).map(|k| (T0 / DAY + k * 20, 40.0)).collect::<Vec<_>>());
    let due = detector().due_day(&h).unwrap() - T0 / DAY;
    assert!(due > 80, "after the last order (day 80): {due}");
    // Stream time moves on with another customer's clicks.
    out.extend(feed(&mut e, &(81..=due + 2).map(|d| line("other", "click", d * DAY, "")).collect::<Vec<_>>()));
    assert_eq!(opened_day(&out), [due], "opened once, at the start of the due day");
    let p = &payloads(&out, CE)[0];
    assert_eq!((p["status"].as_str(), p["repeat_purchases"].as_u64(), p["days_since_last_order"].as_i64()), (Some("opened"), Some(4), Some(due - 80)));
    assert!(p["p_alive"].as_f64().unwrap() < 0.3 && p["usual_gap_days"].as_f64() == Some(20.0), "{p}");
    assert_eq!(p["fit_calibration_end"], "2025-12-31");
    out.extend(feed(&mut e, &[line("b", "order", (due + 5) * DAY, r#","amount":40"#)]));
    let all = payloads(&out, CE);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!((all[1]["status"].as_str(), &all[1]["episode_started_at"]), (Some("resolved"), &p["episode_started_at"]));
    assert!(all[1]["p_alive"].as_f64().unwrap() > 0.3, "the order brought P(alive) back up");
}

/// The buyer's own clicks, a minute past each midnight, come within the
/// allowed lateness of the due day's timer: rescheduling on them once
/// dropped the deadline (it was before stream time), and the alert never
/// came.
#[test]
fn a_buyer_still_clicking_just_after_midnight_is_alerted_on_the_due_day() {
    let cfg = with_fit("[detect.dormancy]\nenabled = false\n[detect.silence]\nenabled = false\n[detect.decline]\nenabled = false\n[engine]\nallowed_lateness_secs = 600\n");
    let mut e = engine_with(&cfg);
    let mut out = feed(&mut e, &stopping_buyer());
    let h = history(&(0..5).map(|k| (T0 / DAY + k * 20, 40.0)).collect::<Vec<_>>());
    let due = detector().due_day(&h).unwrap() - T0 / DAY;
    out.extend(feed(&mut e, &(81..=due + 2).map(|d| line("b", "click", d * DAY + 60_000, "")).collect::<Vec<_>>()));
    assert_eq!(opened_day(&out), [due], "opened once, on the due day");
}

#[test]
fn without_a_fit_or_below_the_value_floor_nothing_is_raised() {
    let lines: Vec<String> = stopping_buyer().into_iter().chain((81..400).map(|d| line("other", "click", d * DAY, ""))).collect();
    let mut plain = crate::test_support::engine("[detect.dormancy]\nenabled = false\n");
    assert!(payloads(&feed(&mut plain, &lines), CE).is_empty(), "no fit, no alert");
    let mut floor = engine_with(&with_fit("[detect.dormancy]\nenabled = false\n[detect.purchase_churn]\nmin_predicted_clv = 1000000\n"));
    assert!(payloads(&feed(&mut floor, &lines), CE).is_empty(), "not worth an alert");
}

#[test]
fn dormancy_supersedes_it() {
    // Dormant 30 days after the last activity, before the purchase alert is due.
    let mut e = engine_with(&with_fit("[detect.dormancy]\nafter_days = 30\n"));
    let h = history(&(0..5).map(|k| (k * 20, 40.0)).collect::<Vec<_>>());
    assert!(detector().due_day(&h).unwrap() > 80 + 30, "the test needs dormancy first");
    let mut out = feed(&mut e, &stopping_buyer());
    out.extend(feed(&mut e, &(81..300).map(|d| line("other", "click", d * DAY, "")).collect::<Vec<_>>()));
    assert!(out.iter().any(|r| r.header("ce_type") == Some("io.care.dormant.v1") && r.key.as_deref() == Some(b"b".as_slice())));
    assert!(payloads(&out, CE).is_empty(), "a dormant buyer is not also alerted as lapsing: {:?}", payloads(&out, CE));
}

/// The crossing passed while the buyer was dormant: nothing is raised
/// after they come back until an order, whatever timer wakes them (with
/// profiles on, the day R drops or P(alive) crosses a level; once, such a
/// timer opened it, so profiles changed the alerts).
#[test]
fn a_crossing_passed_while_dormant_raises_nothing_after_the_return() {
    let mut e = engine_with(&with_fit("[detect.dormancy]\nafter_days = 30\n[profiles]\n"));
    let h = history(&(0..5).map(|k| (k * 20, 40.0)).collect::<Vec<_>>());
    let due = detector().due_day(&h).unwrap();
    let mut out = feed(&mut e, &stopping_buyer());
    out.extend(feed(&mut e, &(81..due + 10).map(|d| line("other", "click", d * DAY, "")).collect::<Vec<_>>()));
    assert!(out.iter().any(|r| r.header("ce_type") == Some("io.care.dormant.v1") && r.key.as_deref() == Some(b"b".as_slice())));
    // Back, browsing without buying; other customers move stream time on.
    // Their clicks at noon, so the profile's timers (at midnight) fire
    // with no event of theirs at that moment.
    let back: Vec<String> = (due + 10..due + 200).flat_map(|d| [line("other", "click", d * DAY + 1, ""), line("b", "click", d * DAY + DAY / 2, "")]).collect();
    out.extend(feed(&mut e, &back));
    assert!(out.iter().any(|r| r.header("ce_type") == Some("io.care.customer_profile.v1") && r.key.as_deref() == Some(b"b".as_slice())), "profiles on");
    assert!(payloads(&out, CE).is_empty(), "{:?}", payloads(&out, CE));
}

#[test]
fn the_open_episode_round_trips_through_the_changelog() {
    let mut c = Customer::new("c".into(), T0, 3);
    c.detectors.insert(ID.0, Open { since_ms: T0 + 5 * DAY });
    c.detectors.insert(purchases::ID.0, history(&[(1, 2.0), (3, 4.0)]));
    let mut buf = Vec::new();
    encode_customer(&c, &mut buf);
    assert_eq!(decode_customer("c", &buf, 3).unwrap(), c);
}
