//! A task's source topics merged by event time (KIP-695): history on a web
//! topic and an orders topic, both produced before care starts, gives the
//! same outputs whichever topic is produced (and so fetched) first, and the
//! same as the events replayed in time order. Without the merge, whichever
//! topic is fetched first moves stream time and makes the other's events late.

mod common;

use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;

/// One event: (event time, customer, web or order, amount).
type Ev = (i64, String, bool, f64);

/// 30 customers over 90 days on 3 partitions: steady ones, ones who stop
/// (decline, silence) and ones away for two months and back (dormant, then
/// reactivated); each orders about weekly while active. Event times are
/// distinct, so the time order is total.
fn history(seed: u64) -> Vec<Ev> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut evs = Vec::new();
    for c in 0..30 {
        let id = format!("m-{c:02}");
        let (stop, back) = match c % 3 {
            0 => (999, 999),
            1 => (rng.random_range(40..55), 999),
            _ => (20, 85),
        };
        let rate = rng.random_range(1..5);
        for d in (0..90).filter(|d| *d < stop || *d >= back) {
            for _ in 0..rate {
                evs.push((T0 + d * DAY + rng.random_range(0..DAY), id.clone(), true, 0.0));
            }
            if rng.random_range(0..7) == 0 {
                evs.push((T0 + d * DAY + rng.random_range(0..DAY), id.clone(), false, rng.random_range(5.0..200.0)));
            }
        }
    }
    evs.sort_by(|a, b| a.0.cmp(&b.0));
    evs.dedup_by_key(|e| e.0);
    evs
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The events as each topic carries them: (topic, key, value).
fn records(evs: &[Ev], web: &str, orders: &str) -> (Vec<(String, Option<String>, Vec<u8>)>, Vec<(String, Option<String>, Vec<u8>)>) {
    let (mut w, mut o) = (Vec::new(), Vec::new());
    for (i, (ts, id, is_web, amount)) in evs.iter().enumerate() {
        if *is_web {
            let v = format!(r#"{{"user":{{"id":"{id}"}},"type":"page_view","sent_at":{ts}}}"#);
            w.push((web.to_string(), Some(id.clone()), v.into_bytes()));
        } else {
            let v = format!(r#"{{"order_id":"o{i}","customer":{{"number":"{id}"}},"total":{amount:.2},"created_at":"{}"}}"#, rfc3339(*ts));
            o.push((orders.to_string(), Some(id.clone()), v.into_bytes()));
        }
    }
    (w, o)
}

/// The same events as canonical lines, in time order.
fn canonical(evs: &[Ev]) -> Vec<(Option<String>, Vec<u8>)> {
    evs.iter()
        .enumerate()
        .map(|(i, (ts, id, is_web, amount))| {
            let v = if *is_web {
                format!(r#"{{"customer_id":"{id}","kind":"click","ts":"{}"}}"#, rfc3339(*ts))
            } else {
                format!(r#"{{"customer_id":"{id}","kind":"order","ts":"{}","amount":{amount:.2},"event_id":"o{i}"}}"#, rfc3339(*ts))
            };
            (Some(id.clone()), v.into_bytes())
        })
        .collect()
}

fn two_source_config(web: &str, orders: &str, out: &[String; 3], group: &str, port: u16) -> String {
    let one = config(web, out, group, port, "");
    format!(
        r#"{}
[[sources]]
name = "orders"
topic = "{orders}"
timestamp_format = "rfc3339"
fields = {{ customer_id = "/customer/number", ts = "/created_at", amount = "/total", event_id = "/order_id" }}
kind = {{ fixed = "order" }}
"#,
        one.replace(r#"kind = { field = "/type" }"#, r#"kind = { field = "/type", map = { page_view = "click" } }"#)
    )
}

/// The role of output topic `topic`, to compare records across runs.
fn role(out: &[String; 3], topic: &str) -> String {
    if topic == profiles_topic(out) {
        return "profiles".into();
    }
    if topic == anomalies_topic(out) {
        return "anomalies".into();
    }
    ["alerts", "reactivation", "dlq"][out.iter().position(|t| t == topic).unwrap_or_else(|| panic!("not an output topic: {topic}"))].to_string()
}

/// Produces both topics (`orders_first` or web first), runs care over
/// them and returns every output once all records are consumed.
async fn run(evs: &[Ev], orders_first: bool, want: usize) -> (Vec<Rec>, [String; 3]) {
    let (web, orders) = (unique("web"), unique("orders"));
    create_topics(&[&web, &orders], 3).await;
    let (w, o) = records(evs, &web, &orders);
    if orders_first {
        produce(&o);
        produce(&w);
    } else {
        produce(&w);
        produce(&o);
    }
    let (out, group, port) = (outputs(), unique("care"), free_port());
    let cfg = write_config(&two_source_config(&web, &orders, &out, &group, port));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let got = consume(&[&out[0], &out[1], &out[2], &profiles_topic(&out), &anomalies_topic(&out)], want, Duration::from_secs(90));
    let metric = |name: &str| -> u64 {
        let body = http_get(port, "/metrics").1;
        body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64
    };
    let total = (w.len() + o.len()) as u64;
    assert!(wait_for(Duration::from_secs(30), || metric("care_events_consumed_total") == total), "consumed {} of {total}", metric("care_events_consumed_total"));
    assert_eq!(metric("care_events_late_total"), 0, "merged by event time, nothing is late");
    assert_eq!(metric("care_events_folded_total"), total);
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
    (got.iter().map(from_kafka).map(|mut r| {
        // Compare across runs: the topic by its role.
        r.0 = role(&out, &r.0);
        r
    }).collect(), out)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_topics_give_the_same_outputs_whichever_is_fetched_first() {
    let evs = history(7);
    // The truth: the events in time order through `care replay`.
    let (out, port) = (outputs(), free_port());
    let cfg = write_config(&two_source_config("w", "o", &out, "g", port));
    let want: Vec<Rec> = {
        let input = std::env::temp_dir().join(format!("{}.jsonl", unique("merge")));
        let text: Vec<u8> = canonical(&evs).into_iter().flat_map(|(_, mut v)| {
            v.push(b'\n');
            v
        }).collect();
        std::fs::write(&input, text).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_care"))
            .args(["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap(), "--partitions", "3"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let _ = std::fs::remove_file(input);
        String::from_utf8(o.stdout).unwrap().lines().map(from_line).map(|mut r| {
            r.0 = role(&out, &r.0);
            r
        }).collect()
    };
    let _ = std::fs::remove_file(cfg);
    let types = |recs: &[Rec], t: &str| recs.iter().filter(|r| r.2.iter().any(|(k, v)| k == "ce_type" && v.starts_with(t.as_bytes()))).count();
    for t in ["io.care.activity_decline", "io.care.silence", "io.care.dormant", "io.care.reactivated"] {
        assert!(types(&want, t) >= 3, "the history makes at least 3 of {t}: {}", types(&want, t));
    }
    let (orders_first, _) = run(&evs, true, want.len()).await;
    assert_same_records(orders_first, want.clone(), "dlq");
    let (web_first, _) = run(&evs, false, want.len()).await;
    assert_same_records(web_first, want, "dlq");
}
