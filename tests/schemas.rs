//! Every output type the engine emits validates against its JSON Schema in
//! `src/core/schemas/<ce_type>.json`, and its `ce_dataschema` header names it.
//!
//! The records come from the real engine (decode → fold → detect → render),
//! driven through a scenario that produces an activity decline (opened and
//! resolved), a dormancy trigger and a reactivation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use care::config::Config;
use care::engine::{Engine, Input, Outcome, Rules};
use care::render::OutputRecord;
use care::task::TaskId;
use serde_json::{json, Value};

const DAY: i64 = 86_400;
/// 2024-01-01T00:00:00Z, a UTC day boundary.
const T0: i64 = 1_704_067_200;
/// Far enough ahead that no event is rejected as from the future.
const NOW_WALL_MS: i64 = i64::MAX / 4;

/// Every output type: the renderer's table, so a new one cannot be left
/// out of these checks.
fn all_types() -> Vec<&'static str> {
    care::render::all_ce_types().collect()
}

fn schema_path(ce_type: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/core/schemas").join(format!("{ce_type}.json"))
}

fn load_schema(ce_type: &str) -> Value {
    let path = schema_path(ce_type);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no schema for {ce_type} at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema {} does not compile: {e}", schema["$id"]))
}

/// Errors of `instance` against `validator`, one line each.
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

/// Runs the scenarios through the engine and returns every record emitted.
///
/// Partition 0 holds two customers: "b" clicks once a day throughout, which
/// moves the partition's stream time (and so fires "a"'s timers); "a" clicks
/// 4 times a day on some days, then once on the last day.
///
/// With the default config, "a" is active on days 0..40 and 46..60 (a
/// sequential decline opens and resolves), quiet on 60..75 (decline opens,
/// then silence supersedes it; the return resolves the silence), active on
/// 75..80, then quiet until day 150 (dormant at last activity + 60 days,
/// reactivated on day 150). With the window method (v1) and no silence, "a"
/// is active on days 0..40 and 48..60 (decline opens and resolves), then
/// quiet until day 131 (dormant, then reactivated).
fn run_scenario() -> Vec<OutputRecord> {
    let mut out = scenario("", |d| (0..40).contains(&d) || (46..60).contains(&d) || (75..80).contains(&d), 150);
    let window = "[detect.decline]\nmethod = \"window\"\n[detect.silence]\nenabled = false\n";
    out.extend(scenario(window, |d| (0..40).contains(&d) || (48..60).contains(&d), 131));
    out.extend(first_order_scenario());
    out.extend(nps_detractor_scenario());
    out.extend(csat_low_scenario());
    out.extend(purchase_churn_scenario());
    out.extend(dormant_with_value_scenario());
    out.extend(falling_csat_scenario());
    out.extend(ticket_surge_scenario());
    out.extend(tiers_scenario());
    out.extend(source_anomaly_scenario());
    out
}

/// With the guard's floor at 1: twelve customers click daily until day 39
/// (a source stopping: clicks fall to "u"'s one a day) and go silent
/// together on day 46 (the second opening trips the guard); they click
/// again from day 60, and a quiet day clears it.
fn source_anomaly_scenario() -> Vec<OutputRecord> {
    let mut lines: Vec<(i64, Value)> = Vec::new();
    for d in (0..40).chain(60..70) {
        for c in 0..12 {
            lines.push((T0 + d * DAY + c, json!({"customer_id": format!("q{c}"), "kind": "click", "ts": T0 + d * DAY + c})));
        }
    }
    lines.extend((0..70).map(|d| (T0 + d * DAY + 9, json!({"customer_id": "u", "kind": "click", "ts": T0 + d * DAY + 9}))));
    lines.sort_by_key(|(t, _)| *t);
    let lines: Vec<Value> = lines.into_iter().map(|(_, l)| l).collect();
    let cfg = Config::parse("[engine]\noutage_guard_min_openings = 1\n[detect.dormancy]\nenabled = false\n", "test").unwrap();
    let out: Vec<OutputRecord> = feed_with(&cfg, &lines).into_iter().filter(|r| r.header("ce_type") == Some(care::render::SOURCE_ANOMALY_CE_TYPE)).collect();
    assert_eq!(out.len(), 2, "tripped and cleared: {out:?}");
    out
}

