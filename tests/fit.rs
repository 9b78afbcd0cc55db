//! `care fit` end to end: the binary on the CDNOW sample against the
//! published figures and lifetimes' own per-customer predictions, the
//! holdout section, a source mapping, and degenerate inputs. No broker.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cdnow");

fn care(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_care")).args(args).output().unwrap()
}

fn fit_ok(args: &[&str]) -> Value {
    let out = care(args);
    assert!(out.status.success(), "care fit failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("care-fit-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn within(got: f64, want: f64, rel: f64) -> bool {
    (got / want - 1.0).abs() <= rel
}

fn events() -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(Path::new(FIXTURE).join("cdnow.jsonl.gz")).unwrap()).read_to_string(&mut s).unwrap();
    s
}

/// lifetimes' reference rows by customer id: the numbers after the id.
fn reference() -> std::collections::HashMap<String, Vec<f64>> {
    std::fs::read_to_string(Path::new(FIXTURE).join("reference.csv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("customer_id"))
        .map(|l| {
            let mut f = l.split(',');
            let id = f.next().unwrap().to_string();
            (id, f.map(|v| v.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn cdnow_matches_the_published_fit_and_lifetimes_per_customer() {
    let customers = tmp("cdnow-customers.jsonl");
    let output = tmp("cdnow-params.json");
    let input = format!("{FIXTURE}/cdnow.jsonl.gz");
    let r = fit_ok(&["fit", "--input", &input, "--calibration-end", "1997-09-30", "--time-unit", "weeks", "--customers", customers.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    assert_eq!(r, serde_json::from_str::<Value>(&std::fs::read_to_string(&output).unwrap()).unwrap(), "--output holds what is printed");
    assert_eq!(r["converged"], true);
    assert_eq!((r["customers"].as_u64(), r["repeaters"].as_u64(), r["time_unit"].as_str()), (Some(2357), Some(946), Some("weeks")));
    let bg = &r["bgnbd"];
    let gg = &r["gamma_gamma"];
    for (got, want) in [(&bg["r"], 0.243), (&bg["alpha"], 4.414), (&bg["a"], 0.793), (&bg["b"], 2.426), (&gg["p"], 6.25), (&gg["q"], 3.74), (&gg["v"], 15.44)] {
        let v = got["value"].as_f64().unwrap();
        assert!(within(v, want, 0.01), "{v} vs published {want}");
        assert!(got["std_err"].as_f64().is_some_and(|e| e > 0.0 && e < v), "a standard error for {want}");
    }
    assert!(within(bg["log_likelihood"].as_f64().unwrap(), -9582.4, 0.01));

    let reference = reference();
    let lines: Vec<Value> = std::fs::read_to_string(&customers).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2357);
    for c in &lines {
        let want = &reference[c["customer_id"].as_str().unwrap()];
        // frequency, recency, T, monetary_value, then the predictions.
        assert_eq!(c["frequency"].as_f64().unwrap(), want[0]);
        for (field, i) in [("recency", 1), ("T", 2), ("monetary_value", 3)] {
            assert!((c[field].as_f64().unwrap() - want[i]).abs() <= 1e-6 * want[i].max(1.0), "{field} of {c}");
        }
        for (field, i) in [("p_alive", 4), ("expected_purchases", 5), ("expected_avg_value", 6)] {
            assert!(within(c[field].as_f64().unwrap(), want[i], 0.01), "{field} of {c} vs lifetimes {}", want[i]);
        }
        for field in ["predicted_clv", "historic_clv"] {
            assert!(c[field].as_f64().is_some_and(|v| v >= 0.0), "{field} of {c}");
        }
    }
}

#[test]
fn holdout_section_compares_predicted_and_actual() {
    let input = format!("{FIXTURE}/cdnow.jsonl.gz");
    let r = fit_ok(&["fit", "--input", &input, "--calibration-end", "1997-09-30", "--time-unit", "weeks", "--holdout-end", "1998-06-30"]);
    let v = &r["validation"];
    assert_eq!(v["holdout_days"], 273);
    let rows = v["by_frequency"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r["frequency"].as_str().unwrap()).collect();
    assert_eq!(labels, ["0", "1", "2", "3", "4", "5", "6", "7+"]);
    assert_eq!(rows.iter().map(|r| r["customers"].as_u64().unwrap()).sum::<u64>(), 2357);
    // Frequent buyers buy more in the holdout, predicted and actual alike.
    for w in rows.windows(2) {
        assert!(w[1]["predicted"].as_f64() > w[0]["predicted"].as_f64() && w[1]["actual"].as_f64() > w[0]["actual"].as_f64());
    }
    let mae = v["mean_absolute_error"].as_f64().unwrap();
    assert!(mae > 0.0 && mae < 2.0, "{mae}");
    // The fit itself ignores the holdout orders.
    assert!(within(r["bgnbd"]["r"]["value"].as_f64().unwrap(), 0.243, 0.01));
}

#[test]
fn a_source_mapping_reads_raw_records() {
    // The same orders in a shop's own shape, epoch seconds and all.
    let raw: String = events()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            let ts = chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).unwrap().timestamp();
            format!("{{\"customer\":{{\"number\":\"{}\"}},\"created\":{ts},\"total\":{}}}\n", e["customer_id"].as_str().unwrap(), e["amount"])
        })
        .collect();
    let input = tmp("raw.jsonl");
    std::fs::write(&input, raw).unwrap();
    let cfg = tmp("shop.toml");
    std::fs::write(&cfg, "[[sources]]\nname = \"orders\"\ntopic = \"shop.orders\"\ntimestamp_format = \"epoch_secs\"\n[sources.fields]\ncustomer_id = \"/customer/number\"\nts = \"/created\"\namount = \"/total\"\n[sources.kind]\nfixed = \"order\"\n").unwrap();
    let r = fit_ok(&["fit", "--input", input.to_str().unwrap(), "--calibration-end", "1997-09-30", "--time-unit", "weeks", "--config", cfg.to_str().unwrap()]);
    assert_eq!((r["input"]["orders"].as_u64(), r["input"]["ignored"].as_u64()), (Some(4960), Some(1959)), "orders after the calibration end are ignored");
    assert!(within(r["bgnbd"]["alpha"]["value"].as_f64().unwrap(), 4.414, 0.01));
    // Days are the default unit: alpha is seven times larger.
    let days = fit_ok(&["fit", "--input", input.to_str().unwrap(), "--calibration-end", "1997-09-30", "--config", cfg.to_str().unwrap()]);
    assert!(within(days["bgnbd"]["alpha"]["value"].as_f64().unwrap(), 7.0 * 4.414, 0.01));
    assert!(within(days["bgnbd"]["r"]["value"].as_f64().unwrap(), 0.243, 0.01));
}

#[test]
fn degenerate_inputs_fail_clearly() {
    let write = |name: &str, text: &str| {
        let p = tmp(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let order = |id: &str, day: &str| format!("{{\"customer_id\":\"{id}\",\"kind\":\"order\",\"ts\":\"2024-01-{day}T12:00:00Z\",\"amount\":10}}\n");
    let cases = [
        ("empty.jsonl", String::new(), "no customer has an order"),
        ("late.jsonl", order("a", "20"), "no customer has an order"),
        ("one.jsonl", order("a", "01") + &order("a", "03"), "only one customer"),
        ("once.jsonl", order("a", "01") + &order("b", "02"), "no customer has a repeat"),
    ];
    for (name, text, message) in cases {
        let p = write(name, &text);
        let out = care(&["fit", "--input", p.to_str().unwrap(), "--calibration-end", "2024-01-10"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(message), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report on failure");
    }
}
