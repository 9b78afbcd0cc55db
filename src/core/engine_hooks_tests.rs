//! The hooks each detector declares (`Detector::hooks`) are all the ones
//! it implements: an engine that calls only the declared hooks decides,
//! sends and keeps exactly what one calling every hook of every detector
//! does, on a stream that exercises all of them.

use std::sync::Arc;

use super::*;
use crate::detect::registry::enabled;
use crate::detect::Hooks;
use crate::task::TaskId;
use crate::test_support::{feed, with_fit, DAY};

/// Every detector on, profiles on, a fit loaded; `decline` picks its method.
fn everything(decline: &str) -> Config {
    with_fit(&format!(
        "[profiles]\nenabled = true\n[detect.decline]\nmethod = \"{decline}\"\n\
         [detect.first_order]\nenabled = true\n[detect.nps_detractor]\nenabled = true\n\
         [detect.csat_low]\nenabled = true\n[detect.falling_csat]\nenabled = true\n\
         [detect.ticket_surge]\nenabled = true\n[detect.tiers]\nenabled = true\n\
         [detect.purchase_churn]\nenabled = true\n"
    ))
}

/// A deterministic stream of 80 customers over 200 days: steady ones,
/// ones that decline, fall silent, go dormant and come back, buy, answer
/// surveys (happy, then not), raise tickets in surges; with late events
/// and re-sent ids among them.
fn stream() -> Vec<String> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut events: Vec<(i64, String)> = Vec::new();
    for c in 0..80u64 {
        let (class, rate) = (c % 6, 1 + c % 4);
        for day in 0..200i64 {
            let gone = match class {
                1 => day >= 90 && next(3) != 0,          // declines to a third
                2 => (100..200).contains(&day),          // silent for good
                3 => (60..150).contains(&day),           // dormant, then back
                _ => false,
            };
            if gone {
                continue;
            }
            for _ in 0..next(2 * rate) {
                let ts = day * DAY + next(DAY as u64) as i64;
                let (kind, extra) = match next(12) {
                    0 | 1 => ("order", format!(r#","amount":{}.5"#, 5 + next(200))),
                    2 => ("survey", format!(r#","csat":{}"#, if class == 4 && day > 80 { 1 + next(2) } else { 4 + next(2) })),
                    3 => ("survey", format!(r#","nps":{}"#, next(11))),
                    4 if class == 5 && day > 70 => ("ticket", String::new()),
                    4 => ("chat", String::new()),
                    5 | 6 => ("login", String::new()),
                    _ => ("click", String::new()),
                };
                let id = if next(40) == 0 { 7 } else { ts as u64 };
                events.push((ts, format!(r#"{{"customer_id":"c{c:02}","kind":"{kind}","ts":{},"event_id":"{c}-{id}"{extra}}}"#, crate::test_support::T0 + ts)));
            }
        }
    }
    events.sort_by_key(|(ts, _)| *ts);
    // A few events arrive far out of order: late ones.
    for i in (500..events.len()).step_by(97) {
        let (ts, line) = events[i].clone();
        let late = line.replace(&format!(r#""ts":{}"#, crate::test_support::T0 + ts), &format!(r#""ts":{}"#, crate::test_support::T0 + ts - 20 * DAY));
        events.insert(i + 1, (ts, late));
    }
    events.into_iter().map(|(_, l)| l).collect()
}

/// Outputs of `stream` to its end plus a quarter, and every customer's state.
fn run(rules: Rules, lines: &[String]) -> (Vec<OutputRecord>, Vec<Customer>) {
    let mut e = Engine::new(Arc::new(rules), TaskId::source(0));
    let mut out = feed(&mut e, lines);
    e.advance(crate::test_support::T0 + 300 * DAY, &mut out);
    (out, e.state.customers().cloned().collect())
}

#[test]
fn calling_only_the_declared_hooks_changes_nothing() {
    let lines = stream();
    for method in ["sequential", "window"] {
        let cfg = everything(method);
        let declared = run(Rules::new(&cfg), &lines);
        let every = run(Rules { detectors: enabled(&cfg).calling_every_hook(), ..Rules::new(&cfg) }, &lines);
        let types: std::collections::BTreeSet<String> = declared.0.iter().filter_map(|r| r.header("ce_type").map(str::to_string)).collect();
        assert!(types.len() >= 12, "the stream exercises most signals and profiles ({method}): {types:?}");
        assert_eq!(declared.0.len(), every.0.len(), "as many outputs ({method})");
        assert!(declared.0 == every.0, "the same outputs, in the same order ({method})");
        assert!(declared.1 == every.1, "the same state ({method})");
    }
}

#[test]
fn a_detector_declares_only_what_it_uses() {
    let cfg = everything("sequential");
    let e = enabled(&cfg);
    let names = |h: Hooks| crate::detect::registry::indexes(e.with(h)).map(|i| e.get(i).id().0).collect::<Vec<_>>();
    // Retention and purchases keep figures; they have no episode, no timer.
    assert!(!names(Hooks::EPISODES).contains(&"retention") && !names(Hooks::TIMERS).contains(&"purchases"));
    assert_eq!(names(Hooks::ADVANCE), ["decline"], "only the sequential decline decides sealed buckets as time moves");
    assert!(names(Hooks::EVENTS).contains(&"nps_detractor") && !names(Hooks::EVENTS).contains(&"silence"));
}
