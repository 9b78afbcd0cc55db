use proptest::prelude::*;

use super::*;
use crate::detect::{dormancy, Status};
use crate::event::Kind;
use crate::render::TopicRole;

use crate::test_support::{engine as engine_with, feed, DAY, T0};

fn engine() -> Engine {
    engine_with("")
}

/// The v1 window test of decline, without silence.
const WINDOW_DECLINE: &str = "[detect.decline]\nmethod = \"window\"\n[detect.silence]\nenabled = false\n";

fn line(customer: &str, kind: &str, ts_ms: i64) -> String {
    crate::test_support::line(customer, kind, ts_ms, "")
}

fn types(out: &[OutputRecord]) -> Vec<(String, String)> {
    out.iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
            (r.header("ce_type").unwrap().to_string(), v["status"].as_str().unwrap().to_string())
        })
        .collect()
}

/// `a` clicks 4×/day on `days`; `b` clicks once a day every day up to `until`
/// (b keeps partition 0's stream time moving).
fn story(a_days: impl Iterator<Item = i64>, until: i64) -> Vec<String> {
    let mut lines: Vec<(i64, String)> = a_days.flat_map(|d| (0..4).map(move |h| (d * DAY + h * 3_600_000 + 1_000, "a"))).map(|(t, c)| (t, line(c, "click", t))).collect();
    lines.extend((0..until).map(|d| (d * DAY + 12 * 3_600_000, line("b", "login", d * DAY + 12 * 3_600_000))));
    lines.sort_by_key(|(t, _)| *t);
    lines.into_iter().map(|(_, l)| l).collect()
}

#[test]
fn decline_then_silence_then_dormancy_supersede_each_other_then_reactivation() {
    let mut e = engine();
    let lines = story((0..40).chain(131..132), 132);
    let out = feed(&mut e, &lines);
    let got = types(&out);
    // 4 a day, then nothing: +2.8 a bucket crosses h ≈ 10.3 in bucket 43
    // (the fourth empty one); silence is due
    // a week after the last activity and closes the decline without a
    // message; dormancy closes the silence the same way; one story.
    assert_eq!(
        got,
        vec![
            ("io.care.activity_decline.v2".into(), "opened".into()),
            ("io.care.silence.v1".into(), "opened".into()),
            ("io.care.dormant.v1".into(), "opened".into()),
            ("io.care.reactivated.v1".into(), "resolved".into()),
        ]
    );
    assert_eq!(out[0].trigger_ms, T0 + 44 * DAY, "decided as bucket 43 sealed");
    assert_eq!(out[1].trigger_ms, T0 + 39 * DAY + 3 * 3_600_000 + 1_000 + 7 * DAY, "the minimum gap: a week");
    assert_eq!(out[1].role, TopicRole::Alerts);
    let dormant = &out[2];
    assert_eq!(dormant.role, TopicRole::Reactivation);
    assert_eq!(dormant.key.as_deref(), Some(&b"a"[..]));
    // Last activity: day 39 at 03:00:01; dormant exactly 60 days later.
    assert_eq!(dormant.trigger_ms, T0 + 39 * DAY + 3 * 3_600_000 + 1_000 + 60 * DAY);
    assert_eq!(dormant.header("ce_time"), Some(crate::render::rfc3339(dormant.trigger_ms).as_str()));
    let v: serde_json::Value = serde_json::from_slice(&out[3].value).unwrap();
    assert!((v["days_away"].as_f64().unwrap() - (131.0 - 39.0)).abs() < 0.2, "{v}");
}

#[test]
fn the_window_method_still_emits_v1_and_dormancy_supersedes_it() {
    let mut e = engine_with(WINDOW_DECLINE);
    let out = feed(&mut e, &story((0..40).chain(131..132), 132));
    let got = types(&out);
    assert_eq!(
        got,
        vec![
            ("io.care.activity_decline.v1".into(), "opened".into()),
            ("io.care.dormant.v1".into(), "opened".into()),
            ("io.care.reactivated.v1".into(), "resolved".into()),
        ]
    );
    let mut e = engine_with(WINDOW_DECLINE);
    let out = feed(&mut e, &story((0..40).chain(48..60), 60));
    assert_eq!(types(&out).iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["opened", "resolved"]);
    assert!(out.iter().all(|r| r.header("ce_type") == Some("io.care.activity_decline.v1")));
}

