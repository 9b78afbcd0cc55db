use crate::detect::Status;
use crate::render::{OutputRecord, TopicRole};
use crate::test_support::{engine, feed, line, payloads, DAY, T0};

const ON: &str = "[detect.first_order]\nenabled = true\n";

fn first_orders(out: &[OutputRecord]) -> Vec<serde_json::Value> {
    payloads(out, "io.care.first_order.v1")
}

#[test]
fn the_first_order_is_announced_once_with_the_days_since_first_seen() {
    let lines = [
        line("a", "login", 0, ""),
        line("a", "ticket", DAY, r#","csat":2"#),
        line("a", "order", 3 * DAY + DAY / 2, r#","amount":19.5,"event_id":"o-1""#),
        line("a", "order", 3 * DAY + DAY / 2, r#","amount":19.5,"event_id":"o-1""#), // a re-send
        line("a", "order", 5 * DAY, ""),
        line("b", "order", 6 * DAY, ""),
    ];
    let mut e = engine(ON);
    let out = feed(&mut e, &lines);
    let got = first_orders(&out);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["customer_id"], "a");
    assert_eq!(got[0]["status"], "opened");
    assert_eq!(got[0]["at"], "2026-01-04T12:00:00.000Z");
    assert_eq!(got[0]["first_seen_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(got[0]["days_from_first_seen"], 3.5);
    assert_eq!(got[0]["amount"], 19.5);
    assert_eq!((&got[1]["customer_id"], got[1]["days_from_first_seen"].as_f64(), &got[1]["amount"]), (&"b".into(), Some(0.0), &serde_json::Value::Null));
    let r = out.iter().find(|r| r.header("ce_type") == Some("io.care.first_order.v1")).unwrap();
    assert_eq!((r.role, r.status(), r.trigger_ms), (TopicRole::Alerts, Some(Status::Opened), T0 + 3 * DAY + DAY / 2));
    assert!(first_orders(&feed(&mut engine(""), &lines)).is_empty(), "off by default");
}

#[test]
fn a_late_first_order_raises_nothing_and_later_orders_are_not_first() {
    let mut e = engine(ON);
    let lines = [line("a", "login", 10 * DAY, ""), line("a", "order", 2 * DAY, ""), line("a", "order", 11 * DAY, "")];
    let out = feed(&mut e, &lines);
    assert!(first_orders(&out).is_empty(), "{:?}", first_orders(&out));
    assert_eq!(e.tally().sources[e.rules().canonical_source()].late, 1);
}

#[test]
fn it_stands_beside_the_activity_chain() {
    // a acts daily for 30 days, goes dormant (60 days), and comes back with
    // a first order: reactivated and first order, neither superseding the other.
    let mut lines: Vec<String> = (0..30).map(|d| line("a", "click", d * DAY, "")).collect();
    lines.extend((0..100).map(|d| line("b", "click", d * DAY + 1000, "")));
    lines.push(line("a", "order", 99 * DAY + 5000, r#","amount":5"#));
    let out = feed(&mut engine(ON), &lines);
    let of_a: Vec<&str> = out.iter().filter(|r| r.key.as_deref() == Some(b"a")).filter_map(|r| r.header("ce_type")).collect();
    assert!(of_a.ends_with(&["io.care.reactivated.v1", "io.care.first_order.v1"]), "{of_a:?}");
    assert!(of_a.contains(&"io.care.dormant.v1"));
    let without = feed(&mut engine(""), &lines);
    let strip = |o: &[OutputRecord]| o.iter().filter(|r| r.header("ce_type") != Some("io.care.first_order.v1")).cloned().collect::<Vec<_>>();
    assert_eq!(strip(&out), without, "turning it on changes no other output");
}
