use super::*;
use crate::test_support::{engine, feed, line, DAY, T0};

const UTC: Months = Months { offset_ms: 0 };

#[test]
fn months_follow_the_calendar_in_the_configured_offset() {
    // T0 is 2026-01-01T00:00:00Z.
    assert_eq!(UTC.of(T0), (2026 - 1970) * 12);
    assert_eq!(UTC.of(T0 - 1), (2026 - 1970) * 12 - 1);
    assert_eq!(UTC.start_ms(UTC.of(T0) + 1), T0 + 31 * DAY, "February starts 31 days on");
    let plus2 = Months { offset_ms: 2 * 3_600_000 };
    assert_eq!(plus2.of(T0 - 3_600_000), UTC.of(T0), "23:00 UTC on Dec 31 is January in +02:00");
    assert_eq!(plus2.start_ms(plus2.of(T0)), T0 - 2 * 3_600_000);
}

/// The calendar's answer, as `Months::of` was first written.
fn by_chrono(m: Months, ms: i64) -> i32 {
    use chrono::{DateTime, Datelike};
    ms.checked_add(m.offset_ms).and_then(DateTime::from_timestamp_millis).map_or(0, |t| (t.year() - 1970) * 12 + t.month0() as i32)
}

proptest::proptest! {
    #[test]
    fn the_month_of_an_instant_is_the_calendars(ms in proptest::prelude::any::<i64>(), near in -20_000_000_000_000i64..20_000_000_000_000, offset_h in -14i64..=14) {
        let m = Months { offset_ms: offset_h * 3_600_000 };
        proptest::prop_assert_eq!(m.of(ms), by_chrono(m, ms), "{}", ms);
        proptest::prop_assert_eq!(m.of(near), by_chrono(m, near), "{}", near);
    }
}

#[test]
fn months_at_the_edges_of_the_calendar() {
    for ts in [T0, T0 - 1, 0, -1, -DAY, 8_210_266_876_799_999, 8_210_266_876_800_000, -8_334_601_228_800_000, -8_334_601_228_800_001, i64::MAX, i64::MIN] {
        assert_eq!(UTC.of(ts), by_chrono(UTC, ts), "{ts}");
    }
}

#[test]
fn activity_is_kept_per_month_and_read_at_an_instant() {
    let mut a = ActiveMonths::default();
    for day in [0, 20, 40, 100, 250] {
        a.add(UTC.of(T0 + day * DAY), T0 + day * DAY);
    }
    let window = 90 * DAY;
    assert!(a.active_at(T0 + 100 * DAY, window));
    assert!(a.active_at(T0 + 130 * DAY, window), "day 100 is within 90 days");
    assert!(!a.active_at(T0 + 200 * DAY, window), "nothing in days 110-200");
    assert!(!a.active_at(T0 - DAY, window), "nothing before the first");
    // Day 250 is September: months before March have left the six kept.
    assert_eq!(a.latest_secs.iter().filter(|s| **s > 0).count(), 2, "{a:?}");
}

