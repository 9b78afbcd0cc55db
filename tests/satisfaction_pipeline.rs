//! Satisfaction signals through the real broker: `care run` with falling
//! CSAT, low CSAT and ticket surges on, scripted customers on one topic.
//! Each gets exactly the alerts its story calls for: a steady customer
//! none, an unhappy detractor an NPS alert and low CSAT, one whose answers
//! turn bad a falling-CSAT alert, a ticket storm a surge, and a survey-only
//! responder no activity alert, however long they stay away.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;
const DAY: i64 = 86_400_000;
const LAST_DAY: i64 = 150;

fn event(customer: &str, kind: &str, day: i64, minute: i64, extra: &str) -> (i64, Vec<u8>) {
    let ts = T0 + day * DAY + minute * 60_000;
    (ts, format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{extra}}}"#).into_bytes())
}

fn script() -> Vec<(i64, Vec<u8>)> {
    let mut e = Vec::new();
    for d in 0..=LAST_DAY {
        for who in ["steady", "unhappy", "falls", "storm"] {
            e.push(event(who, "click", d, 1, ""));
        }
        if d % 10 == 5 {
            e.push(event("steady", "chat", d, 2, r#","csat":5"#));
            e.push(event("unhappy", "ticket", d, 2, r#","csat":1,"nps":2"#));
            // Satisfied for 100 days, then three answers of 1.
            let csat = if d < 100 { 5 } else { 1 };
            e.push(event("falls", "chat", d, 2, &format!(r#","csat":{csat}"#)));
        }
    }
    // A ticket a quarter, then three in a week.
    e.extend([20, 110, 120, 122, 124].map(|d| event("storm", "ticket", d, 3, "")));
    // Survey answers only, twice: never a visit.
    e.extend([3, 140].map(|d| event("responder", "survey", d, 4, r#","nps":9"#)));
    e.sort_by_key(|(ts, _)| *ts);
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn each_scripted_customer_gets_exactly_the_satisfaction_alerts_of_its_story() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    produce(&script().into_iter().map(|(_, v)| (source.clone(), None, v)).collect::<Vec<_>>());
    let (group, port) = (unique("care"), free_port());
    let detect = "[detect.falling_csat]\nenabled = true\n[detect.csat_low]\nenabled = true\n[detect.ticket_surge]\nenabled = true\n";
    let mut text = config(&source, &outs, &group, port, "");
    text = text.replace("fields = { customer_id = \"/user/id\", ts = \"/sent_at\", amount = \"/total\" }", "fields = { customer_id = \"/user/id\", ts = \"/sent_at\", amount = \"/total\", csat = \"/csat\", nps = \"/nps\" }");
    let cfg = write_config(&format!("{text}\n{detect}"));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let last = "2025-05-31T00:01:00.000Z";
    assert!(
        wait_for(Duration::from_secs(90), || {
            let (status, body) = http_get(port, "/customers/steady");
            status == 200 && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v["as_of"] == last)
        }),
        "care never reached the last day"
    );
    let got = consume(&[&outs[0], &outs[1]], usize::MAX, Duration::from_secs(15));
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in &got {
        let ce = g.header("ce_type").unwrap_or_default().trim_start_matches("io.care.").to_string();
        by_customer.entry(g.key.clone()).or_default().push(format!("{ce} {}", g.json()["status"].as_str().unwrap_or_default()));
    }
    let of = |who: &str| by_customer.get(who).cloned().unwrap_or_default();
    assert_eq!(of("steady"), Vec::<String>::new(), "a steady, satisfied customer: nothing");
    assert_eq!(of("unhappy"), ["nps_detractor.v1 opened", "csat_low.v1 opened", "nps_detractor.v1 opened", "nps_detractor.v1 opened", "nps_detractor.v1 opened", "nps_detractor.v1 opened"], "a detractor alert every 30 days at most, low CSAT once");
    assert_eq!(of("falls"), ["falling_csat.v1 opened"], "the third bad answer after ten good ones");
    let storm = of("storm");
    assert_eq!(storm, ["ticket_surge.v1 opened", "ticket_surge.v1 resolved"], "three tickets in a week from a customer who raises one a quarter");
    assert_eq!(of("responder"), Vec::<String>::new(), "survey answers are not visits: no silence, no dormancy");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}