/// With tiers on: "l" orders weekly eight times (potential, loyal,
/// champion), then lapses while "m" clicks daily (loyal, at risk, lost).
fn tiers_scenario() -> Vec<OutputRecord> {
    let mut lines: Vec<(i64, Value)> = (0..8).map(|k| (T0 + k * 7 * DAY, json!({"customer_id": "l", "kind": "order", "ts": T0 + k * 7 * DAY, "amount": 80.0}))).collect();
    lines.extend((0..400).map(|d| (T0 + d * DAY + 1, json!({"customer_id": "m", "kind": "click", "ts": T0 + d * DAY + 1}))));
    lines.sort_by_key(|(t, _)| *t);
    let lines: Vec<Value> = lines.into_iter().map(|(_, l)| l).collect();
    let out: Vec<OutputRecord> = feed_with(&Config::parse("[detect.tiers]\nenabled = true\n[detect.dormancy]\nenabled = false\n", "test").unwrap(), &lines)
        .into_iter()
        .filter(|r| r.header("ce_type") == Some("io.care.tier_changed.v1"))
        .collect();
    assert_eq!(signals(&out), 6, "three rises, three falls");
    out
}

/// With ticket surges on: "t" clicks daily for 120 days and raises
/// tickets on days 100, 102 and 104 (opened); the window empties (resolved).
fn ticket_surge_scenario() -> Vec<OutputRecord> {
    let mut lines: Vec<(i64, Value)> = (0..120).map(|d| (T0 + d * DAY, json!({"customer_id": "t", "kind": "click", "ts": T0 + d * DAY}))).collect();
    lines.extend([100, 102, 104].map(|d| (T0 + d * DAY + 60, json!({"customer_id": "t", "kind": "ticket", "ts": T0 + d * DAY + 60}))));
    lines.sort_by_key(|(t, _)| *t);
    let lines: Vec<Value> = lines.into_iter().map(|(_, l)| l).collect();
    let out: Vec<OutputRecord> = feed("[detect.ticket_surge]\nenabled = true\n", "t", &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.ticket_surge.v1")).collect();
    assert_eq!(signals(&out), 2, "opened and resolved");
    out
}

/// With falling CSAT on: "f" answers 5 ten times, then 1 three times
/// (opened), then 5 twice (resolved).
fn falling_csat_scenario() -> Vec<OutputRecord> {
    let scores = [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 5];
    let lines: Vec<Value> = scores.iter().enumerate().map(|(d, csat)| json!({"customer_id": "f", "kind": "survey", "ts": T0 + d as i64 * DAY, "csat": csat})).collect();
    let out: Vec<OutputRecord> = feed("[detect.falling_csat]\nenabled = true\n", "f", &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.falling_csat.v1")).collect();
    assert_eq!(signals(&out), 2, "opened and resolved");
    out
}

fn with_fit(toml: &str) -> Config {
    let mut cfg = Config::parse(toml, "test").expect("config");
    cfg.value.fitted = Some(Arc::new(care::model::value::Fitted {
        bgnbd: care::model::bgnbd::BgNbd { r: 0.25, alpha: 28.0, a: 0.8, b: 2.5 },
        gamma_gamma: care::model::gamma_gamma::GammaGamma { p: 6.0, q: 3.8, v: 15.0 },
        unit: care::model::TimeUnit::Days,
        calibration_end: "2023-12-31".into(),
    }));
    cfg
}

/// With a fit loaded: "v" orders on days 0, 10 and 20, then nothing; "w"
/// clicks daily, so "v" turns dormant on day 80 with the score's value
/// components.
fn dormant_with_value_scenario() -> Vec<OutputRecord> {
    let mut lines: Vec<(i64, Value)> = (0..3).map(|k| (k * 10, json!({"customer_id": "v", "kind": "order", "ts": T0 + k * 10 * DAY, "amount": 80.0}))).collect();
    lines.extend((21..100).map(|d| (d, json!({"customer_id": "w", "kind": "click", "ts": T0 + d * DAY}))));
    lines.sort_by_key(|(d, _)| *d);
    let lines: Vec<Value> = lines.into_iter().map(|(_, l)| l).collect();
    let out: Vec<OutputRecord> = feed_with(&with_fit(""), &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.dormant.v1") && r.key.as_deref() == Some(b"v".as_slice())).collect();
    assert_eq!(signals(&out), 1, "one reactivation trigger");
    let v: Value = serde_json::from_slice(&out[0].value).unwrap();
    assert!(v["score_components"]["p_alive"].is_number() && v["score_components"]["predicted_value"].is_number(), "{v}");
    out
}

/// With a fit loaded: "p" orders every 20 days five times, then stops
/// (opened when P(alive) falls below 0.3), and orders again on day 400
/// (resolved); "q" clicks daily to move stream time on.
fn purchase_churn_scenario() -> Vec<OutputRecord> {
    let cfg = with_fit("[detect.dormancy]\nenabled = false\n");
    let mut lines: Vec<(i64, Value)> = (0..5).map(|k| (k * 20, json!({"customer_id": "p", "kind": "order", "ts": T0 + k * 20 * DAY, "amount": 40.0}))).collect();
    lines.extend((81..400).map(|d| (d, json!({"customer_id": "q", "kind": "click", "ts": T0 + d * DAY}))));
    lines.push((400, json!({"customer_id": "p", "kind": "order", "ts": T0 + 400 * DAY + 60, "amount": 40.0})));
    lines.sort_by_key(|(d, _)| *d);
    let lines: Vec<Value> = lines.into_iter().map(|(_, l)| l).collect();
    let out: Vec<OutputRecord> = feed_with(&cfg, &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.purchase_churn_risk.v1")).collect();
    assert_eq!(signals(&out), 2, "opened and resolved");
    out
}

/// With low CSAT on: "s" answers 2, 1 and 4 (opened at 33 %), then 5, 5
/// and 5 (resolved at 67 %).
fn csat_low_scenario() -> Vec<OutputRecord> {
    let lines: Vec<Value> = [2, 1, 4, 5, 5, 5].iter().enumerate().map(|(d, csat)| json!({"customer_id": "s", "kind": "survey", "ts": T0 + d as i64 * DAY, "csat": csat})).collect();
    let out: Vec<OutputRecord> = feed("[detect.csat_low]\nenabled = true\n", "s", &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.csat_low.v1")).collect();
    assert_eq!(signals(&out), 2, "opened and resolved");
    out
}

/// With detractor alerts on: "n" answers 9 in a survey, then 4 on a ticket (a
/// detractor alert), then 2 two months later (a second, naming the first).
fn nps_detractor_scenario() -> Vec<OutputRecord> {
    let lines = [
        json!({"customer_id": "n", "kind": "survey", "ts": T0, "nps": 9}),
        json!({"customer_id": "n", "kind": "ticket", "ts": T0 + DAY, "nps": 4, "csat": 2}),
        json!({"customer_id": "n", "kind": "survey", "ts": T0 + 60 * DAY, "nps": 2}),
    ];
    let out: Vec<OutputRecord> = feed("[detect.nps_detractor]\nenabled = true\n", "n", &lines).into_iter().filter(|r| r.header("ce_type") == Some("io.care.nps_detractor.v1")).collect();
    assert_eq!(signals(&out), 2, "two detractor alerts");
    out
}

/// Records other than profiles: the signals a scenario is about (every
/// scenario's customers get profiles too, checked like any output).
fn signals(out: &[OutputRecord]) -> usize {
    out.iter().filter(|r| r.role != care::render::TopicRole::Profiles).count()
}

/// Feeds canonical `lines` to one engine with config `cfg`, each keyed by
/// its customer.
fn feed_with(cfg: &Config, lines: &[Value]) -> Vec<OutputRecord> {
    let mut engine = Engine::new(Arc::new(Rules::new(cfg)), TaskId::source(0));
    let source = engine.rules().canonical_source();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let payload = l.to_string();
        let key = l["customer_id"].as_str().unwrap();
        let input = Input { source, partition: 0, offset: i as i64, key: Some(key.as_bytes()), payload: payload.as_bytes() };
        assert_eq!(engine.process(&input, NOW_WALL_MS, &mut out), Outcome::Folded, "{payload}");
    }
    out
}

/// Feeds canonical `lines` of `customer` to one engine with config `cfg`.
fn feed(cfg: &str, customer: &str, lines: &[Value]) -> Vec<OutputRecord> {
    let cfg = Config::parse(cfg, "test").expect("config");
    let mut engine = Engine::new(Arc::new(Rules::new(&cfg)), TaskId::source(0));
    let source = engine.rules().canonical_source();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let payload = l.to_string();
        let input = Input { source, partition: 0, offset: i as i64, key: Some(customer.as_bytes()), payload: payload.as_bytes() };
        assert_eq!(engine.process(&input, NOW_WALL_MS, &mut out), Outcome::Folded, "{payload}");
    }
    out
}

/// With first orders on: "o" logs in, then orders on day 3 (its first
/// order) and day 5.
fn first_order_scenario() -> Vec<OutputRecord> {
    let cfg = Config::parse("[detect.first_order]\nenabled = true\n", "test").expect("config");
    let mut engine = Engine::new(Arc::new(Rules::new(&cfg)), TaskId::source(0));
    let source = engine.rules().canonical_source();
    let lines = [
        json!({"customer_id": "o", "kind": "login", "ts": T0}),
        json!({"customer_id": "o", "kind": "order", "ts": T0 + 3 * DAY + 3600, "amount": 42.5}),
        json!({"customer_id": "o", "kind": "order", "ts": T0 + 5 * DAY}),
    ];
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let payload = l.to_string();
        let input = Input { source, partition: 0, offset: i as i64, key: Some(b"o"), payload: payload.as_bytes() };
        assert_eq!(engine.process(&input, NOW_WALL_MS, &mut out), Outcome::Folded, "{payload}");
    }
    assert_eq!(signals(&out), 1, "one first order");
    out
}

fn scenario(cfg: &str, a_active: impl Fn(i64) -> bool, last_day: i64) -> Vec<OutputRecord> {
    let cfg = Config::parse(cfg, "test").expect("config");
    let mut engine = Engine::new(Arc::new(Rules::new(&cfg)), TaskId::source(0));
    let source = engine.rules().canonical_source();

    let mut events: Vec<(&str, i64)> = Vec::new();
    for d in 0..=last_day {
        let day = T0 + d * DAY;
        if a_active(d) {
            events.extend([("a", day + 8 * 3600), ("a", day + 10 * 3600)]);
        }
        events.push(("b", day + 12 * 3600));
        if a_active(d) {
            events.extend([("a", day + 14 * 3600), ("a", day + 16 * 3600)]);
        }
        if d == last_day {
            events.push(("a", day + 18 * 3600));
        }
    }

    let mut out = Vec::new();
    for (i, (customer, ts)) in events.iter().enumerate() {
        let payload = json!({"customer_id": customer, "kind": "click", "ts": ts}).to_string();
        let input = Input { source, partition: 0, offset: i as i64, key: Some(customer.as_bytes()), payload: payload.as_bytes() };
        let outcome = engine.process(&input, NOW_WALL_MS, &mut out);
        assert_eq!(outcome, Outcome::Folded, "event {i} {payload} was not folded");
    }
    out
}

/// Checks that every key of every object in `instance` is described by the
/// schema (`properties`, or an `additionalProperties` subschema), so a field
/// the renderer adds without a schema update is caught even though the
/// schemas allow unknown fields for consumers' sake.
fn assert_documented(root: &Value, schema: &Value, instance: &Value, path: &str) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs supported, got {r}"));
            root.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => schema,
    };
    let Some(obj) = instance.as_object() else { return };
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|v| v.is_object());
    for (k, v) in obj {
        let sub = props.and_then(|p| p.get(k)).or(additional);
        let sub = sub.unwrap_or_else(|| panic!("field {path}/{k} is emitted but not described in schema {}", root["$id"]));
        assert!(
            sub.get("description").is_some() || sub.get("$ref").is_some(),
            "field {path}/{k} has no description in schema {}",
            root["$id"]
        );
        assert_documented(root, sub, v, &format!("{path}/{k}"));
    }
}

