use proptest::prelude::*;

use super::*;
use crate::config::Config;

const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn limits() -> Limits {
    Limits { max_record_bytes: 1024, max_future_skew_ms: 300_000, max_amount: 1e9 }
}

fn canon(json: &str) -> Result<Event, DecodeError> {
    event(json.as_bytes(), &SourceMapping::canonical())
}

fn event(bytes: &[u8], m: &SourceMapping) -> Result<Event, DecodeError> {
    decode_event_only(bytes, m, limits(), NOW)
}

fn code(json: &str) -> &'static str {
    canon(json).unwrap_err().code().as_str()
}

#[test]
fn canonical_event_decodes_every_field() {
    let e = canon(r#"{"customer_id":"c1","kind":"order","ts":"2025-12-31T23:00:00Z","amount":"12.50","csat":4,"nps":9,"event_id":"e1"}"#)
        .unwrap();
    assert_eq!(e.customer_id, "c1");
    assert_eq!(e.kind, Kind::Order);
    assert_eq!(e.ts_ms, NOW - 3_600_000);
    assert_eq!(e.amount, Some(12.5));
    assert_eq!((e.csat, e.nps), (Some(4), Some(9)));
    assert_eq!(e.event_id.as_deref(), Some("e1"));
}

#[test]
fn auto_timestamps_read_seconds_and_millis_by_magnitude() {
    let secs = canon(r#"{"customer_id":7,"kind":"click","ts":1767225500}"#).unwrap();
    let millis = canon(r#"{"customer_id":7,"kind":"click","ts":1767225500000}"#).unwrap();
    assert_eq!(secs.ts_ms, 1_767_225_500_000);
    assert_eq!(secs.ts_ms, millis.ts_ms);
    assert_eq!(secs.customer_id, "7");
}

#[test]
fn every_reject_code_is_reachable() {
    let big = format!(r#"{{"customer_id":"c","kind":"click","ts":1,"pad":"{}"}}"#, "x".repeat(2000));
    let long_id = format!(r#"{{"customer_id":"{}","kind":"click","ts":1}}"#, "c".repeat(129));
    let cases: Vec<(String, &str)> = vec![
        (big, "oversized"),
        ("{not json".into(), "invalid_json"),
        ("[1,2]".into(), "not_an_object"),
        (r#"{"kind":"click","ts":1}"#.into(), "missing_field"),
        (r#"{"customer_id":"c","kind":"click","ts":null}"#.into(), "missing_field"),
        (r#"{"customer_id":{"a":1},"kind":"click","ts":1}"#.into(), "wrong_type"),
        (r#"{"customer_id":"c","kind":5,"ts":1}"#.into(), "wrong_type"),
        (r#"{"customer_id":"","kind":"click","ts":1}"#.into(), "invalid_customer_id"),
        (long_id, "invalid_customer_id"),
        (r#"{"customer_id":"c","kind":"click","ts":"yesterday"}"#.into(), "invalid_timestamp"),
        (r#"{"customer_id":"c","kind":"click","ts":-5}"#.into(), "invalid_timestamp"),
        (r#"{"customer_id":"c","kind":"logout","ts":1}"#.into(), "unknown_kind"),
        (r#"{"customer_id":"c","kind":"order","ts":1,"amount":-1}"#.into(), "invalid_amount"),
        (r#"{"customer_id":"c","kind":"order","ts":1,"amount":"ten"}"#.into(), "invalid_amount"),
        (r#"{"customer_id":"c","kind":"chat","ts":1,"csat":6}"#.into(), "invalid_csat"),
        (r#"{"customer_id":"c","kind":"chat","ts":1,"csat":3.5}"#.into(), "invalid_csat"),
        (r#"{"customer_id":"c","kind":"chat","ts":1,"nps":11}"#.into(), "invalid_nps"),
        (r#"{"customer_id":"c","kind":"click","ts":"2026-01-01T00:10:00Z"}"#.into(), "future_timestamp"),
        (r#"{"customer_id":"c","kind":"click","ts":1,"ts":2}"#.into(), "duplicate_key"),
    ];
    let mut seen = std::collections::HashSet::new();
    for (json, want) in &cases {
        assert_eq!(code(json), *want, "{json}");
        seen.insert(*want);
    }
    // `misrouted` is the engine's verdict on a decoded record (engine tests).
    for c in RejectCode::ALL.into_iter().filter(|c| *c != RejectCode::Misrouted) {
        assert!(seen.contains(c.as_str()), "code {} has no test case", c.as_str());
    }
}

#[test]
fn within_skew_is_accepted() {
    assert!(canon(r#"{"customer_id":"c","kind":"click","ts":"2026-01-01T00:04:59Z"}"#).is_ok());
}

fn example_mapping(name: &str) -> SourceMapping {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/example.toml");
    let cfg = Config::load(std::path::Path::new(path)).unwrap();
    SourceMapping::new(cfg.source(name).unwrap())
}

#[test]
fn example_web_source_maps_nested_fields_and_kind_values() {
    let m = example_mapping("web");
    let raw = br#"{"user":{"id":"u-9"},"type":"page_view","sent_at":1767225000000,"meta":{"msg_id":"m1"}}"#;
    let e = event(raw, &m).unwrap();
    assert_eq!((e.customer_id.as_str(), e.kind, e.ts_ms), ("u-9", Kind::Click, 1_767_225_000_000));
    assert_eq!(e.event_id.as_deref(), Some("m1"));
    let scroll = br#"{"user":{"id":"u-9"},"type":"scroll","sent_at":1767225000000}"#;
    assert_eq!(decode(scroll, &m, limits(), NOW), Ok(Decoded::Unknown("scroll".into())), "skipped by default");
}

fn web_source(extra: &str) -> SourceMapping {
    let text = format!(
        "[[sources]]\nname = \"web\"\ntopic = \"w\"\n{extra}\nfields = {{ customer_id = \"/c\", ts = \"/t\", amount = \"/a\" }}\nkind = {{ field = \"/type\", map = {{ page_view = \"click\", impression = \"ignore\" }} }}\n"
    );
    SourceMapping::new(&Config::parse(&text, "t").unwrap().sources[0])
}

#[test]
fn unknown_types_are_skipped_or_dead_lettered_as_the_source_says() {
    let raw = br#"{"c":"u","type":"add_to_cart","t":1}"#;
    let skip = web_source("");
    assert_eq!(decode(raw, &skip, limits(), NOW), Ok(Decoded::Unknown("add_to_cart".into())));
    let dlq = web_source("unknown_kinds = \"dlq\"");
    assert_eq!(decode(raw, &dlq, limits(), NOW).unwrap_err().code(), RejectCode::UnknownKind);
    // The type is read first: an anonymous record of an unused type is not a dead letter.
    assert_eq!(decode(br#"{"type":"scroll"}"#, &skip, limits(), NOW), Ok(Decoded::Unknown("scroll".into())));
    let long = format!(r#"{{"type":"{}"}}"#, "x".repeat(500));
    assert_eq!(decode(long.as_bytes(), &skip, limits(), NOW), Ok(Decoded::Unknown("x".repeat(64).as_str().into())), "names are bounded");
    let wide = format!(r#"{{"type":"{}"}}"#, "é".repeat(40));
    let Ok(Decoded::Unknown(name)) = decode(wide.as_bytes(), &skip, limits(), NOW) else { panic!("skipped") };
    assert_eq!(name.as_str(), "é".repeat(32), "cut at a character boundary");
}

#[test]
fn a_type_mapped_to_ignore_is_skipped_whatever_its_other_fields() {
    let m = web_source("unknown_kinds = \"dlq\"");
    assert_eq!(decode(br#"{"type":"impression"}"#, &m, limits(), NOW), Ok(Decoded::Ignored));
    assert_eq!(event(br#"{"c":"u","type":"page_view","t":1}"#, &m).unwrap().kind, Kind::Click);
}

#[test]
fn canonical_kind_names_match_in_any_case_map_keys_exactly() {
    assert_eq!(canon(r#"{"customer_id":"c","kind":"Order","ts":1}"#).unwrap().kind, Kind::Order);
    assert_eq!(canon(r#"{"customer_id":"c","kind":"LOGIN","ts":1}"#).unwrap().kind, Kind::Login);
    let m = web_source("");
    assert_eq!(event(br#"{"c":"u","type":"CLICK","t":1}"#, &m).unwrap().kind, Kind::Click);
    assert_eq!(decode(br#"{"c":"u","type":"Page_View","t":1}"#, &m, limits(), NOW), Ok(Decoded::Unknown("Page_View".into())));
}

#[test]
fn control_characters_in_customer_ids_are_rejected() {
    for id in ["a\\u0000b", "a\\nb", "tab\\t", "del\\u007f", "c1\\u0085"] {
        let json = format!(r#"{{"customer_id":"{id}","kind":"click","ts":1}}"#);
        assert_eq!(code(&json), "invalid_customer_id", "{json}");
    }
    assert_eq!(canon(r#"{"customer_id":"émilie 李","kind":"click","ts":1}"#).unwrap().customer_id, "émilie 李");
}

#[test]
fn amounts_are_bounded_by_max_amount() {
    let at = |a: &str| canon(&format!(r#"{{"customer_id":"c","kind":"order","ts":1,"amount":{a}}}"#));
    assert_eq!(at("1e9").unwrap().amount, Some(1e9));
    assert_eq!(at("0").unwrap().amount, Some(0.0));
    for bad in ["1000000000.01", "1e308", "\"1e308\"", "\"NaN\"", "\"inf\"", "-0.5"] {
        assert_eq!(at(bad).unwrap_err().code(), RejectCode::InvalidAmount, "{bad}");
    }
    assert_eq!(at("1e400").unwrap_err().code(), RejectCode::InvalidJson, "beyond f64: not JSON care can read");
    let low = Limits { max_amount: 100.0, ..limits() };
    let rec = br#"{"customer_id":"c","kind":"order","ts":1,"amount":100.5}"#;
    assert_eq!(decode(rec, &SourceMapping::canonical(), low, NOW).unwrap_err().code(), RejectCode::InvalidAmount);
}

#[test]
fn duplicate_keys_are_rejected_anywhere_in_the_record() {
    assert_eq!(code(r#"{"customer_id":"a","customer_id":"b","kind":"click","ts":1}"#), "duplicate_key");
    assert_eq!(code(r#"{"customer_id":"a","kind":"click","ts":1,"x":{"y":1,"y":1}}"#), "duplicate_key");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let mut raw = b"\xEF\xBB\xBF".to_vec();
    raw.extend_from_slice(br#"{"customer_id":"c","kind":"click","ts":1}"#);
    assert_eq!(event(&raw, &SourceMapping::canonical()).unwrap().customer_id, "c");
    assert_eq!(decode(b"\xEF\xBB\xBF", &SourceMapping::canonical(), limits(), NOW).unwrap_err().code(), RejectCode::InvalidJson);
}

#[test]
fn integer_ids_are_their_decimal_text_other_numbers_wrong_type() {
    assert_eq!(canon(r#"{"customer_id":42,"kind":"click","ts":1}"#).unwrap().customer_id, "42");
    assert_eq!(canon(r#"{"customer_id":-7,"kind":"click","ts":1}"#).unwrap().customer_id, "-7");
    assert_eq!(code(r#"{"customer_id":4.5,"kind":"click","ts":1}"#), "wrong_type");
    assert_eq!(code(r#"{"customer_id":1e30,"kind":"click","ts":1}"#), "wrong_type");
    assert_eq!(code(r#"{"customer_id":true,"kind":"click","ts":1}"#), "wrong_type");
}

#[test]
fn hostile_shapes_get_their_codes() {
    let cases: [(&[u8], &str); 10] = [
        (b"", "invalid_json"),
        (b"  \n\t ", "invalid_json"),
        (br#"{"customer_id":"c","kind":"cl"#, "invalid_json"),
        (b"null", "not_an_object"),
        (b"12.5", "not_an_object"),
        (b"{\"customer_id\":\"\xff\xfe\",\"kind\":\"click\",\"ts\":1}", "invalid_json"),
        (br#"{"customer_id":"\ud800","kind":"click","ts":1}"#, "invalid_json"),
        (br#"{"customer_id":"c","kind":"click","ts":"NaN"}"#, "invalid_timestamp"),
        (br#"{"customer_id":"c","kind":"click","ts":"9999-12-31T23:59:59Z"}"#, "future_timestamp"),
        (br#"{"customer_id":"c","kind":"click","ts":-1767225600}"#, "invalid_timestamp"),
    ];
    for (raw, want) in cases {
        let got = decode(raw, &SourceMapping::canonical(), limits(), NOW).unwrap_err();
        assert_eq!(got.code().as_str(), want, "{:?}: {got}", String::from_utf8_lossy(raw));
    }
    let deep = format!(r#"{{"customer_id":"c","kind":"click","ts":1,"x":{}{}}}"#, "[".repeat(300), "]".repeat(300));
    let limits = Limits { max_record_bytes: 4096, ..limits() };
    assert_eq!(decode(deep.as_bytes(), &SourceMapping::canonical(), limits, NOW).unwrap_err().code(), RejectCode::InvalidJson, "nesting is bounded");
}

#[test]
fn example_orders_source_fixes_kind_and_reads_decimal_strings() {
    let m = example_mapping("orders");
    let raw = br#"{"order_id":"o1","customer":{"number":42},"total":"99.90","created_at":"2025-12-31T12:00:00+01:00"}"#;
    let e = event(raw, &m).unwrap();
    assert_eq!((e.customer_id.as_str(), e.kind, e.amount), ("42", Kind::Order, Some(99.9)));
    assert_eq!(e.ts_ms, NOW - 13 * 3_600_000);
}

proptest! {
    /// Whatever the bytes, decoding returns; it never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes, &SourceMapping::canonical(), limits(), NOW);
    }

    /// Well-formed canonical records round-trip their fields.
    #[test]
    fn valid_records_round_trip(id in "[a-zA-Z0-9_-]{1,128}", k in 0usize..5, secs in 0i64..1_767_225_000,
                                csat in proptest::option::of(1u8..=5), nps in proptest::option::of(0u8..=10)) {
        let kind = Kind::ALL[k];
        let mut v = serde_json::json!({"customer_id": id, "kind": kind.as_str(), "ts": secs});
        if let Some(c) = csat { v["csat"] = c.into(); }
        if let Some(n) = nps { v["nps"] = n.into(); }
        let e = event(v.to_string().as_bytes(), &SourceMapping::canonical()).unwrap();
        prop_assert_eq!(e.customer_id, id);
        prop_assert_eq!(e.kind, kind);
        prop_assert_eq!(e.ts_ms, secs * 1000);
        prop_assert_eq!((e.csat, e.nps), (csat, nps));
    }

    /// Structurally valid JSON with arbitrary values is either an event or a
    /// typed rejection, never a panic.
    #[test]
    fn arbitrary_field_values_are_typed(cid in prop_oneof![Just(serde_json::json!(null)), any::<i64>().prop_map(serde_json::Value::from), ".{0,140}".prop_map(serde_json::Value::from)],
                                        ts in prop_oneof![any::<f64>().prop_map(serde_json::Value::from), any::<i64>().prop_map(serde_json::Value::from), ".{0,30}".prop_map(serde_json::Value::from)]) {
        let v = serde_json::json!({"customer_id": cid, "kind": "click", "ts": ts});
        match event(v.to_string().as_bytes(), &SourceMapping::canonical()) {
            Ok(e) => prop_assert!(!e.customer_id.is_empty() && e.customer_id.len() <= 128 && e.ts_ms >= 0),
            Err(err) => prop_assert!(!err.code().as_str().is_empty()),
        }
    }
}

#[test]
fn a_survey_record_without_an_answer_is_a_dead_letter() {
    assert_eq!(code(r#"{"customer_id":"c","kind":"survey","ts":1767225500}"#), "missing_field");
    assert!(canon(r#"{"customer_id":"c","kind":"survey","ts":1767225500,"nps":3}"#).is_ok());
    assert!(canon(r#"{"customer_id":"c","kind":"survey","ts":1767225500,"csat":5}"#).is_ok());
    // Any other kind needs no answer.
    assert!(canon(r#"{"customer_id":"c","kind":"chat","ts":1767225500}"#).is_ok());
}

mod pointers {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use crate::decode::at_pointer;

    /// Small documents with objects, arrays and the keys a pointer
    /// can trip on (empty, numeric, with `~` or `/`).
    fn doc() -> impl Strategy<Value = Value> {
        let key = prop_oneof![Just(String::new()), Just("0".to_string()), Just("01".into()), Just("a".into()), Just("a/b".into()), Just("m~n".into()), Just("+1".into()), "[a-c0-2]{1,2}"];
        let leaf = prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from), "[a-z]{0,3}".prop_map(Value::from)];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn pointer() -> impl Strategy<Value = String> {
        let token = prop_oneof![Just(String::new()), Just("0".to_string()), Just("1".into()), Just("01".into()), Just("+1".into()), Just("a".into()), Just("m~0n".into()), Just("a~1b".into()), Just("~2".into()), "[a-c0-2]{1,2}"];
        prop_oneof![Just(String::new()), Just("nope".to_string()), proptest::collection::vec(token, 1..4).prop_map(|t| format!("/{}", t.join("/")))]
    }

    proptest! {
        #[test]
        fn a_pointer_finds_what_serde_json_finds(d in doc(), p in pointer()) {
            prop_assert_eq!(at_pointer(&d, &p), d.pointer(&p), "{}", p);
        }
    }

    #[test]
    fn pointers_at_the_edges() {
        let d = json!({"a": {"b": [10, 20]}, "": 1, "x/y": 2, "0": 3});
        for p in ["", "/", "/a/b/1", "/a/b/01", "/a/b/+1", "/a/b/2", "/x~1y", "/0", "a", "/a/b/1/c"] {
            assert_eq!(at_pointer(&d, p), d.pointer(p), "{p}");
        }
    }
}
