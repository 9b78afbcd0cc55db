//! `care demo` end to end: the real binary, a small population, every
//! implemented signal type produced, and a clean exit.

use std::process::Command;

#[test]
fn demo_runs_briefly_and_produces_every_signal_type() {
    let out = Command::new(env!("CARGO_BIN_EXE_care"))
        .args(["demo", "--customers", "1500", "--days", "130", "--seed", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for t in ["activity_decline", "silence", "dormant", "reactivated"] {
        assert!(summary["signals"][t].as_u64().unwrap_or(0) > 0, "no {t}: {summary}");
    }
    assert_eq!(summary["rejected"], 0);
    assert_eq!(summary["customers_tracked"], 1500);
    // Example alerts are printed as output lines with their headers.
    assert!(stdout.contains(r#"["ce_type","io.care.dormant.v1"]"#), "{stdout}");
}
