use proptest::prelude::*;

use super::*;

const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn limits() -> Limits {
    Limits { max_record_bytes: 1024, max_future_skew_ms: 300_000, max_amount: 1e9 }
}

/// The fast path's answer is the generic path's, error messages included.
fn same(line: &str) {
    let canonical = SourceMapping::canonical();
    let generic = decode(line.as_bytes(), &canonical, limits(), NOW);
    assert_eq!(decode_canonical(line.as_bytes(), &canonical, limits(), NOW), generic, "{line}");
}

#[test]
fn ordinary_lines_take_the_fast_path_with_the_generic_answer() {
    let lines = [
        r#"{"customer_id":"c1","kind":"order","ts":"2025-12-31T23:00:00Z","amount":"12.50","csat":4,"nps":9,"event_id":"e1"}"#,
        r#"{"customer_id":"c1","kind":"order","ts":1767225500000,"amount":12.5}"#,
        r#" {"customer_id":42,"kind":"Order","ts":1767225500,"amount":0} "#,
        r#"{"customer_id":"c","kind":"survey","ts":1767225500.5,"csat":"3"}"#,
        r#"{"customer_id":"c","kind":"click","ts":"1997-01-01T00:00:00+02:00","amount":null,"event_id":17}"#,
        "\u{feff}{\"customer_id\":\"c\",\"kind\":\"order\",\"ts\":1}",
    ];
    for line in lines {
        assert!(fast(line.as_bytes(), limits(), NOW).is_some(), "fast path taken: {line}");
        same(line);
    }
}

#[test]
fn lines_off_the_fast_path_keep_the_generic_answer() {
    let big = format!(r#"{{"customer_id":"c","kind":"click","ts":1,"amount":{}}}"#, "1".repeat(1100));
    let lines = [
        big.as_str(),
        "{not json",
        "[1,2]",
        r#"["c","order",1,null,null,null,null]"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"ts":2}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"x":1,"x":2}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"channel":"web"}"#,
        r#"{"customer_id":"c\u0041","kind":"order","ts":1}"#,
        r#"{"customer_id":"c\n","kind":"order","ts":1}"#,
        r#"{"customer_id":"c\u0000","kind":"order","ts":1}"#,
        r#"{"customer_id":"","kind":"order","ts":1}"#,
        r#"{"customer_id":1.5,"kind":"order","ts":1}"#,
        r#"{"customer_id":true,"kind":"order","ts":1}"#,
        r#"{"customer_id":{"a":1},"kind":"order","ts":1}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"amount":{"a":1,"a":2}}"#,
        r#"{"customer_id":"c","kind":"teleport","ts":1}"#,
        r#"{"customer_id":"c","kind":5,"ts":1}"#,
        r#"{"customer_id":"c","ts":1}"#,
        r#"{"customer_id":"c","kind":"order","ts":null}"#,
        r#"{"customer_id":"c","kind":"order","ts":-5}"#,
        r#"{"customer_id":"c","kind":"order","ts":"yesterday"}"#,
        r#"{"customer_id":"c","kind":"order","ts":" 1767225500 "}"#,
        r#"{"customer_id":"c","kind":"order","ts":1e300}"#,
        r#"{"customer_id":"c","kind":"order","ts":2000000000000}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"amount":-1}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"amount":"ten"}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"amount":2e9}"#,
        r#"{"customer_id":"c","kind":"survey","ts":1}"#,
        r#"{"customer_id":"c","kind":"survey","ts":1,"csat":6}"#,
        r#"{"customer_id":"c","kind":"survey","ts":1,"nps":9.5}"#,
        r#"{"customer_id":"c","kind":"order","ts":1,"event_id":1.5}"#,
        r#"{"customer_id":"c","kind":"order","ts":1} x"#,
        "",
    ];
    for line in lines {
        same(line);
    }
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("\"\"".to_string()),
        Just("\"order\"".to_string()),
        Just("\"SURVEY\"".to_string()),
        Just("\"2025-06-01T10:00:00Z\"".to_string()),
        Just("\"1767225500\"".to_string()),
        Just("\"a\\\"b\"".to_string()),
        Just("[1]".to_string()),
        Just("{}".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0i64..2_000_000_000_000).prop_map(|n| n.to_string()),
        (0u8..12).prop_map(|n| n.to_string()),
        (-1e3f64..1e12).prop_map(|x| format!("{x}")),
        "[a-z0-9 .:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn field() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("customer_id"),
        Just("kind"),
        Just("ts"),
        Just("amount"),
        Just("csat"),
        Just("nps"),
        Just("event_id"),
        Just("other"),
    ];
    (names, scalar()).prop_map(|(n, v)| format!("\"{n}\":{v}"))
}

proptest! {
    /// Any object of canonical (and stray, repeated) fields with any
    /// scalar values decodes as the generic path decodes it.
    #[test]
    fn fast_path_agrees_with_the_generic_path(
        id in prop_oneof![Just("\"c7\"".to_string()), scalar()],
        kind in prop_oneof![Just("\"order\"".to_string()), scalar()],
        ts in prop_oneof![Just("1767225000000".to_string()), scalar()],
        rest in proptest::collection::vec(field(), 0..4),
    ) {
        let mut fields = vec![format!("\"customer_id\":{id}"), format!("\"kind\":{kind}"), format!("\"ts\":{ts}")];
        fields.extend(rest);
        same(&format!("{{{}}}", fields.join(",")));
    }
}
