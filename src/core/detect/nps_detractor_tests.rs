use crate::config::Config;
use crate::detect::Status;
use crate::render::{OutputRecord, TopicRole};
use crate::state::NpsTally;
use crate::test_support::{engine, feed, line, payloads, DAY, T0};

use super::nps_percent;

const TYPE: &str = "io.care.nps_detractor.v1";
const ON: &str = "[detect.nps_detractor]\nenabled = true\n";

fn alerts(out: &[OutputRecord]) -> Vec<serde_json::Value> {
    payloads(out, TYPE)
}

#[test]
fn nps_is_promoters_minus_detractors_in_percent() {
    let t = |responses, promoters, detractors| NpsTally { responses, promoters, detractors };
    assert_eq!(nps_percent(&t(0, 0, 0)), None);
    assert_eq!(nps_percent(&t(10, 5, 2)), Some(30.0));
    assert_eq!(nps_percent(&t(4, 0, 4)), Some(-100.0));
    assert_eq!(nps_percent(&t(3, 1, 1)), Some(0.0), "passives count in the denominator only");
}

#[test]
fn a_detractor_answer_is_an_alert_with_the_customers_figures_once_per_30_days() {
    let nps = |n: u8| format!(r#","nps":{n}"#);
    let lines = [
        line("a", "order", 0, r#","amount":40"#),
        line("a", "survey", DAY, &nps(9)),
        line("a", "ticket", 2 * DAY, &nps(7)), // a passive: nothing
        line("a", "survey", 3 * DAY, &nps(6)), // the first detractor answer
        line("a", "chat", 10 * DAY, &nps(0)),  // within 30 days: folded, no alert
        line("a", "survey", 40 * DAY, &nps(2)),
        line("b", "survey", 40 * DAY, &nps(10)),
    ];
    let mut e = engine(ON);
    let out = feed(&mut e, &lines);
    let got = alerts(&out);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["customer_id"], "a");
    assert_eq!(got[0]["status"], "opened");
    assert_eq!(got[0]["at"], "2026-01-04T00:00:00.000Z");
    assert_eq!((got[0]["score"].as_u64(), got[0]["nps_responses"].as_u64(), got[0]["promoters"].as_u64(), got[0]["detractors"].as_u64()), (Some(6), Some(3), Some(1), Some(1)));
    assert_eq!(got[0]["customer_nps"], 0.0);
    assert_eq!((got[0]["orders"].as_u64(), got[0]["total_spent"].as_f64()), (Some(1), Some(40.0)));
    assert_eq!(got[0]["previous_alert_at"], serde_json::Value::Null);
    assert_eq!((got[1]["score"].as_u64(), got[1]["detractors"].as_u64()), (Some(2), Some(3)));
    assert_eq!(got[1]["customer_nps"], -40.0, "1 promoter, 3 detractors of 5");
    assert_eq!(got[1]["previous_alert_at"], "2026-01-04T00:00:00.000Z");
    let r = out.iter().find(|r| r.header("ce_type") == Some(TYPE)).unwrap();
    assert_eq!((r.role, r.status(), r.trigger_ms), (TopicRole::Alerts, Some(Status::Opened), T0 + 3 * DAY));
    // Every answer with no limit; none when off.
    assert_eq!(alerts(&feed(&mut engine(&format!("{ON}min_days_between = 0\n")), &lines)).len(), 3);
    assert!(alerts(&feed(&mut engine("[detect.nps_detractor]\nenabled = false\n"), &lines)).is_empty());
    assert_eq!(alerts(&feed(&mut engine(""), &lines)), got, "on by default");
}

#[test]
fn a_late_detractor_answer_raises_nothing_and_an_out_of_order_one_keeps_the_gap() {
    let nps = r#","nps":1"#;
    let mut e = engine(ON);
    // Day 5's answer is days late: folded, no alert.
    let out = feed(&mut e, &[line("a", "login", 10 * DAY, ""), line("a", "survey", 5 * DAY, nps)]);
    assert!(alerts(&out).is_empty());
    assert_eq!(e.dump()[0].nps.detractors, 1);
    // On time but out of order (30 minutes back, within the hour): one alert.
    let out = feed(&mut e, &[line("a", "survey", 10 * DAY + 3_600_000, nps), line("a", "survey", 10 * DAY + 1_800_000, nps)]);
    assert_eq!(alerts(&out).len(), 1);
}

#[test]
fn it_stands_beside_the_activity_chain_and_changes_no_other_output() {
    // a acts daily for 30 days, then answers a survey with a 3 while going quiet.
    let mut lines: Vec<String> = (0..30).map(|d| line("a", "click", d * DAY, "")).collect();
    lines.extend((0..100).map(|d| line("b", "click", d * DAY + 1000, "")));
    lines.sort_by_key(|l| l[l.find("\"ts\":").unwrap()..].to_string());
    lines.push(line("a", "survey", 99 * DAY + 5000, r#","nps":3"#));
    let on = feed(&mut engine(ON), &lines);
    let off = feed(&mut engine("[detect.nps_detractor]\nenabled = false\n"), &lines);
    let of_a: Vec<&str> = on.iter().filter(|r| r.key.as_deref() == Some(b"a")).filter_map(|r| r.header("ce_type")).collect();
    assert!(of_a.contains(&"io.care.dormant.v1") && of_a.ends_with(&[TYPE]), "{of_a:?}");
    let strip = |o: &[OutputRecord]| o.iter().filter(|r| r.header("ce_type") != Some(TYPE)).cloned().collect::<Vec<_>>();
    assert_eq!(strip(&on), off, "turning it on changes no other output");
}

#[test]
fn min_days_between_is_bounded() {
    let err = Config::parse("[detect.nps_detractor]\nmin_days_between = 99999\n", "t").unwrap_err().to_string();
    assert!(err.contains("detect.nps_detractor.min_days_between"), "{err}");
}

#[test]
fn with_a_fit_the_alert_carries_the_customers_value_figures() {
    use crate::test_support::{engine_with, with_fit};
    let lines = [
        line("v", "order", 0, r#","amount":100"#),
        line("v", "order", 20 * DAY, r#","amount":100"#),
        line("v", "survey", 30 * DAY, r#","nps":3"#),
        line("w", "survey", 30 * DAY + 1, r#","nps":3"#),
    ];
    let out = feed(&mut engine_with(&with_fit("")), &lines);
    let p = payloads(&out, "io.care.nps_detractor.v1");
    assert_eq!(p.len(), 2);
    assert!(p[0]["p_alive"].as_f64().is_some_and(|a| a > 0.0 && a <= 1.0) && p[0]["predicted_clv"].as_f64().is_some_and(|v| v > 0.0), "{}", p[0]);
    assert!(p[1]["p_alive"].is_null() && p[1]["predicted_clv"].is_null(), "never ordered: {}", p[1]);
    let plain = payloads(&feed(&mut engine(""), &lines), "io.care.nps_detractor.v1");
    assert!(plain[0]["p_alive"].is_null(), "no fit: {}", plain[0]);
}
