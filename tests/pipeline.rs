//! The whole `care run` pipeline through a real Kafka broker: two
//! differently shaped source topics in, exact alerts, triggers and dead
//! letters out, every record accounted for, offsets committed on SIGTERM.

mod common;

use std::time::Duration;

use common::*;

const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z: history, so nothing is rejected as future.
const T0: i64 = 1_735_689_600_000;

fn web(customer: &str, kind: &str, ts: i64, extra: &str) -> Vec<u8> {
    format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{extra}}}"#).into_bytes()
}

fn config(web_topic: &str, orders_topic: &str, out: [&str; 3], group: &str, port: u16) -> String {
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
session_timeout_ms = 6000
commit_interval_ms = 100

[engine]
activity_kinds = ["click", "login", "chat"]
max_record_bytes = 2048
emit_from = "2000-01-01T00:00:00Z"
idle_advance_secs = 0

[outputs]
alerts = "{a}"
reactivation = "{r}"
dlq = "{d}"
partitions = 1

[http]
listen = "127.0.0.1:{port}"

[[sources]]
name = "web"
topic = "{web_topic}"
timestamp_format = "epoch_millis"
fields = {{ customer_id = "/user/id", ts = "/sent_at", csat = "/survey/csat", nps = "/survey/nps" }}
kind = {{ field = "/type", map = {{ page_view = "click", signin = "login", support_chat = "chat", support_ticket = "ticket", survey_answer = "survey" }} }}
# Dead-lettered rather than skipped (the default; tests/hostile.rs), so every reason shows here.
unknown_kinds = "dlq"

[[sources]]
name = "orders"
topic = "{orders_topic}"
timestamp_format = "rfc3339"
fields = {{ customer_id = "/customer/number", ts = "/created_at", amount = "/total", event_id = "/order_id" }}
kind = {{ fixed = "order" }}
"#,
        brokers = brokers(),
        a = out[0],
        r = out[1],
        d = out[2],
    )
}

