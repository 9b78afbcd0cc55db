use serde_json::Value;

use super::*;

fn replay(input: &str, partitions: i32) -> (String, Summary) {
    let cfg = Config::parse("", "t").unwrap();
    let opts = Options { source: None, partitions, emit_from_ms: None, advance_to_ms: None, state_out: None, scorecards_out: None };
    let mut out = Vec::new();
    let s = run(&cfg, &opts, &mut input.as_bytes(), &mut out, i64::MAX / 4, &CancellationToken::new()).unwrap();
    (String::from_utf8(out).unwrap(), s)
}

#[test]
fn the_report_gives_the_lead_time_from_an_open_warning_to_dormancy() {
    // `a` acts 4 times a day, then stops: decline, then silence (which
    // supersedes it), then dormancy. `c` does the same but comes back
    // before dormancy: its warning closes, its later dormancy (if any)
    // is unwarned. `b` keeps stream time moving.
    let mut events: Vec<(i64, &str)> = Vec::new();
    for d in 0..110 {
        let day = 1_767_225_600 + d * 86_400;
        if d < 40 {
            (0..4).for_each(|h| events.extend([(day + h * 3_600, "a"), (day + h * 3_600 + 60, "c")]));
        }
        if d == 50 {
            events.push((day, "c"));
        }
        events.push((day + 43_200, "b"));
    }
    events.sort();
    let input: String = events.iter().map(|(ts, c)| format!("{{\"customer_id\":\"{c}\",\"kind\":\"click\",\"ts\":{ts}}}\n")).collect();
    let (out, s) = replay(&input, 1);
    let time = |key: &str, ce_type: &str| -> i64 {
        let line = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["key"] == key && v["headers"][3][1] == ce_type).unwrap();
        chrono::DateTime::parse_from_rfc3339(line["headers"][4][1].as_str().unwrap()).unwrap().timestamp_millis()
    };
    let lead = (time("a", "io.care.dormant.v1") - time("a", "io.care.activity_decline.v2")) as f64 / 86_400_000.0;
    assert_eq!((s.lead_times.dormant, s.lead_times.warned), (1, 1), "{out}");
    assert_eq!(s.lead_times.p50_days, Some(lead));
    assert!(lead > 50.0, "warned about 55 days ahead: {lead}");
}

