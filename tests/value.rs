//! Customer value in the stream: `care replay` over the CDNOW sample with
//! the fit `care fit` made of it gives every customer the figures `care fit
//! --customers` gives, whether the orders come in time order or customer
//! by customer (most of them then late). No broker.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cdnow");
/// The calibration end of the published fit.
const CAL_END: &str = "1997-09-30";

fn care(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_care")).args(args).output().unwrap();
    assert!(out.status.success(), "care {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("care-value-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The fixture's lines up to the calibration end, in file order (customer
/// by customer).
fn calibration_lines() -> Vec<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(Path::new(FIXTURE).join("cdnow.jsonl.gz")).unwrap()).read_to_string(&mut s).unwrap();
    s.lines().filter(|l| ts(l).as_str() <= "1997-09-30T23:59:59Z").map(str::to_string).collect()
}

fn ts(line: &str) -> String {
    serde_json::from_str::<Value>(line).unwrap()["ts"].as_str().unwrap().to_string()
}

fn by_id(path: &Path, id_of: impl Fn(&Value) -> String) -> HashMap<String, Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).map(|v| (id_of(&v), v)).collect()
}

fn same(got: &Value, want: &Value) -> bool {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => (g - w).abs() <= 1e-9 * g.abs().max(w.abs()).max(1.0),
        _ => got == want,
    }
}

#[test]
fn replay_gives_every_customer_the_figures_of_care_fit() {
    let (params, fit_customers) = (tmp("params.json"), tmp("fit-customers.jsonl"));
    let input = format!("{FIXTURE}/cdnow.jsonl.gz");
    care(&["fit", "--input", &input, "--calibration-end", CAL_END, "--time-unit", "weeks", "--output", params.to_str().unwrap(), "--customers", fit_customers.to_str().unwrap()]);
    let want = by_id(&fit_customers, |v| v["customer_id"].as_str().unwrap().to_string());
    let config = tmp("care.toml");
    std::fs::write(&config, "[value]\nparams = \"params.json\"\n").unwrap();

    let file_order = calibration_lines();
    let mut time_order = file_order.clone();
    time_order.sort_by_key(|l| ts(l));
    for (name, lines) in [("time order", time_order), ("customer by customer", file_order)] {
        let events = tmp("events.jsonl");
        std::fs::write(&events, lines.join("\n")).unwrap();
        let cards = tmp("scorecards.jsonl");
        let args = ["replay", "--config", config.to_str().unwrap(), "--input", events.to_str().unwrap(), "--advance-to", "1997-09-30T00:00:00Z", "--scorecards", cards.to_str().unwrap()];
        care(&args);
        let got = by_id(&cards, |v| v["customer_id"].as_str().unwrap().to_string());
        assert_eq!(got.len(), want.len(), "{name}: every buyer has a scorecard");
        let mut compared = 0;
        for (id, w) in &want {
            let v = &got[id]["value"];
            assert_eq!(v["approximate"], false, "{name}: {id}");
            assert_eq!((v["fit_calibration_end"].as_str(), v["time_unit"].as_str()), (Some(CAL_END), Some("weeks")));
            for (field, fit_field) in [
                ("frequency", "frequency"),
                ("recency", "recency"),
                ("T", "T"),
                ("monetary_value", "monetary_value"),
                ("p_alive", "p_alive"),
                ("expected_purchases", "expected_purchases"),
                ("expected_avg_value", "expected_avg_value"),
                ("predicted_clv", "predicted_clv"),
                ("historic_clv", "historic_clv"),
                ("expected_next_purchase", "expected_next_purchase"),
            ] {
                assert!(same(&v[field], &w[fit_field]), "{name}: customer {id} {field}: stream {} vs care fit {}", v[field], w[fit_field]);
                compared += 1;
            }
        }
        assert_eq!(compared, 2357 * 10);
    }
}

#[test]
fn a_params_file_that_is_not_a_fit_stops_the_start_naming_the_key() {
    let config = tmp("bad.toml");
    std::fs::write(tmp("bad-params.json"), "{\"bgnbd\": 1}").unwrap();
    std::fs::write(&config, "[value]\nparams = \"bad-params.json\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_care")).args(["check-config", "--config", config.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("value.params") && err.contains("care fit"), "{err}");
    std::fs::write(&config, "[value]\nparams = \"missing.json\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_care")).args(["check-config", "--config", config.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("value.params") && err.contains("missing.json"), "{err}");
}