#[test]
fn schemas_are_valid_2020_12_with_urn_ids() {
    for t in all_types() {
        let schema = load_schema(t);
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{t}");
        assert_eq!(schema["$id"], format!("urn:care:schema:{t}"), "{t}");
        assert!(schema["title"].is_string() && schema["description"].is_string(), "{t}: title and description");
        assert_eq!(schema["additionalProperties"], json!(true), "{t}: v1 only adds fields, consumers must tolerate them");
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{t} is not a valid JSON Schema: {e}");
        }
        compile(&schema);
        let required: BTreeSet<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let props: BTreeSet<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(required, props, "{t}: every described field is always written, so all are required");
    }
}

#[test]
fn every_emitted_signal_validates_against_its_schema() {
    let out = run_scenario();
    assert!(!out.is_empty(), "the scenario emitted nothing");

    let mut validators: BTreeMap<String, (Value, jsonschema::Validator)> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for rec in &out {
        let ce_type = rec.header("ce_type").unwrap_or_else(|| panic!("record without ce_type: {rec:?}")).to_string();
        let (schema, validator) = validators.entry(ce_type.clone()).or_insert_with(|| {
            let s = load_schema(&ce_type);
            let v = compile(&s);
            (s, v)
        });
        let value: Value = serde_json::from_slice(&rec.value).expect("record value is JSON");
        let errs = errors(validator, &value);
        assert!(errs.is_empty(), "{ce_type} payload {value} fails its schema:\n{}", errs.join("\n"));
        assert_eq!(rec.header("ce_dataschema"), schema["$id"].as_str(), "{ce_type}: ce_dataschema must be the schema's $id");
        assert_documented(schema, schema, &value, "");

        // The header facts the schema descriptions promise.
        assert_eq!(rec.header("ce_specversion"), Some("1.0"));
        assert_eq!(rec.header("content-type"), Some("application/json"));
        // A customer's signal is about the customer; a source anomaly about a task.
        let subject = value.get("customer_id").or_else(|| value.get("task")).and_then(Value::as_str);
        assert_eq!(rec.header("ce_subject"), subject, "{ce_type}: ce_subject");
        assert_eq!(rec.key.as_deref(), subject.map(str::as_bytes), "{ce_type}: key");
        // A profile is as of a time; a signal or anomaly happened at one.
        let at = value.get("at").or_else(|| value.get("as_of")).and_then(Value::as_str);
        assert_eq!(rec.header("ce_time"), at, "{ce_type}: ce_time equals `at` (a profile's `as_of`)");

        *seen.entry((ce_type, value["status"].as_str().unwrap_or_default().to_string())).or_default() += 1;
    }

    let types: BTreeSet<&str> = seen.keys().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, all_types().into_iter().collect(), "every output type must be exercised; saw {seen:?}");
    for t in ["io.care.activity_decline.v1", "io.care.activity_decline.v2", "io.care.silence.v1", "io.care.csat_low.v1", "io.care.purchase_churn_risk.v1", "io.care.falling_csat.v1", "io.care.ticket_surge.v1", "io.care.source_anomaly.v1"] {
        for status in ["opened", "resolved"] {
            assert!(seen.contains_key(&(t.to_string(), status.to_string())), "no {t} `{status}` emitted; saw {seen:?}");
        }
    }
}