#[test]
fn writes_dead_letters_as_lines_and_counts_everything() {
    let input = "{\"customer_id\":\"a\",\"kind\":\"click\",\"ts\":1767225600}\n\nnot json\n[1, 2]\n";
    let (out, s) = replay(input, 4);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "the customer's profile and two dead letters: {out}");
    assert_eq!((lines[0]["topic"].as_str(), lines[0]["key"].as_str()), (Some("care.customer-profiles"), Some("a")), "{out}");
    assert_eq!(lines[1]["topic"], "care.dlq");
    assert_eq!(lines[1]["key"], Value::Null, "a null key stays null");
    assert_eq!(lines[1]["value_b64"], "bm90IGpzb24=", "not JSON: base64");
    assert_eq!(lines[1]["headers"][2], serde_json::json!(["care_source_offset", "2"]), "headers in order");
    assert!(out.lines().nth(2).unwrap().contains(r#""value":[1, 2]"#), "JSON verbatim, spacing kept: {out}");
    assert_eq!((s.records, s.folded, s.rejected, s.customers), (3, 1, 2, 1));
}

#[test]
fn values_are_written_verbatim_never_reparsed() {
    use care_core::render::{Bytes, Headers};
    let cfg = Config::parse("", "t").unwrap();
    // A float whose shortest form a lossy parser would not give back.
    let value = br#"{"p_value":0.00012345678901234567,"n":1e400}"#.to_vec();
    let r = OutputRecord { role: care_core::render::TopicRole::Alerts, key: Some(Bytes::from_static(b"c")), headers: Headers::other(vec![("ce_id", Bytes::from_static(b"x"))]), value: value.clone().into(), trigger_ms: 0, original: None };
    let mut out = Vec::new();
    write_record(&cfg, &r, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(&format!(r#""value":{}"#, String::from_utf8(value).unwrap())), "{text}");
    let pretty = OutputRecord { value: Bytes::from_static(b"{\n \"a\": 1\n}"), ..r };
    let mut out = Vec::new();
    write_record(&cfg, &pretty, &mut out).unwrap();
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line per record");
    assert!(String::from_utf8(out).unwrap().contains("value_b64"));
}

#[test]
fn unknown_source_is_an_error() {
    let cfg = Config::parse("", "t").unwrap();
    let opts = Options { source: Some("nope".into()), partitions: 1, emit_from_ms: None, advance_to_ms: None, state_out: None, scorecards_out: None };
    let err = run(&cfg, &opts, &mut "".as_bytes(), &mut Vec::new(), 0, &CancellationToken::new()).unwrap_err();
    assert!(err.to_string().contains("nope"));
}

#[test]
fn a_cancelled_token_stops_before_reading() {
    let cfg = Config::parse("", "t").unwrap();
    let opts = Options { source: None, partitions: 1, emit_from_ms: None, advance_to_ms: None, state_out: None, scorecards_out: None };
    let token = CancellationToken::new();
    token.cancel();
    let s = run(&cfg, &opts, &mut "not json\n".as_bytes(), &mut Vec::new(), 0, &token).unwrap();
    assert!(s.interrupted);
    assert_eq!(s.records, 0);
}

const TWO_SOURCES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/two-sources.toml"));

fn merged(files: &[(&str, Option<&str>)]) -> (Vec<Value>, Summary) {
    let cfg = Config::parse(TWO_SOURCES, "t").unwrap();
    let opts = Options { source: None, partitions: 2, emit_from_ms: None, advance_to_ms: None, state_out: Some(state_path()), scorecards_out: None };
    let mut readers: Vec<&[u8]> = files.iter().map(|(text, _)| text.as_bytes()).collect();
    let inputs = readers
        .iter_mut()
        .zip(files)
        .map(|(lines, (_, source))| InputFile { name: format!("{source:?}"), source: source.map(str::to_string), lines: lines as &mut dyn BufRead })
        .collect();
    let mut out = Vec::new();
    let s = run_merged(&cfg, &opts, inputs, &mut out, i64::MAX / 4, &CancellationToken::new()).unwrap();
    let state = std::fs::read_to_string(opts.state_out.unwrap()).unwrap();
    (state.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), s)
}

fn state_path() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    std::env::temp_dir().join(format!("care-replay-state-{}-{}.jsonl", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
}

#[test]
fn several_inputs_merge_by_event_time_whatever_their_order() {
    // Clicks over 30 days; two orders in the middle. Read one file after
    // the other, the orders (or the late clicks) would be late.
    let web: String = (0..30).map(|d| format!("{{\"user\":{{\"id\":\"c{}\"}},\"type\":\"page_view\",\"sent_at\":{}}}\n", d % 3, 1_767_225_600_000i64 + d * 86_400_000)).collect();
    let orders = "{\"customer\":\"c1\",\"created_at\":\"2026-01-10T12:00:00Z\",\"total\":\"10\"}\n{\"customer\":\"c2\",\"created_at\":\"2026-01-20T12:00:00Z\",\"total\":\"5\"}\n";
    let (a, sa) = merged(&[(&web, Some("web")), (orders, Some("orders"))]);
    let (b, sb) = merged(&[(orders, Some("orders")), (&web, Some("web"))]);
    assert_eq!((sa.records, sa.folded, sa.late, sa.rejected), (32, 32, 0, 0), "nothing late");
    assert_eq!((sb.records, sb.folded, sb.late), (32, 32, 0));
    assert_eq!(a, b, "the same state whichever input comes first");
}

#[test]
fn raw_lines_without_source_get_a_hint_and_canonical_ones_none() {
    let raw = "{\"user\":{\"id\":\"u\"},\"type\":\"page_view\",\"sent_at\":1767225600000}\n".repeat(3);
    let (_, s) = merged(&[(&raw, None)]);
    assert_eq!(s.rejected, 3);
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("--source") && s.warnings[0].contains("web, orders"), "{}", s.warnings[0]);
    let (_, s) = merged(&[(&raw, Some("web"))]);
    assert!(s.warnings.is_empty());
    let canonical = "{\"customer_id\":\"u\",\"kind\":\"click\",\"ts\":1767225600}\n{\"kind\":\"click\"}\n";
    assert!(merged(&[(canonical, None)]).1.warnings.is_empty(), "one good record is enough to say the format is right");
}
