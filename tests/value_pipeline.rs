//! Customer value through the real broker: `care run` with a fit loaded,
//! scripted buyers on one topic. A loyal big spender and a one-time buyer
//! raise no purchase alert; a buyer who stops gets one purchase-churn alert
//! on the day the model predicts; a buyer gone quiet turns dormant with the
//! score's value components; the scorecards show the figures.

mod common;

use std::time::Duration;

use care::model::bgnbd::BgNbd;
use common::*;

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000;
const DAY: i64 = 86_400_000;
const LAST_DAY: i64 = 210;
const BG: BgNbd = BgNbd { r: 0.25, alpha: 28.0, a: 0.8, b: 2.5 };

/// The fit, in days, as `care fit --output` writes it.
const PARAMS: &str = r#"{"bgnbd":{"r":{"value":0.25,"std_err":null},"alpha":{"value":28.0,"std_err":null},"a":{"value":0.8,"std_err":null},"b":{"value":2.5,"std_err":null},"log_likelihood":-1.0},
"gamma_gamma":{"p":{"value":6.0,"std_err":null},"q":{"value":3.8,"std_err":null},"v":{"value":15.0,"std_err":null},"log_likelihood":-1.0},
"time_unit":"days","calibration_end":"2024-12-31"}"#;

fn event(customer: &str, kind: &str, day: i64, amount: Option<f64>) -> (i64, Vec<u8>) {
    let ts = T0 + day * DAY + 3_600_000;
    let total = amount.map_or(String::new(), |a| format!(r#","total":{a}"#));
    (ts, format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{total}}}"#).into_bytes())
}

/// The scripted buyers, in time order.
fn script() -> Vec<(i64, Vec<u8>)> {
    let mut e = Vec::new();
    for d in 0..=LAST_DAY {
        e.push(event("loyal", "click", d, None));
        e.push(event("once", "click", d, None));
        if d % 7 == 0 {
            e.push(event("loyal", "order", d, Some(200.0)));
        }
        if d <= 200 {
            e.push(event("stops", "click", d, None));
        }
    }
    e.push(event("once", "order", 0, Some(30.0)));
    e.extend((0..5).map(|k| event("stops", "order", k * 20, Some(40.0))));
    e.extend((0..3).map(|k| event("quiet", "order", k * 10, Some(80.0))));
    e.sort_by_key(|(ts, _)| *ts);
    e
}

/// The first day "stops" (purchase days 0, 20, …, 80) has P(alive) below
/// 0.3 and is late by their usual gap of 20 days: from the model itself,
/// day by day.
fn predicted_day() -> i64 {
    (81..).find(|&d| d >= 100 && BG.p_alive(4, 80.0, d as f64) < 0.3).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn buyers_get_purchase_alerts_value_scores_and_figures_as_the_model_predicts() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    let records: Vec<_> = script().into_iter().map(|(_, v)| (source.clone(), None, v)).collect();
    produce(&records);

    let params = std::env::temp_dir().join(format!("{}.json", unique("params")));
    std::fs::write(&params, PARAMS).unwrap();
    let (group, port) = (unique("care"), free_port());
    let text = format!("{}\n[value]\nparams = \"{}\"\n", config(&source, &outs, &group, port, ""), params.display());
    let cfg = write_config(&text);
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);

    let last = "2025-07-30T01:00:00.000Z";
    assert!(
        wait_for(Duration::from_secs(90), || {
            let (status, body) = http_get(port, "/customers/loyal");
            status == 200 && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v["as_of"] == last)
        }),
        "care never reached the last day"
    );
    let got = consume(&[&outs[0], &outs[1]], usize::MAX, Duration::from_secs(15));
    let churn: Vec<&Got> = got.iter().filter(|g| g.header("ce_type") == Some("io.care.purchase_churn_risk.v1")).collect();
    assert_eq!(churn.len(), 1, "only the buyer who stops: {churn:?}");
    let (alert, due) = (churn[0].json(), predicted_day());
    assert_eq!(churn[0].key, "stops");
    let due_at = care::render::rfc3339(T0 + due * DAY);
    assert_eq!((alert["status"].as_str(), alert["at"].as_str()), (Some("opened"), Some(due_at.as_str())), "{alert}");
    assert_eq!((alert["repeat_purchases"].as_u64(), alert["days_since_last_order"].as_i64(), alert["usual_gap_days"].as_f64()), (Some(4), Some(due - 80), Some(20.0)));
    assert!(alert["predicted_clv"].as_f64().unwrap() > 0.0 && alert["fit_calibration_end"] == "2024-12-31", "{alert}");

    let dormant: Vec<&Got> = got.iter().filter(|g| g.header("ce_type") == Some("io.care.dormant.v1")).collect();
    assert_eq!(dormant.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), ["quiet"], "only the quiet buyer turns dormant");
    let d = dormant[0].json();
    let parts = &d["score_components"];
    assert!(parts["p_alive"].as_f64().unwrap() < 1.0 && parts["predicted_value"].as_f64().unwrap() > 0.0, "{d}");
    let mean = ["recency", "frequency", "monetary", "satisfaction", "p_alive", "predicted_value"].iter().map(|k| parts[*k].as_f64().unwrap()).sum::<f64>() / 6.0;
    assert!((d["reactivation_score"].as_f64().unwrap() - mean).abs() < 1e-3, "{d}");

    let card = |id: &str| -> serde_json::Value { serde_json::from_str(&http_get(port, &format!("/customers/{id}")).1).unwrap() };
    let loyal = card("loyal");
    let v = &loyal["value"];
    assert_eq!((v["purchase_days"].as_u64(), v["frequency"].as_u64(), v["approximate"].as_bool()), (Some(31), Some(30), Some(false)), "{loyal}");
    assert!(v["p_alive"].as_f64().unwrap() > 0.9 && v["predicted_clv"].as_f64().unwrap() > 1000.0, "{v}");
    assert_eq!(v["fit_calibration_end"], "2024-12-31");
    let once = card("once");
    assert_eq!((once["value"]["p_alive"].as_f64(), once["value"]["frequency"].as_u64()), (Some(1.0), Some(0)), "no repeat: alive by construction");
    assert_eq!(card("stops")["value"]["last_purchase_day"], "2025-03-22");
    assert!(card("stops")["value"]["p_alive"].as_f64().unwrap() < 0.3);

    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
    let _ = std::fs::remove_file(params);
}