#[test]
fn validators_reject_broken_payloads() {
    let out = run_scenario();
    let mut checked = BTreeSet::new();
    for rec in &out {
        let ce_type = rec.header("ce_type").unwrap().to_string();
        if !checked.insert(ce_type.clone()) {
            continue;
        }
        let schema = load_schema(&ce_type);
        let validator = compile(&schema);
        let good: Value = serde_json::from_slice(&rec.value).unwrap();
        assert!(validator.is_valid(&good), "{ce_type}: emitted payload should be valid: {good}");

        // Any required field removed.
        for field in schema["required"].as_array().unwrap() {
            let field = field.as_str().unwrap();
            let mut bad = good.clone();
            bad.as_object_mut().unwrap().remove(field);
            assert!(!validator.is_valid(&bad), "{ce_type}: payload without `{field}` accepted");
        }
        // Wrong types and ranges, and non-RFC 3339 / non-UTC timestamps.
        let subject = if good.get("task").is_some() { "/task" } else { "/customer_id" };
        // A profile has no status, and is as of a time.
        let (status, at) = if good.get("as_of").is_some() { ("/activity_decline", "/as_of") } else { ("/status", "/at") };
        for (pointer, v) in [
            (subject, json!("")),
            (subject, json!(42)),
            (subject, json!("x".repeat(129))),
            (status, json!("closed")),
            (at, json!("yesterday")),
            (at, json!("2024-01-01T00:00:00+00:00")),
            (at, json!("2024-13-01T00:00:00.000Z")),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = v.clone();
            assert!(!validator.is_valid(&bad), "{ce_type}: {pointer} = {v} accepted");
        }
        // A new top-level field is tolerated (fields are only ever added in v1).
        let mut extended = good.clone();
        extended["some_future_field"] = json!({"anything": [1, 2, 3]});
        assert!(validator.is_valid(&extended), "{ce_type}: an added field must be tolerated");

        // Type-specific: renamed nested fields and out-of-range figures.
        let mut bad_cases: Vec<(&str, Value)> = Vec::new();
        match ce_type.as_str() {
            "io.care.activity_decline.v1" => {
                bad_cases.push(("window.bucket_secs renamed", renamed(&good, "/window", "bucket_secs", "bucket_sec")));
                bad_cases.push(("by_kind.click.recent renamed", renamed(&good, "/by_kind/click", "recent", "recent_events")));
                for (f, v) in [("p_value", json!(1.5)), ("p_value", json!(-0.1)), ("ratio", json!(-1)), ("recent_events", json!(1.5))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.dormant.v1" => {
                bad_cases.push(("score_components.recency renamed", renamed(&good, "/score_components", "recency", "recent")));
                let mut bad = good.clone();
                bad["reactivation_score"] = json!(1.01);
                bad_cases.push(("reactivation_score > 1", bad));
                let mut bad = good.clone();
                bad["score_components"]["monetary"] = json!(-0.5);
                bad_cases.push(("monetary < 0", bad));
                let mut bad = good.clone();
                bad["status"] = json!("resolved");
                bad_cases.push(("dormant status resolved", bad));
            }
            "io.care.reactivated.v1" => {
                let mut bad = good.clone();
                bad["days_away"] = json!(-1.0);
                bad_cases.push(("days_away < 0", bad));
                let mut bad = good.clone();
                bad["status"] = json!("opened");
                bad_cases.push(("reactivated status opened", bad));
            }
            "io.care.activity_decline.v2" => {
                bad_cases.push(("window.recent_buckets renamed", renamed(&good, "/window", "recent_buckets", "recent")));
                bad_cases.push(("by_kind.click.recent renamed", renamed(&good, "/by_kind/click", "recent", "recent_events")));
                for (f, v) in [("drop", json!(1.5)), ("drop", json!(-0.1)), ("baseline_rate", json!(-1)), ("method", json!("window")), ("recent_events", json!(1.5))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.first_order.v1" => {
                for (f, v) in [("days_from_first_seen", json!(-1.0)), ("amount", json!(-5)), ("amount", json!("12")), ("status", json!("resolved")), ("first_seen_at", json!("2024-01-01"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.nps_detractor.v1" => {
                for (f, v) in [("score", json!(7)), ("score", json!(-1)), ("customer_nps", json!(-101)), ("detractors", json!(0)), ("total_spent", json!(-1)), ("status", json!("resolved")), ("previous_alert_at", json!("2024-01-01"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.csat_low.v1" => {
                for (f, v) in [("csat_pct", json!(101)), ("answers", json!(0)), ("satisfied", json!(-1)), ("status", json!("closed")), ("window_days", json!(1)), ("episode_started_at", json!("2024-01-01"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.purchase_churn_risk.v1" => {
                for (f, v) in [("p_alive", json!(1.5)), ("p_alive_threshold", json!(0)), ("repeat_purchases", json!(0)), ("days_since_last_order", json!(-1)), ("predicted_clv", json!(-1)), ("fit_calibration_end", json!("yesterday"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.falling_csat.v1" => {
                for (f, v) in [("p_value", json!(1.5)), ("earlier_csat_pct", json!(101)), ("recent_answers", json!(1)), ("earlier_answers", json!(0)), ("significance", json!(0))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.ticket_surge.v1" => {
                for (f, v) in [("p_value", json!(1.5)), ("tickets", json!(-1)), ("window_days", json!(0)), ("expected_tickets", json!(-0.1)), ("significance", json!(1))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.tier_changed.v1" => {
                for (f, v) in [("to", json!("gold")), ("from", json!("bronze")), ("r", json!(0)), ("m", json!(6)), ("purchase_days", json!(0)), ("status", json!("resolved"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.source_anomaly.v1" => {
                for (f, v) in [("task", json!("alerts")), ("openings_withheld", json!(-1)), ("kinds_affected", json!(["clicks"])), ("openings_allowed_per_day", json!(-1))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            "io.care.customer_profile.v1" => {
                let cases = [
                    ("tier", json!("gold")),
                    ("rfm", json!({"r": 0, "f": 1, "m": 1})),
                    ("open_episodes", json!({"decline": "yesterday"})),
                    ("as_of", json!("2024-01-01")),
                    ("activity_decline", json!("closed")),
                    ("csat", json!({"responses": -1, "satisfied": 0, "csat_pct": null})),
                    ("last_seen_at", json!({"visit": "2024-01-01T00:00:00.000Z"})),
                ];
                for (f, v) in cases {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
                let mut bad = good.clone();
                bad["nps"]["last"] = json!(11);
                bad_cases.push(("nps.last", bad));
            }
            "io.care.silence.v1" => {
                for (f, v) in [("days_silent", json!(-1.0)), ("rate_per_day", json!(-0.5)), ("last_activity_at", json!("2024-01-01"))] {
                    let mut bad = good.clone();
                    bad[f] = v;
                    bad_cases.push((f, bad));
                }
            }
            other => panic!("unexpected ce_type {other}"),
        }
        for (what, bad) in bad_cases {
            assert!(!validator.is_valid(&bad), "{ce_type}: {what} accepted: {bad}");
        }
    }
    assert_eq!(checked, all_types().iter().map(|s| s.to_string()).collect(), "negative checks must cover every type");
}

/// A copy of `v` with the field `from` of the object at `pointer` renamed `to`.
fn renamed(v: &Value, pointer: &str, from: &str, to: &str) -> Value {
    let mut v = v.clone();
    let obj = v.pointer_mut(pointer).and_then(Value::as_object_mut).expect("object at pointer");
    let field = obj.remove(from).expect("field to rename");
    obj.insert(to.into(), field);
    v
}