/// Customer `a` is active 4×/day for 40 days (with a chat, a ticket and
/// survey answers), goes quiet, and comes back on day 131; `b` signs in daily
/// and so moves stream time. Two orders, in the middle of `a`'s activity,
/// arrive on the second topic, produced after the whole web topic.
fn good_records(web_topic: &str, orders_topic: &str) -> Vec<(String, Option<String>, Vec<u8>)> {
    let mut web_events: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for d in 0..40 {
        for h in 0..4 {
            let kind = match (d, h) {
                (3, 0) => "support_chat",
                (5, 0) => "support_ticket",
                _ => "page_view",
            };
            let extra = if (d, h) == (3, 0) { r#","survey":{"csat":2,"nps":3}"# } else { "" };
            let ts = T0 + d * DAY + h * 3_600_000 + 1_000;
            web_events.push((ts, "a".into(), web(&format!("a"), kind, ts, extra)));
        }
    }
    for d in 0..132 {
        let ts = T0 + d * DAY + 12 * 3_600_000;
        web_events.push((ts, "b".into(), web("b", "signin", ts, "")));
    }
    // `s` only answers surveys: a 9, then a 2 on day 50 (a detractor). Not
    // activity, so nothing of the activity chain ever judges `s`.
    for (d, answer) in [(10, r#","survey":{"csat":5,"nps":9}"#), (50, r#","survey":{"csat":1,"nps":2}"#)] {
        let ts = T0 + d * DAY + 15 * 3_600_000;
        web_events.push((ts, "s".into(), web("s", "survey_answer", ts, answer)));
    }
    let back = T0 + 131 * DAY + 13 * 3_600_000;
    web_events.push((back, "a".into(), web("a", "page_view", back, "")));
    web_events.sort_by_key(|(t, _, _)| *t);
    let mut recs: Vec<_> = web_events.into_iter().map(|(_, k, v)| (web_topic.to_string(), Some(k), v)).collect();
    // The task merges its two partitions by event time, so whichever topic
    // is fetched first, the orders fold between the web events of their day.
    for (i, day) in [2, 20].into_iter().enumerate() {
        let v = format!(r#"{{"order_id":"o{i}","customer":{{"number":"a"}},"total":"49.50","created_at":"2025-01-{:02}T10:00:00Z"}}"#, day + 1);
        recs.push((orders_topic.to_string(), Some("a".into()), v.into_bytes()));
    }
    recs
}

/// One bad record per reason; (payload, expected error code).
fn bad_records() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (b"{not json".to_vec(), "invalid_json"),
        (br#"{"type":"page_view","sent_at":1735689600000}"#.to_vec(), "missing_field"),
        (web("z", "scroll", T0, ""), "unknown_kind"),
        (web("z", "support_chat", T0, r#","survey":{"csat":9}"#), "invalid_csat"),
        (web("z", "page_view", 4_102_444_800_000, ""), "future_timestamp"),
        (web("z", "page_view", T0, &format!(r#","pad":"{}""#, "x".repeat(4000))), "oversized"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_two_topics_become_exact_alerts_triggers_and_dead_letters() {
    let (web_topic, orders_topic) = (unique("web"), unique("orders"));
    let outs = [unique("alerts"), unique("reactivation"), unique("dlq")];
    create_topics(&[&web_topic, &orders_topic], 1).await;
    let bad = bad_records();
    let mut records: Vec<_> = bad.iter().map(|(v, _)| (web_topic.clone(), Some("bad-key".to_string()), v.clone())).collect();
    records.extend(good_records(&web_topic, &orders_topic));
    let total = records.len() as u64;
    produce(&records);

    let group = unique("care");
    let port = free_port();
    let cfg_path = std::env::temp_dir().join(format!("{}.toml", unique("care-config")));
    std::fs::write(&cfg_path, config(&web_topic, &orders_topic, [&outs[0], &outs[1], &outs[2]], &group, port)).unwrap();
    let care = CareProcess::start(&["run", "--config", cfg_path.to_str().unwrap()]);

    let got = consume(&[&outs[0], &outs[1], &outs[2]], 6 + bad.len(), Duration::from_secs(90));
    let of = |t: &str| got.iter().filter(|g| g.topic == t).cloned().collect::<Vec<_>>();
    let (alerts, triggers, dlq) = (of(&outs[0]), of(&outs[1]), of(&outs[2]));

    // One decline for `a`: about 4 activity events a day, then none; 0.7 ×
    // 3.97 ≈ 2.78 of evidence a day crosses ln(ARL) = 10.32 on the fourth
    // empty day, so it opens as bucket 43 seals. Then silence, a week after
    // the last activity, supersedes the decline.
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    // The chat on day 3 carried an NPS answer of 3: a detractor alert, beside
    // the activity alerts.
    let detractor = &alerts[0];
    assert_eq!((detractor.key.as_str(), detractor.header("ce_type")), ("a", Some("io.care.nps_detractor.v1")));
    assert_eq!(detractor.header("ce_time"), Some("2025-01-04T00:00:01.000Z"));
    let n = detractor.json();
    assert_eq!((n["score"].as_u64(), n["nps_responses"].as_u64(), n["orders"].as_u64()), (Some(3), Some(1), Some(1)), "{n}");
    let decline = &alerts[1];
    assert_eq!(decline.key, "a");
    assert_eq!(decline.header("ce_type"), Some("io.care.activity_decline.v2"));
    assert_eq!(decline.header("ce_specversion"), Some("1.0"));
    assert_eq!(decline.header("ce_subject"), Some("a"));
    assert_eq!(decline.header("content-type"), Some("application/json"));
    let v = decline.json();
    let (rate, stat, h) = (v["baseline_rate"].as_f64().unwrap(), v["statistic"].as_f64().unwrap(), v["threshold"].as_f64().unwrap());
    assert_eq!(decline.header("ce_time"), Some("2025-02-14T00:00:00.000Z"), "{v}");
    assert_eq!((v["status"].as_str(), v["recent_events"].as_u64()), (Some("opened"), Some(12)), "{v}");
    assert!((3.9..4.0).contains(&rate) && (h - 30_437.5f64.ln()).abs() < 1e-3 && stat >= h && stat < h + 2.8, "{v}");
    let survey_only = &alerts[3];
    assert_eq!((survey_only.key.as_str(), survey_only.header("ce_type")), ("s", Some("io.care.nps_detractor.v1")));
    assert_eq!((survey_only.json()["score"].as_u64(), survey_only.json()["promoters"].as_u64()), (Some(2), Some(1)));
    let silence = &alerts[2];
    assert_eq!((silence.key.as_str(), silence.header("ce_type")), ("a", Some("io.care.silence.v1")));
    let s = silence.json();
    assert_eq!(s["last_activity_at"], "2025-02-09T03:00:01.000Z");
    // ~4 a day: the quiet time allowed is under the floor, a week.
    assert_eq!(silence.header("ce_time"), Some("2025-02-16T03:00:01.000Z"), "{s}");

    // Dormant exactly 60 days after the last activity, then reactivated.
    let types: Vec<_> = triggers.iter().map(|t| (t.key.as_str(), t.header("ce_type").unwrap_or_default())).collect();
    assert_eq!(types, [("a", "io.care.dormant.v1"), ("a", "io.care.reactivated.v1")]);
    assert_eq!(triggers[0].header("ce_time"), Some("2025-04-10T03:00:01.000Z"));
    assert_eq!(triggers[0].json()["last_activity_at"], "2025-02-09T03:00:01.000Z");
    assert_eq!(triggers[1].json()["dormant_since"], "2025-04-10T03:00:01.000Z");
    assert_ne!(triggers[0].header("ce_id"), triggers[1].header("ce_id"));

    // Every bad record in the DLQ, bytes intact, origin and code in headers.
    assert_eq!(dlq.len(), bad.len(), "{dlq:?}");
    for (i, (g, (payload, code))) in dlq.iter().zip(&bad).enumerate() {
        if *code == "oversized" {
            // Cut to max_record_bytes so it always fits the DLQ; the size says what was cut.
            assert!(g.value == payload[..2048], "oversized dead letter is the record's first 2048 bytes");
            assert_eq!(g.header("care_original_size"), Some(payload.len().to_string().as_str()));
        } else {
            assert!(&g.value == payload, "dead letter {i} keeps the record's bytes");
        }
        assert_eq!(g.key, "bad-key");
        assert_eq!(g.header("care_error_code"), Some(*code));
        assert_eq!(g.header("care_source_topic"), Some(web_topic.as_str()));
        assert_eq!(g.header("care_source_partition"), Some("0"));
        assert_eq!(g.header("care_source_offset"), Some(i.to_string().as_str()));
        assert!(!g.header("care_error_message").unwrap_or_default().is_empty());
    }

    // Nothing dropped: consumed = folded + late + duplicate + skipped + rejected, over all records.
    let metrics = |name: &str| -> u64 {
        let (_, body) = http_get(port, "/metrics");
        body.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64
    };
    assert!(wait_for(Duration::from_secs(30), || metrics("care_events_consumed_total") == total), "consumed {} of {total}", metrics("care_events_consumed_total"));
    let accounted = metrics("care_events_folded_total") + metrics("care_events_late_total") + metrics("care_events_duplicate_total") + metrics("care_events_skipped_total") + metrics("care_events_rejected_total");
    assert_eq!(accounted, total);
    // Merged by event time: no event is late, whichever topic came first.
    assert_eq!(metrics("care_events_late_total"), 0);
    assert_eq!(metrics("care_events_rejected_total"), bad.len() as u64);
    assert_eq!(http_get(port, "/readyz").0, 200);
    assert_eq!(http_get(port, "/healthz").0, 200);
    let (status, card) = http_get(port, "/customers/a");
    assert_eq!(status, 200);
    let card: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(card["orders"]["count"], 2);
    assert_eq!(card["csat"]["responses"], 1);
    let (status, card) = http_get(port, "/customers/s");
    assert_eq!(status, 200);
    let card: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(card["csat"]["responses"], 2, "{card}");
    assert_eq!(http_get(port, "/customers/nobody").0, 404);
    let metrics_text = http_get(port, "/metrics").1;
    assert!(!metrics_text.contains("\"a\""), "no customer id in any label");
    // What an SRE alerts on: lag, stream time, commit latency, the build, the process.
    for series in [
        "care_consumer_lag_max ",
        &format!("care_consumer_lag{{partition=\"0\",source=\"orders\"}} 0"),
        "care_stream_time_seconds{task=\"0_0\"} 1747054800",
        "care_stream_time_lag_seconds{task=\"0_0\"}",
        "care_commit_seconds_count ",
        "care_flush_seconds_count ",
        "care_build_info{git_sha=",
        "process_resident_memory_bytes ",
    ] {
        assert!(metrics_text.contains(series), "no {series} in /metrics:\n{metrics_text}");
    }

    // SIGTERM: clean exit with every processed offset committed.
    let status = care.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    let web_count = records.iter().filter(|(t, _, _)| *t == web_topic).count() as i64;
    assert_eq!(committed(&group, &web_topic), web_count);
    assert_eq!(committed(&group, &orders_topic), 2);
    let _ = std::fs::remove_file(cfg_path);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_source_topic_fails_at_start_naming_it() {
    let port = free_port();
    let missing = unique("missing");
    let cfg_path = std::env::temp_dir().join(format!("{}.toml", unique("care-config")));
    let outs = [unique("alerts"), unique("reactivation"), unique("dlq")];
    std::fs::write(&cfg_path, config(&missing, &format!("{missing}-orders"), [&outs[0], &outs[1], &outs[2]], &unique("g"), port)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["run", "--config", cfg_path.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing) && err.contains("does not exist"), "{err}");
}