#[test]
fn retention_counts_who_was_active_at_the_last_complete_months_start_and_end() {
    let mut e = engine("");
    // Months of 2026: January (days 0-30), February (31-58), March (59-89).
    let mut lines = vec![
        line("stays", "click", 10 * DAY, ""),
        line("stays", "order", 40 * DAY, r#","amount":5"#),
        line("stays", "order", 45 * DAY, r#","amount":5"#),
        line("leaves", "click", 5 * DAY, ""),
        line("new", "login", 50 * DAY, ""),
    ];
    // Stream time reaches March 2 with a fourth customer.
    lines.push(line("now", "click", 60 * DAY, ""));
    feed(&mut e, &lines);
    let cfg = crate::config::Config::parse("", "t").unwrap();
    let f = e.retention_figures(&cfg).unwrap();
    // The last complete month is February. At its start (end of January)
    // "stays" and "leaves" were active; at its end "stays" (day 45),
    // "leaves" (day 5, within 90 days) and "new".
    assert_eq!((f.active_at_start, f.retained, f.active_at_end, f.new_in_month), (2, 2, 3, 1), "{f:?}");
    assert_eq!((f.buyers, f.repeat_buyers), (1, 1));
    // In June (May the last complete month): at the end of April "stays"
    // (day 45), "new" (50) and "now" (60) had acted within 90 days, not
    // "leaves" (day 5); at the end of May nobody had (day 60 is 91 days
    // before it). The click on day 152 is June's.
    feed(&mut e, &[line("now", "click", 152 * DAY, "")]);
    let f = e.retention_figures(&cfg).unwrap();
    assert_eq!((f.active_at_start, f.retained, f.active_at_end, f.new_in_month), (3, 0, 0, 0), "{f:?}");
}

#[test]
fn the_block_round_trips() {
    let mut c = Customer::new("c".into(), 0, 3);
    c.detectors.insert(ID.0, ActiveMonths { newest: 675, latest_secs: [1, 0, 3, 0, 0, 6] });
    let mut buf = Vec::new();
    crate::state::codec::encode_customer(&c, &mut buf);
    assert_eq!(crate::state::codec::decode_customer("c", &buf, 3).unwrap(), c);
}

/// Retention's figures as the definition reads, from every event that
/// counts (an activity kind or an order, on time or late): what the kept
/// months and the inline latest activity must give together.
fn by_definition(events: &[(usize, i64, &str)], counts: &dyn Fn(&str) -> bool, stream_ms: i64) -> (u64, u64, u64) {
    let (window, this) = (90 * DAY, UTC.of(stream_ms));
    let (at_start, at_end) = (UTC.start_ms(this - 1) - 1, UTC.start_ms(this) - 1);
    let active = |c: usize, at: i64| events.iter().any(|(who, t, kind)| *who == c && counts(kind) && *t <= at && *t > at - window);
    let (mut s, mut r, mut e) = (0, 0, 0);
    for c in 0..4 {
        let (a, b) = (active(c, at_start), active(c, at_end));
        s += u64::from(a);
        r += u64::from(a && b);
        e += u64::from(b);
    }
    (s, r, e)
}

proptest::proptest! {
    /// Events in any order (some late, some out of order across a month's
    /// end), with orders an activity kind (the default) or not.
    #[test]
    fn the_figures_count_every_event_that_counts(
        raw in proptest::collection::vec((0usize..4, 0i64..200 * DAY, 0usize..4), 1..80),
        orders_are_activity in proptest::prelude::any::<bool>(),
    ) {
        const KINDS: [&str; 4] = ["click", "login", "order", "survey"];
        let cfg_text = if orders_are_activity { "" } else { "[engine]\nactivity_kinds = [\"click\", \"login\"]\n" };
        let mut e = engine(cfg_text);
        let lines: Vec<String> = raw.iter().map(|(c, t, k)| match KINDS[*k] {
            "order" => line(&format!("c{c}"), "order", *t, r#","amount":5"#),
            "survey" => line(&format!("c{c}"), "survey", *t, r#","csat":4"#),
            kind => line(&format!("c{c}"), kind, *t, ""),
        }).collect();
        feed(&mut e, &lines);
        let cfg = crate::config::Config::parse(cfg_text, "t").unwrap();
        let f = e.retention_figures(&cfg).unwrap();
        let events: Vec<(usize, i64, &str)> = raw.iter().map(|(c, t, k)| (*c, T0 + *t, KINDS[*k])).collect();
        let counts = |k: &str| k != "survey";
        let stream_ms = events.iter().map(|(_, t, _)| *t).max().unwrap();
        proptest::prop_assert_eq!((f.active_at_start, f.retained, f.active_at_end), by_definition(&events, &counts, stream_ms), "{:?}", f);
    }
}
