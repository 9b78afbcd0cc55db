use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::apps::replay::{run as replay, Options};

use super::*;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400_000;

/// The state lines `replay --state` writes (the lines `care state` prints)
/// for `events`, under `config`.
fn state_lines(config: &str, events: &str) -> Vec<Value> {
    let cfg = Config::parse(config, "t").unwrap();
    let path = std::env::temp_dir().join(format!("care-state-view-{}-{}.jsonl", std::process::id(), events.len()));
    let opts = Options { source: None, partitions: 1, emit_from_ms: None, advance_to_ms: None, state_out: Some(path.clone()), scorecards_out: None };
    replay(&cfg, &opts, &mut events.as_bytes(), &mut Vec::new(), i64::MAX / 4, &CancellationToken::new()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(path);
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn event(customer: &str, kind: &str, ms: i64, extra: &str) -> String {
    format!("{{\"customer_id\":\"{customer}\",\"kind\":\"{kind}\",\"ts\":{ms}{extra}}}\n")
}

/// Every key at any depth, with the arrays found on the way.
fn walk<'a>(v: &'a Value, keys: &mut Vec<&'a str>, arrays: &mut Vec<&'a Vec<Value>>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            keys.push(k);
            walk(v, keys, arrays);
        }),
        Value::Array(a) => {
            arrays.push(a);
            a.iter().for_each(|v| walk(v, keys, arrays));
        }
        _ => {}
    }
}

#[test]
fn state_lines_name_every_field_and_give_times_in_rfc3339() {
    // A customer with every part of the state in use: activity on 30 days,
    // orders, CSAT answers (low CSAT on), an NPS detractor, event ids, and
    // a pending timer; days in +02:00, so a bucket starts at 22:00 UTC.
    let mut events = String::new();
    for d in 0..30 {
        events += &event("a", "click", T0 + d * DAY + 3_600_000, &format!(",\"event_id\":\"e{d}\""));
    }
    events += &event("a", "order", T0 + 10 * DAY, ",\"amount\":12.5");
    events += &event("a", "chat", T0 + 29 * DAY + 7_200_000, ",\"csat\":2");
    events += &event("a", "survey", T0 + 29 * DAY + 7_300_000, ",\"nps\":3");
    let config = "[engine]\ntimezone = \"+02:00\"\n[detect.csat_low]\nenabled = true\n";
    let lines = state_lines(config, &events);
    assert_eq!(lines.len(), 2, "{lines:?}");

    let meta = &lines[0]["meta"];
    assert_eq!(meta["stream_time"], "2026-01-30T02:01:40.000Z", "{meta}");
    assert_eq!(meta["emit_from"], Value::Null);
    assert_eq!(meta["offsets"][0]["next_offset"], 33, "{meta}");

    let c = &lines[1]["customer"];
    assert_eq!(c["customer_id"], "a");
    assert_eq!(c["first_seen"], "2026-01-01T01:00:00.000Z", "{c}");
    assert_eq!(c["last_seen"]["click"], "2026-01-30T01:00:00.000Z", "{c}");
    assert_eq!(c["last_seen"]["chat"], "2026-01-30T02:00:00.000Z");
    assert!(c["last_seen"].get("ticket").is_none(), "kinds never seen are left out: {c}");
    assert_eq!(c["orders"]["first"], "2026-01-11T00:00:00.000Z", "{c}");
    assert_eq!(c["orders"]["count"], 1);
    // Newest bucket first: 2026-01-30 in +02:00 starts at 22:00 UTC the day before.
    assert_eq!(c["activity"][0]["bucket"], "2026-01-29T22:00:00.000Z", "{c}");
    assert_eq!(c["activity"][0]["counts"]["click"], 1);
    assert_eq!(c["activity"][0]["counts"]["chat"], 1);
    // The last four event ids, oldest first, each with its event's time.
    let ids = c["recent_event_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 4, "{c}");
    assert_eq!(ids[0]["event_time"], "2026-01-27T01:00:00.000Z", "{c}");
    assert_eq!(ids[3]["event_time"], "2026-01-30T01:00:00.000Z");
    assert!(ids[0]["fingerprint"].is_u64());
    let d = &c["detectors"];
    assert_eq!(d["csat_low"]["buckets"][0]["answers"], 1, "{c}");
    assert_eq!(d["csat_low"]["buckets"][0]["satisfied"], 0);
    assert_eq!(d["nps_detractor"]["last_alert"], "2026-01-30T02:01:40.000Z", "{c}");
    // Purchase days as dates in the configured timezone.
    assert_eq!((d["purchases"]["first_purchase_day"].as_str(), d["purchases"]["purchase_days"].as_u64()), (Some("2026-01-11"), Some(1)), "{c}");
    assert_eq!(d["purchases"]["recent_purchase_days"][0]["date"], "2026-01-11");
    assert!(c["timer_at"].as_str().is_some_and(|t| t.ends_with('Z')), "a pending timer: {c}");

    let (mut keys, mut arrays) = (Vec::new(), Vec::new());
    walk(&lines[1], &mut keys, &mut arrays);
    walk(&lines[0], &mut keys, &mut arrays);
    let raw: Vec<&&str> = keys.iter().filter(|k| k.ends_with("_ms") || k.ends_with("_secs") || **k == "head" || **k == "next").collect();
    assert!(raw.is_empty(), "epoch or bucket numbers left: {raw:?}");
    assert!(arrays.iter().all(|a| a.iter().all(Value::is_object)), "a positional array is left: {arrays:?}");
    for k in ["first_seen", "last_activity", "timer_at"] {
        let t = c[k].as_str().unwrap_or_else(|| panic!("{k}: {c}"));
        chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{k} {t}: {e}"));
    }
}

#[test]
fn a_cooldown_and_the_decline_statistic_show_their_buckets_as_times() {
    // Steady daily activity, then silence: the decline statistic has
    // learned buckets and names the next one to fold as a time.
    let events: String = (0..40).map(|d| event("b", "login", T0 + d * DAY + 1000, "")).collect();
    let lines = state_lines("", &events);
    let stat = &lines[1]["customer"]["decline_stat"];
    assert_eq!(stat["next_bucket"].as_str().map(|t| t.ends_with("T00:00:00.000Z")), Some(true), "{stat}");
    assert!(stat["buckets"].as_u64().unwrap() > 0, "{stat}");
    let decline = &lines[1]["customer"]["decline"];
    assert_eq!(decline["state"], "normal", "{decline}");
}
