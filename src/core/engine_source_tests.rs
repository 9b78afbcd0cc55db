//! What becomes of source records that are not plain events: unknown and
//! ignored types, tombstones, misrouted records, and what their dead
//! letters keep.

use super::*;
use crate::decode::{RejectCode, SkipReason};
use crate::render::SourceHeaders;

const NOW: i64 = i64::MAX / 4;

const WEB: &str = r#"
[[sources]]
name = "web"
topic = "web.events"
fields = { customer_id = "/c", ts = "/t" }
kind = { field = "/type", map = { page_view = "click", impression = "ignore" } }
"#;

fn web_engine(rules: Rules, partition: i32) -> Engine {
    Engine::new(Arc::new(rules), TaskId::source(partition))
}

fn rules(extra: &str) -> Rules {
    Rules::new(&crate::test_support::config(&format!("{WEB}{extra}")))
}

fn input(offset: i64, partition: i32, payload: &[u8]) -> Input<'_> {
    Input { source: 0, partition, offset, key: None, payload }
}

#[test]
fn unknown_and_ignored_types_and_tombstones_are_skipped_counted_and_balance() {
    let mut e = web_engine(rules(""), 0);
    let mut out = Vec::new();
    let records: [&[u8]; 6] = [
        br#"{"c":"a","type":"page_view","t":1767225600}"#,
        br#"{"c":"a","type":"scroll","t":1767225601}"#,
        br#"{"type":"add_to_cart"}"#,
        br#"{"c":"a","type":"scroll","t":1767225602}"#,
        br#"{"c":"a","type":"impression","t":1767225603}"#,
        br#"{"c":"a","type":"nope""#,
    ];
    let outcomes: Vec<Outcome> = records.iter().enumerate().map(|(i, r)| e.process(&input(i as i64, 0, r), NOW, &mut out)).collect();
    let tomb = e.process_with(&input(6, 0, b""), Envelope { tombstone: true, ..Envelope::default() }, NOW, &mut out);
    assert_eq!(outcomes[1], Outcome::Skipped(SkipReason::UnknownKind));
    assert_eq!(outcomes[4], Outcome::Skipped(SkipReason::IgnoredKind));
    assert_eq!(outcomes[5], Outcome::Rejected(RejectCode::InvalidJson));
    assert_eq!(tomb, Outcome::Skipped(SkipReason::Tombstone));
    assert_eq!(out.len(), 1, "only the broken record is a dead letter");
    let t = e.take_tally();
    let s = &t.sources[0];
    assert_eq!((s.consumed, s.folded_total(), s.rejected_total()), (7, 1, 1));
    assert_eq!(s.skipped, [3, 1, 1], "unknown, ignored, tombstone");
    assert!(s.balances());
    let names: Vec<&str> = t.unknown_kinds.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["scroll", "add_to_cart"], "distinct, in order of first sight");
    assert_eq!(e.offsets()[0], Some(7), "skipped records move the offset on");
}

