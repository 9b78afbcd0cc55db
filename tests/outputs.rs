//! What care publishes, checked from outside through a real broker:
//! `replay` prints byte for byte what `run` publishes, and no single record
//! — however large — can stop `run` or make it loop.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::value::RawValue;

const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z: history, so nothing is rejected as future.
const T0: i64 = 1_735_689_600_000;

fn config(source: &str, out: &[String; 3], group: &str, port: u16, engine_extra: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
session_timeout_ms = 6000
commit_interval_ms = 100

[engine]
emit_from = "2000-01-01T00:00:00Z"
idle_advance_secs = 0
{engine_extra}

[outputs]
alerts = "{a}"
reactivation = "{r}"
dlq = "{d}"
partitions = 2

[http]
listen = "127.0.0.1:{port}"

[[sources]]
name = "web"
topic = "{source}"
timestamp_format = "epoch_millis"
fields = {{ customer_id = "/user/id", ts = "/sent_at", amount = "/total" }}
kind = {{ field = "/type" }}
"#,
        brokers = brokers(),
        a = out[0],
        r = out[1],
        d = out[2],
    )
}

fn outputs() -> [String; 3] {
    [unique("alerts"), unique("reactivation"), unique("dlq")]
}

fn write_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("care-config")));
    std::fs::write(&path, text).unwrap();
    path
}

/// A seeded population on 3 partitions: steady customers, customers who
/// stop (decline, then dormancy) and customers who stop and come back
/// (reactivated); orders with fractional amounts; and malformed records
/// with null keys. Returns (key, raw value) in production order.
fn stream(seed: u64) -> Vec<(Option<String>, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<(i64, Option<String>, Vec<u8>)> = Vec::new();
    for c in 0..36 {
        let id = format!("cust-{c:02}");
        let (stop, back) = match c % 3 {
            0 => (999, 999),
            1 => (rng.random_range(30..45), 999),
            _ => (rng.random_range(25..35), rng.random_range(100..115)),
        };
        let rate = rng.random_range(2..6);
        for d in 0..130 {
            if d >= stop && d < back {
                continue;
            }
            for _ in 0..rate {
                let ts = T0 + d * DAY + rng.random_range(0..DAY);
                let v = if rng.random_range(0..10) == 0 {
                    format!(r#"{{"user":{{"id":"{id}"}},"type":"order","sent_at":{ts},"total":{:.2}}}"#, rng.random_range(5.0..300.0))
                } else {
                    format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{ts}}}"#)
                };
                events.push((ts, Some(id.clone()), v.into_bytes()));
            }
        }
    }
    for (i, bad) in ["{not json", r#"{"user":{"id":"x"},"type":"scroll","sent_at":1735689600000}"#, "[1,2,3]"].iter().enumerate() {
        events.push((T0 + (i as i64 + 1) * 20 * DAY, None, bad.as_bytes().to_vec()));
    }
    events.sort_by_key(|(t, _, _)| *t);
    events.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// One output record as bytes: (topic, key, headers, value).
type Rec = (String, Option<Vec<u8>>, Vec<(String, Vec<u8>)>, Vec<u8>);

#[derive(Deserialize)]
struct Line {
    topic: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    value: Option<Box<RawValue>>,
    value_b64: Option<String>,
}

fn from_line(l: &str) -> Rec {
    let line: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad replay line {l}: {e}"));
    let value = match (line.value, line.value_b64) {
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        other => panic!("exactly one of value and value_b64 expected: {other:?}"),
    };
    (line.topic, line.key.map(String::into_bytes), line.headers.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(), value)
}

fn from_kafka(g: &Got) -> Rec {
    (g.topic.clone(), g.raw_key.clone(), g.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect(), g.value.clone())
}

