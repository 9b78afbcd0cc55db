//! The hot path of this build against an earlier commit's, in one run:
//!
//! ```sh
//! cargo bench --bench against -- <commit> [rounds]
//! ```
//!
//! An issue's bar is often "the hot path within N× of its cost before the
//! issue, same run". This checks out `<commit>` in a git worktree under
//! `target/against/`, builds `against/harness.rs` there as an example
//! (release profile), and times the same inputs through that build and
//! through this one, alternated `rounds` times (default 6), each side the
//! best of two runs a round:
//!
//! - `hot_path`: `benches/hot_path.rs`'s input (20,000 customers, 60 days,
//!   ~200k lines; one event in 7.4 sends a profile);
//! - `grid`: the quality grid's first population (rate shape 1, flat week,
//!   no bursts, seed 1) at 20,000 customers over 60 days, ~1.8M lines.
//!
//! Each cold (every line from empty) and warm (the second half, after the
//! first fed untimed), with each build's default config. It prints the
//! best times and this build's ÷ the earlier one's. The worktree and its
//! build are kept for the next run; `git worktree remove` drops them.

#[path = "against/grid.rs"]
mod grid;
#[path = "against/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;


fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let Some(commit) = args.first() else {
        eprintln!("usage: cargo bench --bench against -- <commit> [rounds]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(1).map_or(6, |r| r.parse().expect("rounds: a number"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = build_at(root, commit);
    let dir = root.join("target/against");
    let inputs = [("hot_path", harness::hot_path_input(), rounds), ("grid", grid::lines(20_000, 60), rounds.div_ceil(2))];
    println!("against {commit}: best of {rounds} rounds (grid: {}), milliseconds", rounds.div_ceil(2));
    println!("{:9} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}", "input", "cold then", "cold now", "ratio", "warm then", "warm now", "ratio");
    for (name, lines, rounds) in inputs {
        let file = dir.join(format!("{name}.jsonl"));
        std::fs::write(&file, lines.join("\n")).expect("writing the input");
        let (mut then, mut now) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
        for _ in 0..rounds {
            then = best(then, time_at(&old, &file));
            now = best(now, harness::time(&lines, 2));
        }
        println!("{name:9} {:10.1} {:10.1} {:6.3}× {:10.1} {:10.1} {:6.3}×", then.0, now.0, now.0 / then.0, then.1, now.1, now.1 / then.1);
    }
}

fn best(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0.min(b.0), a.1.min(b.1))
}

/// The harness built at `commit`, in a worktree of its own.
fn build_at(root: &Path, commit: &str) -> PathBuf {
    let sha = output(Command::new("git").current_dir(root).args(["rev-parse", "--verify", &format!("{commit}^{{commit}}")]));
    let tree = root.join("target/against").join(&sha[..12]);
    if !tree.exists() {
        run(Command::new("git").current_dir(root).args(["worktree", "add", "--detach"]).arg(&tree).arg(&sha));
    }
    std::fs::create_dir_all(tree.join("examples")).expect("the worktree's examples");
    std::fs::copy(root.join("benches/against/harness.rs"), tree.join("examples/against_harness.rs")).expect("copying the harness");
    eprintln!("building {commit} ({}) in {}", &sha[..12], tree.display());
    run(Command::new("cargo").current_dir(&tree).args(["build", "--release", "--example", "against_harness"]));
    tree.join("target/release/examples/against_harness")
}

fn time_at(bin: &Path, file: &Path) -> (f64, f64) {
    let out = output(Command::new(bin).arg("time").arg(file).arg("2"));
    let mut it = out.split_whitespace().map(|v| v.parse::<f64>().expect("milliseconds"));
    (it.next().expect("cold"), it.next().expect("warm"))
}

fn run(c: &mut Command) {
    let status = c.status().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(status.success(), "{c:?} failed: {status}");
}

fn output(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_string()
}
