//! `care demo` end to end: the real binary, a small population, every
//! implemented signal type produced, and a clean exit.

use std::process::Command;

#[test]
fn demo_runs_briefly_and_produces_every_signal_type() {
    let out = Command::new(env!("CARGO_BIN_EXE_care"))
        .args(["demo", "--customers", "1500", "--days", "180", "--seed", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for t in ["activity_decline", "silence", "dormant", "reactivated"] {
        assert!(summary["signals"][t].as_u64().unwrap_or(0) > 0, "no {t}: {summary}");
    }
    assert_eq!(summary["rejected"], 0);
    // A customer at a hundredth of an event a day may never act at all.
    assert!((1450..=1500).contains(&summary["customers_tracked"].as_u64().unwrap()), "{summary}");
    // The scorecard: every changing persona is there, most of them caught.
    let card = summary["scorecard"].as_array().unwrap();
    assert_eq!(card.iter().map(|c| c["class"].as_str().unwrap()).collect::<Vec<_>>(), ["declining", "silent", "returning"]);
    for c in card {
        let (n, caught) = (c["customers"].as_u64().unwrap(), c["caught"].as_u64().unwrap());
        assert!(n > 0 && caught * 2 > n, "{c}");
    }
    assert!(summary["false_alerts_per_1000_steady_customer_months"].as_f64().unwrap() < 5.0, "{summary}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("== scorecard"), "printed for people too");
    // Example alerts are printed as output lines with their headers.
    assert!(stdout.contains(r#"["ce_type","io.care.dormant.v1"]"#), "{stdout}");
}
