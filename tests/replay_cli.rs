//! `care replay` from the command line, no broker: several inputs each with
//! its source, merged by event time; the `--source` hint for raw lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG: &str = include_str!("fixtures/two-sources.toml");

const DAY: i64 = 86_400_000;
const T0: i64 = 1_735_689_600_000; // 2025-01-01

fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("care-replay-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn replay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_care")).arg("replay").args(args).output().unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn several_inputs_merge_by_event_time_in_either_order() {
    let cfg = file("config.toml", CONFIG);
    // a clicks daily for 20 days then stops (dormant 60 days later); b
    // clicks daily throughout; a's orders fall inside its active days.
    let web: String = (0..100)
        .flat_map(|d| ["a", "b"].into_iter().filter(move |c| *c == "b" || d < 20).map(move |c| (c, T0 + d * DAY + 3_600_000)))
        .map(|(c, ts)| format!("{{\"user\":{{\"id\":\"{c}\"}},\"type\":\"page_view\",\"sent_at\":{ts}}}\n"))
        .collect();
    let orders = file("orders.jsonl", "{\"customer\":\"a\",\"created_at\":\"2025-01-05T12:00:00Z\",\"total\":\"10\"}\n{\"customer\":\"a\",\"created_at\":\"2025-01-15T12:00:00Z\",\"total\":\"20\"}\n");
    let web = file("web.jsonl", &web);
    let one = replay(&["-c", p(&cfg), "-i", p(&web), "--source", "web", "-i", p(&orders), "--source", "orders", "--report", "--partitions", "2"]);
    let other = replay(&["-c", p(&cfg), "-i", p(&orders), "--source", "orders", "-i", p(&web), "--source", "web", "--report", "--partitions", "2"]);
    assert!(one.status.success() && other.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert_eq!(one.stdout, other.stdout, "the same outputs whichever input is named first");
    assert!(String::from_utf8_lossy(&one.stdout).contains("io.care.dormant.v1"), "a turns dormant");
    let report: serde_json::Value = serde_json::from_slice(&one.stderr).unwrap();
    assert_eq!((report["records"].as_u64(), report["late"].as_u64(), report["folded"].as_u64()), (Some(122), Some(0), Some(122)), "{report}");
}

#[test]
fn raw_lines_without_source_get_a_hint_and_mismatched_flags_an_error() {
    let cfg = file("config2.toml", CONFIG);
    let raw = file("raw.jsonl", &"{\"user\":{\"id\":\"u\"},\"type\":\"page_view\",\"sent_at\":1735689600000}\n".repeat(5));
    let out = replay(&["-c", p(&cfg), "-i", p(&raw)]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing_field") && err.contains("--source NAME") && err.contains("web, orders"), "{err}");
    let with_source = replay(&["-c", p(&cfg), "-i", p(&raw), "--source", "web"]);
    assert!(with_source.status.success() && with_source.stderr.is_empty(), "{}", String::from_utf8_lossy(&with_source.stderr));
    let mismatched = replay(&["-c", p(&cfg), "-i", p(&raw), "-i", p(&raw), "--source", "web"]);
    assert!(!mismatched.status.success());
    assert!(String::from_utf8_lossy(&mismatched.stderr).contains("one --source per --input"));
}