#[test]
fn same_input_gives_byte_identical_output() {
    let lines = story((0..40).chain(131..132), 132);
    assert_eq!(feed(&mut engine(), &lines), feed(&mut engine(), &lines));
}

#[test]
fn decline_resolves_when_activity_returns() {
    let mut e = engine();
    // Back on day 46, before silence would be due: 6 days of recovery
    // evidence (buckets 46–51) resolve it.
    let out = feed(&mut e, &story((0..40).chain(46..60), 60));
    assert_eq!(types(&out).iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["opened", "resolved"]);
    assert!(out.iter().all(|r| r.header("ce_type") == Some("io.care.activity_decline.v2")));
    assert_eq!(out[1].trigger_ms, T0 + 52 * DAY);
    assert_ne!(out[0].header("ce_id"), out[1].header("ce_id"));
}

#[test]
fn late_events_fold_lifetime_totals_but_raise_nothing() {
    let mut e = engine();
    let mut lines = story(0..40, 45);
    let late = format!(r#"{{"customer_id":"a","kind":"order","ts":{},"amount":25}}"#, T0 + DAY);
    lines.push(late);
    let before = feed(&mut engine(), &lines[..lines.len() - 1]);
    let out = feed(&mut e, &lines);
    assert_eq!(out, before, "a late order changes no output");
    assert_eq!(e.tally().sources[e.rules().canonical_source()].late, 1);
    assert_eq!(e.scorecard("a").unwrap().orders.total_amount, 25.0);
}

#[test]
fn a_late_event_never_moves_first_seen_but_an_on_time_one_out_of_order_does() {
    let mut e = engine();
    let mut lines = story(10..40, 45);
    // Right after a's first event (day 10, 00:00:01): one 30 minutes
    // earlier, out of order but within the hour of lateness.
    let at = lines.iter().position(|l| l.contains(r#""customer_id":"a""#)).unwrap();
    let early = 10 * DAY - 30 * 60_000;
    lines.insert(at + 1, line("a", "click", early));
    feed(&mut e, &lines);
    let first = |e: &Engine| e.dump().into_iter().find(|c| &*c.id == "a").unwrap().first_seen_ms;
    assert_eq!(e.tally().sources[e.rules().canonical_source()].late, 0);
    assert_eq!(first(&e), T0 + early, "an on-time event moves first_seen back");
    // Days late: folded into lifetime totals only; first_seen stays.
    feed(&mut e, &[line("a", "order", 2 * DAY)]);
    assert_eq!(e.tally().sources[e.rules().canonical_source()].late, 1);
    assert_eq!(first(&e), T0 + early, "a late event does not");
}

#[test]
fn duplicates_by_event_id_are_skipped_and_counted() {
    let mut e = engine();
    let l = r#"{"customer_id":"a","kind":"order","ts":1000,"amount":10,"event_id":"o-1"}"#.to_string();
    feed(&mut e, &[l.clone(), l]);
    assert_eq!(e.tally().sources[e.rules().canonical_source()].duplicate, 1);
    assert_eq!(e.scorecard("a").unwrap().orders.count, 1);
}

#[test]
fn re_sends_within_the_lateness_are_caught_and_a_full_id_ring_is_counted() {
    let mut e = engine();
    let order = |id: u32, min: i64| format!(r#"{{"customer_id":"a","kind":"order","ts":{},"amount":10,"event_id":"o-{id}"}}"#, T0 + min * 60_000);
    // Six orders in ten minutes: the 5th and 6th each drop an id of this
    // hour (the bound is 4 per customer), which is counted.
    let mut lines: Vec<String> = (1..=6).map(|i| order(i, i64::from(i))).collect();
    lines.push(order(5, 5)); // caught
    lines.push(order(3, 3)); // caught: the 1st and 2nd were dropped
    lines.push(order(1, 1)); // not caught: counted as an eviction above
    feed(&mut e, &lines);
    let src = e.rules().canonical_source();
    assert_eq!((e.tally().sources[src].duplicate, e.tally().dedup_evictions), (2, 3), "the re-sent o-1 evicted once more");
    assert_eq!(e.scorecard("a").unwrap().orders.count, 7);
    // Hours later the ids of long ago make room freely; a fifth within the
    // hour is again an eviction.
    feed(&mut e, &[order(7, 300), order(8, 301), order(9, 302), order(10, 303)]);
    assert_eq!(e.tally().dedup_evictions, 3, "ids older than the lateness make room freely");
    feed(&mut e, &[order(11, 304)]);
    assert_eq!(e.tally().dedup_evictions, 4);
}

#[test]
fn a_return_just_after_the_silence_deadline_says_the_same_whichever_arrives_first() {
    // `a`: 2 clicks a day for 30 days, last at day 29 01:00; silence is due a
    // week later (the floor). `a` comes back 30 min after the deadline; `b`'s
    // event 10 min past deadline + lateness may arrive before or after it
    // (both on time).
    let due = 29 * DAY + 3_600_000 + 7 * DAY;
    let mut history: Vec<String> = (0..30).flat_map(|d| [line("a", "click", d * DAY), line("a", "click", d * DAY + 3_600_000)]).collect();
    history.extend((0..37).map(|d| line("b", "login", d * DAY + 2 * 3_600_000)));
    let mut sorted: Vec<(i64, String)> = history.into_iter().map(|l| (serde_json::from_str::<serde_json::Value>(&l).unwrap()["ts"].as_i64().unwrap(), l)).collect();
    sorted.sort_by_key(|(t, _)| *t);
    let history: Vec<String> = sorted.into_iter().map(|(_, l)| l).collect();
    let (back, other) = (line("a", "click", due + 1_800_000), line("b", "login", due + 3_600_000 + 600_000));
    let silence = |lines: Vec<String>| -> Vec<(String, String, i64)> {
        let out = feed(&mut engine(), &lines);
        out.iter().filter(|r| r.header("ce_type") == Some("io.care.silence.v1")).map(|r| (r.status().unwrap().as_str().to_string(), r.header("ce_id").unwrap().to_string(), r.trigger_ms)).collect()
    };
    let timer_first = silence([history.clone(), vec![other.clone(), back.clone()]].concat());
    let event_first = silence([history, vec![back, other]].concat());
    assert_eq!(timer_first.iter().map(|(s, _, _)| s.as_str()).collect::<Vec<_>>(), ["opened", "resolved"]);
    assert_eq!(timer_first[0].2, T0 + due);
    assert_eq!(event_first, timer_first, "same messages, same ids, same times");
}

#[test]
fn a_return_just_after_the_dormancy_deadline_is_dormant_then_reactivated_and_not_also_silent() {
    // `a` clicks twice a day for 30 days; `b` keeps stream time going, then
    // `a` returns 30 min after the 60-day dormancy deadline, before its
    // timer fires: dormant, then reactivated, nothing about silence in
    // between (dormancy supersedes it).
    let due = 29 * DAY + 3_600_000 + 60 * DAY;
    let mut lines: Vec<(i64, String)> = (0..30).flat_map(|d| [(d * DAY, "a"), (d * DAY + 3_600_000, "a")]).map(|(t, c)| (t, line(c, "click", t))).collect();
    lines.extend((0..90).map(|d| (d * DAY + 2 * 3_600_000, line("b", "login", d * DAY + 2 * 3_600_000))));
    lines.sort_by_key(|(t, _)| *t);
    let mut lines: Vec<String> = lines.into_iter().filter(|(t, _)| *t < due).map(|(_, l)| l).collect();
    lines.push(line("a", "click", due + 1_800_000));
    let out = feed(&mut engine(), &lines);
    let a: Vec<(String, String)> = types(&out).into_iter().zip(&out).filter(|(_, r)| r.key.as_deref() == Some(&b"a"[..])).map(|(t, _)| t).collect();
    assert_eq!(
        &a[a.len() - 2..],
        [("io.care.dormant.v1".to_string(), "opened".to_string()), ("io.care.reactivated.v1".to_string(), "resolved".to_string())],
        "{a:?}"
    );
    assert_eq!(out.last().unwrap().header("ce_type"), Some("io.care.reactivated.v1"));
}

#[test]
fn emit_from_suppresses_old_episodes_whole_but_keeps_state() {
    // a turns dormant on day 99 (last activity day 39 + 60) and comes back on day 131.
    let mut e = engine();
    e.set_emit_from(Some(T0 + 100 * DAY));
    let out = feed(&mut e, &story((0..40).chain(131..132), 132));
    assert_eq!(types(&out), Vec::<(String, String)>::new(), "no `reactivated` for a dormancy marketing never saw");
    assert_eq!(e.tally().suppressed[dormancy::DORMANT.idx()], 1);
    assert_eq!(e.tally().suppressed[dormancy::REACTIVATED.idx()], 1);
    assert_eq!(e.customer_count(), 2, "state is folded all the same");
    let mut e = engine();
    e.set_emit_from(Some(T0 + 99 * DAY));
    let out = feed(&mut e, &story((0..40).chain(131..132), 132));
    let want = [("io.care.dormant.v1", "opened"), ("io.care.reactivated.v1", "resolved")].map(|(t, s)| (t.to_string(), s.to_string()));
    assert_eq!(types(&out), want, "an episode opened after emit_from is sent whole");
}

#[test]
fn passing_emit_from_reports_the_suppressed_count_once() {
    let mut e = engine();
    e.set_emit_from(Some(T0 + 100 * DAY));
    feed(&mut e, &story(0..40, 99));
    let before = e.take_tally();
    assert_eq!(before.backfill_suppressed, None, "stream time is still before emit_from");
    feed(&mut e, &story(0..0, 132).split_off(99));
    let t = e.take_tally();
    let suppressed: u64 = before.suppressed.iter().chain(&t.suppressed).sum();
    assert!(suppressed >= 1, "the decline or silence of a, and its dormancy");
    assert_eq!(t.backfill_suppressed, Some(suppressed), "counted over every batch since the start");
    feed(&mut e, &[line("b", "login", 140 * DAY)]);
    assert_eq!(e.take_tally().backfill_suppressed, None, "once");
}

#[test]
fn malformed_records_become_dead_letters_with_origin() {
    let mut e = engine();
    let out = feed(&mut e, &["{oops".to_string()]);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(r.role, TopicRole::Dlq);
    assert_eq!(&r.value[..], b"{oops");
    assert_eq!(r.header("care_error_code"), Some("invalid_json"));
    assert_eq!(r.header("care_source_offset"), Some("0"));
    assert_eq!(r.header("care_source_topic"), Some("canonical"));
}

#[test]
fn activity_within_lateness_before_the_deadline_prevents_dormancy() {
    let mut e = engine();
    let ten_min = 600_000;
    let lines = [line("a", "click", 0), line("b", "click", 60 * DAY + ten_min), line("a", "click", 60 * DAY - ten_min)];
    assert_eq!(feed(&mut e, &lines), vec![], "a was never inactive for 60 days");
    // And a real dormancy still fires, once stream time passes deadline + lateness.
    let out = feed(&mut e, &[line("b", "click", 100 * DAY), line("c", "click", 121 * DAY)]);
    assert_eq!(types(&out), vec![("io.care.dormant.v1".into(), "opened".into())]);
    assert_eq!(out[0].trigger_ms, T0 + 120 * DAY - ten_min);
}

proptest! {
    /// Whatever the records and their order: every record is accounted for
    /// exactly once, and lifetime order totals equal the naive sum of the
    /// non-duplicate orders.
    #[test]
    fn every_record_is_accounted_for(recs in proptest::collection::vec((0u8..4, 0usize..6, 0i64..200 * DAY, 0u32..1000, proptest::option::of(0u8..4)), 1..150)) {
        let mut e = engine();
        let mut lines = Vec::new();
        let mut spend = std::collections::HashMap::<String, f64>::new();
        let mut seen_ids = std::collections::HashSet::new();
        for (c, k, ts, amount, dup) in recs {
            let kind = ["click", "login", "chat", "ticket", "order", "bogus"][k];
            let id = format!("c{c}");
            let ev_id = dup.map(|d| format!("e{d}"));
            let mut v = serde_json::json!({"customer_id": id, "kind": kind, "ts": T0 + ts, "amount": amount});
            if let Some(x) = &ev_id { v["event_id"] = x.clone().into(); }
            lines.push(v.to_string());
            // Expected spend: valid orders not re-sent. With 4 distinct ids per
            // customer every repeat is within the 4-entry memory.
            let first = kind == "bogus" || ev_id.as_ref().is_none_or(|x| seen_ids.insert((id.clone(), x.clone())));
            if kind == "order" && first {
                *spend.entry(id).or_default() += f64::from(amount);
            }
        }
        let n = lines.len() as u64;
        feed(&mut e, &lines);
        let t = e.take_tally();
        let counts = t.sources[e.rules().canonical_source()];
        prop_assert_eq!(counts.consumed, n);
        prop_assert!(counts.balances());
        prop_assert!(e.tally().is_empty(), "taking the tally leaves it empty");
        for (id, s) in spend {
            prop_assert!((e.scorecard(&id).unwrap().orders.total_amount - s).abs() < 1e-6);
        }
    }
}

#[test]
fn timers_at_one_deadline_fire_in_customer_id_order_whatever_the_arrival_order() {
    let keys = |lines: &[String]| -> Vec<Option<Vec<u8>>> {
        let out = feed(&mut engine(), lines);
        assert!(out.iter().all(|r| r.header("ce_type") == Some("io.care.dormant.v1")), "{out:?}");
        out.into_iter().map(|r| r.key.map(|k| k.to_vec())).collect()
    };
    let later = line("z", "click", 100 * DAY);
    let ab = keys(&[line("a", "click", 0), line("b", "click", 0), later.clone()]);
    let ba = keys(&[line("b", "click", 0), line("a", "click", 0), later]);
    assert_eq!(ab, vec![Some(b"a".to_vec()), Some(b"b".to_vec())]);
    assert_eq!(ba, ab, "slab slots differ, emission order does not");
}

#[test]
fn a_rolled_back_batch_leaves_no_trace_and_the_replayed_batch_gives_the_same_outputs() {
    let lines = story((0..40).chain(131..132), 132);
    let (first, second) = lines.split_at(lines.len() - 30);
    let mut want = engine();
    let mut want_out = feed(&mut want, first);
    want_out.extend(feed(&mut want, second));

    let mut e = engine();
    let mut out = feed(&mut e, first);
    e.take_tally();
    e.write_changes(|_, _| Ok::<(), ()>(())).unwrap();
    e.begin_batch();
    let aborted = feed(&mut e, second);
    assert!(!aborted.is_empty(), "the aborted batch did emit");
    e.rollback().unwrap();
    assert!(e.tally().is_empty(), "nothing of the aborted batch is counted");
    out.extend(feed(&mut e, second));
    assert_eq!(out, want_out, "the batch again, as if never aborted");
    assert_eq!(e.dump().len(), want.dump().len());
    assert_eq!(serde_json::to_string(&e.dump()).unwrap(), serde_json::to_string(&want.dump()).unwrap());
}

#[test]
fn survey_answers_update_satisfaction_but_are_not_visits() {
    // a acts daily for 30 days, then only answers surveys; b keeps stream
    // time moving to day 140. Surveys neither resolve a's silence nor delay
    // dormancy; a chat carrying an answer is a visit and an answer.
    let survey = |d: i64, csat: u8| format!(r#"{{"customer_id":"a","kind":"survey","ts":{},"csat":{csat},"nps":3}}"#, T0 + d * DAY + 5_000);
    let quiet = story(0..30, 140);
    let mut lines = quiet.clone();
    for (d, csat) in [(45, 2), (70, 1), (95, 5)] {
        let at = lines.iter().position(|l| l.contains(&format!("{}", T0 + d * DAY + 12 * 3_600_000))).unwrap();
        lines.insert(at, survey(d, csat));
    }
    // Activity alerts only: the detractor answers' own alerts are not the point here.
    let engine = || engine_with("[detect.nps_detractor]\nenabled = false\n");
    let mut e = engine();
    let with = feed(&mut e, &lines);
    let of_a = |o: &[OutputRecord]| o.iter().filter(|r| r.key.as_deref() == Some(b"a")).cloned().collect::<Vec<_>>();
    let when = |o: &[OutputRecord]| o.iter().map(|r| (r.header("ce_type").map(str::to_owned), r.status(), r.trigger_ms)).collect::<Vec<_>>();
    let (with, without) = (of_a(&with), of_a(&feed(&mut engine(), &quiet)));
    assert_eq!(when(&with), when(&without), "surveys move none of a's activity alerts");
    assert!(types(&with).contains(&("io.care.dormant.v1".into(), "opened".into())));
    // The answers do reach the reactivation score's satisfaction part.
    let satisfaction = |o: &[OutputRecord]| {
        let dormant = o.iter().find(|r| r.header("ce_type") == Some("io.care.dormant.v1")).unwrap();
        serde_json::from_slice::<serde_json::Value>(&dormant.value).unwrap()["score_components"]["satisfaction"].as_f64()
    };
    assert!(satisfaction(&with) < satisfaction(&without), "{:?} {:?}", satisfaction(&with), satisfaction(&without));
    let a = e.dump().into_iter().find(|c| &*c.id == "a").unwrap();
    assert_eq!((a.csat.responses, a.csat.satisfied, a.nps.detractors), (3, 1, 3));
    assert_eq!((a.activity_events, a.last_activity_ms), (120, Some(T0 + 29 * DAY + 3 * 3_600_000 + 1_000)));
    assert_eq!(e.tally().sources[e.rules().canonical_source()].folded[Kind::Survey.idx()], 3);
    let chat = format!(r#"{{"customer_id":"a","kind":"chat","ts":{},"csat":4}}"#, T0 + 140 * DAY);
    let back = feed(&mut e, &[chat]);
    assert_eq!(types(&back), [("io.care.reactivated.v1".to_string(), "resolved".to_string())], "a chat with an answer is a visit");
    let a = e.dump().into_iter().find(|c| &*c.id == "a").unwrap();
    assert_eq!((a.csat.responses, a.csat.satisfied, a.activity_events), (4, 2, 121));
}

/// A payload-less body, for driving `emit` directly.
#[derive(Debug)]
struct Bare;

impl crate::detect::Body for Bare {
    fn payload(&self, cx: crate::detect::signal::PayloadContext<'_>) -> serde_json::Value {
        crate::detect::signal::to_value(cx.head)
    }
}

#[test]
fn the_outage_guard_withholds_an_episode_whole_and_only_that_episode() {
    use crate::detect::decline::ACTIVITY_DECLINE;
    let rules = Rules::new(&Config::parse("", "t").unwrap());
    let (mut g, mut anomalies, mut tally, mut out) = (guard::Guard::new(rules.guard), Vec::new(), Tally::new(1), Vec::new());
    let day = 86_400_000;
    // 40 days of clicks and a few openings, then the clicks stop and a
    // wave of openings trips the guard.
    for d in 0..41 {
        (0..if d < 40 { 200 } else { 0 }).for_each(|i| g.event(Kind::Click, d * day + i, &mut anomalies));
        (0..2).for_each(|i| _ = g.opening(d * day + 10 + i, &mut anomalies));
    }
    (0..60).for_each(|i| _ = g.opening(41 * day + i, &mut anomalies));
    assert!(g.is_tripped());
    let mut c = Customer::new("c".into(), 0, 3);
    let mut send = |g: &mut guard::Guard, c: &mut Customer, s: Signal, out: &mut Vec<OutputRecord>| {
        if emit::admit(&mut tally, emit::Guarded { guard: g, anomalies: &mut anomalies }, None, c, &s) {
            out.push(rules.renderer.signal(&mut crate::render::Arena::default(), &c.id, &s));
        }
    };
    send(&mut g, &mut c, Signal::opened(ACTIVITY_DECLINE, 41 * day + 100, Bare), &mut out);
    assert!(out.is_empty(), "withheld while tripped");
    // Superseded: closed without a message, so its bit stays. The clicks
    // come back and the guard clears.
    for d in 42..44 {
        (0..200).for_each(|i| g.event(Kind::Click, d * day + i, &mut Vec::new()));
    }
    assert!(!g.is_tripped());
    send(&mut g, &mut c, Signal::opened(ACTIVITY_DECLINE, 44 * day, Bare), &mut out);
    send(&mut g, &mut c, Signal::resolved(ACTIVITY_DECLINE, 44 * day, 50 * day, Bare), &mut out);
    let statuses: Vec<Option<Status>> = out.iter().map(OutputRecord::status).collect();
    assert_eq!(statuses, [Some(Status::Opened), Some(Status::Resolved)], "a new, sent episode is sent whole");
    assert_eq!(tally.withheld[ACTIVITY_DECLINE.idx()], 1);
}