#[test]
fn a_source_may_dead_letter_unknown_types_instead() {
    let mut e = web_engine(Rules::new(&crate::test_support::config(&WEB.replace("[[sources]]", "[[sources]]\nunknown_kinds = \"dlq\""))), 0);
    let mut out = Vec::new();
    let o = e.process(&input(0, 0, br#"{"c":"a","type":"scroll","t":1767225601}"#), NOW, &mut out);
    assert_eq!(o, Outcome::Rejected(RejectCode::UnknownKind));
    assert_eq!(out[0].header("care_error_code"), Some("unknown_kind"));
}

#[test]
fn a_record_off_its_murmur2_partition_is_dead_lettered_as_misrouted() {
    let n = 4;
    // Customers whose murmur2 partition is and is not 1.
    let ids: Vec<String> = (0..40).map(|i| format!("cust-{i}")).collect();
    let home = ids.iter().find(|id| crate::partition::for_key(id.as_bytes(), n) == 1).unwrap();
    let stray = ids.iter().find(|id| crate::partition::for_key(id.as_bytes(), n) == 3).unwrap();
    let mut e = web_engine(rules("").with_routing_check(n), 1);
    let mut out = Vec::new();
    let rec = |id: &str| format!(r#"{{"c":"{id}","type":"page_view","t":1767225600}}"#);
    assert_eq!(e.process(&input(0, 1, rec(home).as_bytes()), NOW, &mut out), Outcome::Folded);
    assert_eq!(e.process(&input(1, 1, rec(stray).as_bytes()), NOW, &mut out), Outcome::Rejected(RejectCode::Misrouted));
    assert_eq!(e.customer_count(), 1, "no second state for the stray customer");
    assert_eq!(out[0].header("care_error_code"), Some("misrouted"));
    assert!(out[0].header("care_error_message").unwrap().contains("partition 3"), "{:?}", out[0].header("care_error_message"));
    // Without the check (replay, demo) the engine folds whatever it is given.
    let mut unchecked = web_engine(rules(""), 1);
    assert_eq!(unchecked.process(&input(0, 1, rec(stray).as_bytes()), NOW, &mut out), Outcome::Folded);
}

struct Headers;

impl SourceHeaders for Headers {
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
        f("traceparent", Some(b"00-abc"));
    }
}

#[test]
fn a_dead_letter_keeps_its_records_key_headers_and_timestamp() {
    let mut e = web_engine(rules(""), 0);
    let mut out = Vec::new();
    let env = Envelope { tombstone: false, timestamp_ms: Some(1_700_000_000_123), headers: Some(&Headers) };
    let rec = Input { key: Some(b"k-1"), ..input(5, 0, b"[1]") };
    e.process_with(&rec, env, NOW, &mut out);
    let d = &out[0];
    assert_eq!(d.key.as_deref(), Some(&b"k-1"[..]));
    let original = d.original.as_deref().unwrap();
    assert_eq!(original.timestamp_ms, Some(1_700_000_000_123));
    assert_eq!(original.headers, [("traceparent".to_string(), Some(b"00-abc".to_vec()))]);
    assert_eq!(d.header("__connect.errors.topic"), Some("web.events"));
    assert_eq!(d.header("__connect.errors.offset"), Some("5"));
}

#[test]
fn replay_routes_each_customer_to_the_task_whose_run_check_accepts_it() {
    // `replay`/`demo` route by murmur2 themselves; `run` checks records
    // against the same function: a customer lands on the same task either way.
    let n = 5;
    let mut routed = Routed::new(Arc::new(rules("")), n);
    let mut out = Vec::new();
    for i in 0..50 {
        let rec = format!(r#"{{"c":"cust-{i}","type":"page_view","t":1767225600}}"#);
        routed.process(&input(i, 0, rec.as_bytes()), NOW, &mut out);
    }
    for task in routed.tasks() {
        let p = task.id().partition;
        let mut checked = web_engine(rules("").with_routing_check(n), p);
        for c in task.dump() {
            let rec = format!(r#"{{"c":"{}","type":"page_view","t":1767225600}}"#, c.id);
            assert_eq!(checked.process(&input(0, p, rec.as_bytes()), NOW, &mut out), Outcome::Folded, "{} on task {p}", c.id);
        }
    }
    assert_eq!(routed.customer_count(), 50);
}

proptest::proptest! {
    /// Whatever mix of records arrives (events in any order, re-sends,
    /// unknown and ignored types, tombstones, garbage), every one is counted
    /// once: consumed = folded + late + duplicate + skipped + rejected.
    #[test]
    fn every_record_is_accounted_for_once(records in proptest::collection::vec((0u8..7, 0i64..200, 0u8..4), 1..200)) {
        let mut e = web_engine(Rules::new(&crate::test_support::config(&WEB.replace("ts = \"/t\"", "ts = \"/t\", event_id = \"/id\""))), 0);
        let mut out = Vec::new();
        for (i, (shape, hours, id)) in records.iter().enumerate() {
            let t = 1_767_225_600 + hours * 3_600;
            let rec = match shape {
                0 => format!(r#"{{"c":"c{id}","type":"page_view","t":{t},"id":"e{hours}"}}"#),
                1 => format!(r#"{{"c":"c{id}","type":"click","t":{t}}}"#),
                2 => format!(r#"{{"c":"c{id}","type":"scroll","t":{t}}}"#),
                3 => format!(r#"{{"c":"c{id}","type":"impression"}}"#),
                4 => format!(r#"{{"c":"c{id}","type":"page_view","t":{t},"t":{t}}}"#),
                _ => "{\"c\":".to_string(),
            };
            let env = Envelope { tombstone: *shape == 6, ..Envelope::default() };
            e.process_with(&input(i as i64, 0, rec.as_bytes()), env, NOW, &mut out);
        }
        let t = e.take_tally();
        let s = &t.sources[0];
        proptest::prop_assert_eq!(s.consumed, records.len() as u64);
        proptest::prop_assert!(s.balances(), "{:?}", s);
        proptest::prop_assert_eq!(s.rejected_total() as usize, out.iter().filter(|r| r.role == crate::render::TopicRole::Dlq).count());
    }
}

#[test]
fn a_survey_topic_mapped_with_a_fixed_kind_folds_answers_without_a_visit() {
    let surveys = r#"
[[sources]]
name = "surveys"
topic = "survey.answers"
fields = { customer_id = "/c", ts = "/t", csat = "/score" }
kind = { fixed = "survey" }
"#;
    let mut e = web_engine(rules(surveys), 0);
    let mut out = Vec::new();
    let answer = br#"{"c":"a","t":1767225700,"score":2}"#;
    let visit = br#"{"c":"a","type":"page_view","t":1767225600}"#;
    e.process(&input(0, 0, visit), NOW, &mut out);
    let outcome = e.process(&Input { source: 1, ..input(0, 0, answer) }, NOW, &mut out);
    assert_eq!(outcome, Outcome::Folded);
    let a = e.dump().into_iter().next().unwrap();
    assert_eq!((a.csat.responses, a.activity_events, a.last_activity_ms), (1, 1, Some(1_767_225_600_000)));
    assert_eq!(e.tally().sources[1].folded[crate::event::Kind::Survey.idx()], 1);
}
