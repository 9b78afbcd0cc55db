//! Hostile input through the real broker: every malformed, ambiguous or
//! oversized record gets its documented outcome (folded, skipped, or a
//! dead letter with its code), the process stays up, and consumed =
//! folded + late + duplicate + skipped + rejected holds on /metrics. Then
//! records off their murmur2 partition: a stray one is a dead letter, a
//! producer with another partitioner stops care with an error naming the
//! source.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// One record to produce: key, value (`None`: a tombstone), headers, and
/// an explicit partition.
struct Raw {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(&'static str, &'static [u8])>,
    partition: Option<i32>,
}

fn raw(value: impl Into<Vec<u8>>) -> Raw {
    Raw { key: Some(b"k".to_vec()), value: Some(value.into()), headers: Vec::new(), partition: None }
}

fn produce_raw(topic: &str, records: &[Raw]) {
    let p: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", brokers()).set("message.max.bytes", "16000000").create().unwrap();
    for r in records {
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic).timestamp(T0 + 12_345);
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if !r.headers.is_empty() {
            let h = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
            rec = rec.headers(h);
        }
        p.send(rec).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn click(id: &str, ts: i64) -> String {
    format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{ts}}}"#)
}

/// Every hostile case: (what it is, the record, its outcome: a DLQ code,
/// `folded`, or `skipped`).
fn corpus() -> Vec<(&'static str, Raw, &'static str)> {
    let t = T0 + 1_000;
    let order = |total: &str| format!(r#"{{"user":{{"id":"o"}},"type":"order","sent_at":{t},"total":{total}}}"#);
    let mut deep = String::from(r#"{"user":{"id":"d"},"type":"click","sent_at":1735689600000,"x":"#);
    deep.push_str(&"[".repeat(300));
    deep.push_str(&"]".repeat(300));
    deep.push('}');
    let mut huge = br#"{"user":{"id":"h"},"type":"click","sent_at":1735689600000,"pad":""#.to_vec();
    huge.resize(10 * 1024 * 1024, b'x');
    huge.extend_from_slice(b"\"}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(click("bom", t).as_bytes());
    let mut with_headers = raw("{not json");
    with_headers.headers = vec![("traceparent", b"00-4bf92f3577b34da6-00f067aa0ba902b7-01"), ("origin", b"web")];
    vec![
        ("a good click", raw(click("a", t)), "folded"),
        ("empty", raw(""), "invalid_json"),
        ("whitespace", raw(" \n\t "), "invalid_json"),
        ("truncated", raw(r#"{"user":{"id":"a"},"type":"cl"#), "invalid_json"),
        ("an array", raw("[1,2,3]"), "not_an_object"),
        ("null", raw("null"), "not_an_object"),
        ("a number", raw("42"), "not_an_object"),
        ("invalid UTF-8", raw(b"{\"user\":{\"id\":\"\xff\xfe\"},\"type\":\"click\",\"sent_at\":1735689601000}".to_vec()), "invalid_json"),
        ("a lone surrogate", raw(r#"{"user":{"id":"\ud800"},"type":"click","sent_at":1735689601000}"#), "invalid_json"),
        ("an escaped NUL in the id", raw(r#"{"user":{"id":"a\u0000b"},"type":"click","sent_at":1735689601000}"#), "invalid_customer_id"),
        ("a raw NUL byte", raw(b"{\"user\":{\"id\":\"a\0b\"},\"type\":\"click\",\"sent_at\":1735689601000}".to_vec()), "invalid_json"),
        ("a 100 kB id", raw(click(&"i".repeat(100_000), t)), "oversized"),
        ("a 129-byte id", raw(click(&"i".repeat(129), t)), "invalid_customer_id"),
        ("deep nesting", raw(deep), "invalid_json"),
        ("a 10 MB record", raw(huge), "oversized"),
        ("an overflowing time", raw(r#"{"user":{"id":"a"},"type":"click","sent_at":1e400}"#), "invalid_json"),
        ("an overflowing amount", raw(order("1e308")), "invalid_amount"),
        ("an amount over max_amount", raw(order("1000000001")), "invalid_amount"),
        ("a NaN amount", raw(order("\"NaN\"")), "invalid_amount"),
        ("a NaN time", raw(r#"{"user":{"id":"a"},"type":"click","sent_at":"NaN"}"#), "invalid_timestamp"),
        ("a far-future time", raw(click("a", 4_102_444_800_000)), "future_timestamp"),
        ("a negative time", raw(click("a", -86_400_000)), "invalid_timestamp"),
        ("duplicate keys", raw(r#"{"user":{"id":"a"},"user":{"id":"b"},"type":"click","sent_at":1735689601000}"#), "duplicate_key"),
        ("a byte-order mark", raw(bom), "folded"),
        ("a numeric id", raw(format!(r#"{{"user":{{"id":42}},"type":"click","sent_at":{t}}}"#)), "folded"),
        ("a kind in the wrong case", raw(format!(r#"{{"user":{{"id":"a"}},"type":"Click","sent_at":{t}}}"#)), "folded"),
        ("a tombstone", Raw { value: None, ..raw("") }, "skipped"),
        ("an unknown type", raw(format!(r#"{{"user":{{"id":"a"}},"type":"scroll","sent_at":{t}}}"#)), "skipped"),
        ("a null key and headers", Raw { key: None, ..with_headers }, "invalid_json"),
        ("a good order", raw(order("19.99")), "folded"),
    ]
}

/// Sum of a metric's samples (all label sets) whose line starts with `name`.
fn metric(port: u16, name: &str) -> u64 {
    let (_, body) = http_get(port, "/metrics");
    body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn every_hostile_record_has_its_documented_outcome_and_care_stays_up() {
    let source = unique("web");
    let outs = outputs();
    create_topics_with(&[&source], 1, &[("max.message.bytes", "12000000")]).await;
    let cases = corpus();
    let records: Vec<Raw> = cases.iter().map(|(_, r, _)| Raw { key: r.key.clone(), value: r.value.clone(), headers: r.headers.clone(), partition: None }).collect();
    produce_raw(&source, &records);
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));
    // Its log is read at the end (a few dozen lines: the pipe never fills).
    let care = CareProcess::start_capturing(&["run", "--config", cfg.to_str().unwrap()]);

    let want_dead: BTreeMap<String, &str> = cases.iter().enumerate().filter(|(_, c)| !matches!(c.2, "folded" | "skipped")).map(|(i, c)| (i.to_string(), c.2)).collect();
    let dead = consume(&[&outs[2]], want_dead.len(), Duration::from_secs(90));
    let got: BTreeMap<String, &str> = dead.iter().map(|d| (d.header("care_source_offset").unwrap().to_string(), d.header("care_error_code").unwrap())).collect();
    for (offset, code) in &want_dead {
        let what = cases[offset.parse::<usize>().unwrap()].0;
        assert_eq!(got.get(offset), Some(code), "{what} (offset {offset})");
    }
    assert_eq!(dead.len(), want_dead.len(), "no other dead letters: {got:?}");

    // The dead letter reads like a Kafka Connect one and keeps the record's key, headers and time.
    let last = dead.iter().find(|d| d.raw_key.is_none()).expect("the null-keyed record's dead letter");
    assert_eq!(last.header("traceparent"), Some("00-4bf92f3577b34da6-00f067aa0ba902b7-01"), "original headers first: {:?}", last.headers);
    assert_eq!(last.headers[..2].iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["traceparent", "origin"]);
    assert_eq!(last.timestamp, Some(T0 + 12_345), "the original timestamp");
    assert_eq!(last.header("__connect.errors.topic"), Some(source.as_str()));
    assert_eq!(last.header("__connect.errors.partition"), Some("0"));
    assert_eq!(last.header("__connect.errors.offset"), last.header("care_source_offset"));
    assert_eq!(last.header("__connect.errors.exception.class.name"), Some("io.care.DecodeError"));
    assert!(last.header("__connect.errors.exception.message").is_some_and(|m| m.contains("not valid JSON")));
    let cut = dead.iter().find(|d| d.header("care_original_size") == Some("10485762")).expect("the 10 MB record's dead letter");
    assert_eq!(cut.value.len(), 64 * 1024, "cut to max_record_bytes");

    // Every record accounted for, on /metrics.
    let total = cases.len() as u64;
    assert!(wait_for(Duration::from_secs(30), || metric(port, "care_events_consumed_total") == total), "consumed {} of {total}", metric(port, "care_events_consumed_total"));
    let folded = cases.iter().filter(|c| c.2 == "folded").count() as u64;
    let skipped = cases.iter().filter(|c| c.2 == "skipped").count() as u64;
    assert_eq!(metric(port, "care_events_folded_total"), folded);
    assert_eq!(metric(port, "care_events_skipped_total{reason=\"tombstone\""), 1);
    assert_eq!(metric(port, "care_events_skipped_total{reason=\"unknown_kind\""), 1);
    assert_eq!(metric(port, "care_events_rejected_total"), want_dead.len() as u64);
    let accounted = ["folded", "late", "duplicate", "skipped", "rejected"].iter().map(|m| metric(port, &format!("care_events_{m}_total"))).sum::<u64>();
    assert_eq!(accounted, total, "consumed = folded + late + duplicate + skipped + rejected");
    assert_eq!(skipped, 2);

    // Still up and serving; the numeric id and the BOM record are customers.
    assert_eq!(http_get(port, "/healthz").0, 200);
    assert_eq!(http_get(port, "/customers/42").0, 200);
    assert_eq!(http_get(port, "/customers/bom").0, 200);
    let (status, log) = care.terminate_with_stderr(Duration::from_secs(30));
    assert!(status.success(), "a clean exit after all that: {log}");
    // The operator is told once which types are dropped, and when the backfill ended.
    let unknown: Vec<&str> = log.lines().filter(|l| l.contains("Skipping event types")).collect();
    assert!(unknown.len() == 1 && unknown[0].contains("scroll") && unknown[0].contains("source=web"), "{log}");
    assert_eq!(log.lines().filter(|l| l.contains("Stream time passed emit_from") && l.contains("suppressed=0")).count(), 1, "{log}");
    // Dead letters are all counted, and logged one line per code: the
    // corpus arrives in far less than the 10 s between two lines of a code.
    let dead_lines: Vec<&str> = log.lines().filter(|l| l.contains("Record dead-lettered")).collect();
    let codes: std::collections::BTreeSet<&str> = want_dead.values().copied().collect();
    for code in &codes {
        assert_eq!(dead_lines.iter().filter(|l| l.contains(&format!("code=\"{code}\""))).count(), 1, "{code}: {dead_lines:#?}");
    }
    assert_eq!(dead_lines.len(), codes.len(), "{dead_lines:#?}");
    assert!(want_dead.values().filter(|c| **c == "invalid_json").count() > 2, "the corpus has many of one code");
    // The data's story is in the log too: a summary once the task has
    // caught up with the backlog (the run is shorter than the summary's minute).
    let summary: Vec<&str> = log.lines().filter(|l| l.contains("Data summary")).collect();
    assert_eq!(summary.len(), 1, "{log}");
    for field in [format!("consumed={total}"), format!("folded={folded}"), "skipped=unknown_kind:1,tombstone:1".into(), "invalid_json:".into()] {
        assert!(summary[0].contains(&field), "{field} in {}", summary[0]);
    }
    let _ = std::fs::remove_file(cfg);
}

/// Customers and the partition murmur2 gives each of them among `n`.
fn customers(n: i32, count: usize) -> Vec<(String, i32)> {
    (0..count).map(|i| format!("cust-{i}")).map(|id| {
        let p = care::partition::for_key(id.as_bytes(), n);
        (id, p)
    }).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_record_is_a_misrouted_dead_letter_and_no_second_state() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let ids = customers(3, 20);
    let mut records: Vec<Raw> = ids.iter().map(|(id, p)| Raw { key: Some(id.clone().into_bytes()), partition: Some(*p), ..raw(click(id, T0)) }).collect();
    // One record without a key, on the wrong partition: a second state for cust-0 elsewhere if folded.
    let (stray, home) = &ids[0];
    records.push(Raw { key: None, partition: Some((home + 1) % 3), ..raw(click(stray, T0 + 1_000)) });
    produce_raw(&source, &records);
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let dead = consume(&[&outs[2]], 1, Duration::from_secs(90));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("care_error_code"), Some("misrouted"));
    assert_eq!(dead[0].header("care_source_partition"), Some(((home + 1) % 3).to_string().as_str()));
    assert!(wait_for(Duration::from_secs(30), || metric(port, "care_events_consumed_total") == records.len() as u64));
    let (_, card) = http_get(port, &format!("/customers/{stray}"));
    let card: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(card["partition"], *home, "the customer's one state is on its murmur2 partition: {card}");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_producer_with_another_partitioner_stops_care_naming_the_source() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    // Every record one partition off its murmur2 one, as a producer with
    // librdkafka's default partitioner puts two in three.
    let records: Vec<Raw> = customers(3, 150).iter().map(|(id, p)| Raw { key: Some(id.clone().into_bytes()), partition: Some((p + 1) % 3), ..raw(click(id, T0)) }).collect();
    produce_raw(&source, &records);
    let cfg = write_config(&config(&source, &outs, &unique("care"), free_port(), ""));
    let care = CareProcess::start_capturing(&["run", "--config", cfg.to_str().unwrap()]);
    let (status, stderr) = care.exit_with_stderr(Duration::from_secs(90));
    assert!(!status.success(), "care stops: {stderr}");
    assert!(stderr.contains("source `web`") && stderr.contains(&source), "names the source and its topic: {stderr}");
    assert!(stderr.contains("murmur2_random") && stderr.contains("consistent_random"), "says how to fix it: {stderr}");
    assert!(stderr.contains("on_misrouted = \"dlq\""), "and how to get past what was written: {stderr}");
    let _ = std::fs::remove_file(cfg);
    // A restart stops again at the same records; with on_misrouted = "dlq"
    // care dead-letters them and goes on.
    let (outs, port) = (outputs(), free_port());
    let text = config(&source, &outs, &unique("care"), port, "").replace("[[sources]]\nname = \"web\"", "[[sources]]\nname = \"web\"\non_misrouted = \"dlq\"");
    assert!(text.contains("on_misrouted"), "{text}");
    let cfg = write_config(&text);
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let dead = consume(&[&outs[2]], records.len(), Duration::from_secs(60));
    assert_eq!(dead.len(), records.len());
    assert!(dead.iter().all(|d| d.header("care_error_code") == Some("misrouted")));
    assert!(care.terminate(Duration::from_secs(30)).success(), "care carried on");
    let _ = std::fs::remove_file(cfg);
}