/// Signals per (topic, key) in emission order; dead letters as a sorted
/// list without their origin partition and offset (a file has neither).
fn arrange(recs: Vec<Rec>, dlq: &str) -> (BTreeMap<(String, Option<Vec<u8>>), Vec<Rec>>, Vec<Rec>) {
    let (mut signals, mut dead) = (BTreeMap::<_, Vec<Rec>>::new(), Vec::new());
    for mut r in recs {
        if r.0 == dlq {
            r.2.retain(|(k, _)| k != "care_source_partition" && k != "care_source_offset");
            dead.push(r);
        } else {
            signals.entry((r.0.clone(), r.1.clone())).or_default().push(r);
        }
    }
    dead.sort();
    (signals, dead)
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_prints_byte_for_byte_what_run_publishes() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(11);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));

    // The same raw records through `replay`, routed to 3 partitions like the topic.
    let input = std::env::temp_dir().join(format!("{}.jsonl", unique("input")));
    let mut text = Vec::new();
    for (_, v) in &recs {
        text.extend_from_slice(v);
        text.push(b'\n');
    }
    std::fs::write(&input, text).unwrap();
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_care"))
        .args(["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap(), "--source", "web", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed: Vec<Rec> = String::from_utf8(replay.stdout).unwrap().lines().map(from_line).collect();
    let count = |t: &str| replayed.iter().filter(|r| r.0 == t).count();
    assert!(count(&outs[0]) >= 10 && count(&outs[1]) >= 10 && count(&outs[2]) == 3, "a stream worth comparing: {} alerts, {} triggers, {} dead letters", count(&outs[0]), count(&outs[1]), count(&outs[2]));

    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let got = consume(&[&outs[0], &outs[1], &outs[2]], replayed.len(), Duration::from_secs(90));
    // Nothing more arrives late: the count matches exactly.
    let extra = consume(&[&outs[0], &outs[1], &outs[2]], replayed.len() + 1, Duration::from_secs(2));
    assert_eq!(extra.len(), replayed.len(), "run published {} records, replay printed {}", extra.len(), replayed.len());
    let published: Vec<Rec> = got.iter().map(from_kafka).collect();
    let (want_signals, want_dead) = arrange(replayed, &outs[2]);
    let (got_signals, got_dead) = arrange(published, &outs[2]);
    assert_eq!(got_signals.keys().collect::<Vec<_>>(), want_signals.keys().collect::<Vec<_>>());
    for (k, want) in &want_signals {
        assert!(got_signals[k] == *want, "records for {:?} differ:\nrun:    {:?}\nreplay: {want:?}", k, got_signals[k]);
    }
    assert!(got_dead == want_dead, "dead letters differ:\nrun:    {got_dead:?}\nreplay: {want_dead:?}");
    assert!(got_dead.iter().all(|r| r.1.is_none()), "null keys stay null");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
    let _ = std::fs::remove_file(input);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_10_mb_record_is_dead_lettered_cut_and_the_stream_goes_on() {
    let source = unique("web");
    let outs = outputs();
    create_topics_with(&[&source], 1, &[("max.message.bytes", "12000000")]).await;
    let click = |id: &str, d: i64| format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{}}}"#, T0 + d * DAY).into_bytes();
    let mut huge = br#"{"user":{"id":"p"},"type":"click","sent_at":1735689600000,"pad":""#.to_vec();
    huge.resize(10 * 1024 * 1024 - 2, b'x');
    huge.extend_from_slice(b"\"}");
    let records = vec![
        (source.clone(), Some("a".to_string()), click("a", 0)),
        (source.clone(), None, huge.clone()),
        (source.clone(), Some("a".to_string()), click("a", 1)),
        (source.clone(), Some("b".to_string()), click("b", 70)), // a turns dormant
    ];
    produce(&records);
    let port = free_port();
    let group = unique("care");
    let cfg = write_config(&config(&source, &outs, &group, port, ""));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);

    let got = consume(&[&outs[1], &outs[2]], 2, Duration::from_secs(90));
    let dead: Vec<&Got> = got.iter().filter(|g| g.topic == outs[2]).collect();
    assert_eq!(dead.len(), 1, "{:?}", got.iter().map(|g| (&g.topic, g.value.len())).collect::<Vec<_>>());
    let d = dead[0];
    assert_eq!(d.raw_key, None, "a null key stays null");
    assert_eq!(d.header("care_error_code"), Some("oversized"));
    assert_eq!(d.header("care_original_size"), Some((10 * 1024 * 1024).to_string().as_str()));
    assert!(d.value.len() == 64 * 1024 && d.value == huge[..64 * 1024], "the first max_record_bytes bytes, {} here", d.value.len());
    let dormant: Vec<&Got> = got.iter().filter(|g| g.topic == outs[1]).collect();
    assert_eq!(dormant.len(), 1, "records after the huge one are processed");
    assert_eq!(dormant[0].key, "a");
    assert!(wait_for(Duration::from_secs(20), || committed(&group, &source) == records.len() as i64), "every offset committed, the huge one included");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dlq_too_small_for_the_largest_dead_letter_fails_at_start_naming_it() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    create_topics_with(&[&outs[2]], 1, &[("max.message.bytes", "100000")]).await;
    let cfg = write_config(&config(&source, &outs, &unique("care"), free_port(), "max_record_bytes = 200000"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&outs[2]) && err.contains("max.message.bytes") && err.contains("engine.max_record_bytes"), "{err}");
    let _ = std::fs::remove_file(cfg);
}
