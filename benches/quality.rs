//! Detection quality against ground truth (BENCHMARKS.md, QUALITY): the
//! reference population on two seeds and the harsh variant, each scored
//! with the default config. Prints markdown.
//!
//! `cargo bench --bench quality`; `CARE_QUALITY_CUSTOMERS` (default 100000)
//! and `CARE_QUALITY_DAYS` (default 180) size it, `CARE_QUALITY_CONFIG`
//! names a config file to score instead of the defaults, `CARE_QUALITY_RUNS`
//! limits how many of the three populations run, `CARE_QUALITY_SEED` (default
//! 1) picks seeds: reference `s` and `s + 1`, harsh `s`.

use std::io::Write as _;
use std::time::Instant;

use care::apps::population::Variant;
use care::apps::quality::simulate;
use care::config::Config;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments.
    let customers = env_u32("CARE_QUALITY_CUSTOMERS", 100_000);
    let days = env_u32("CARE_QUALITY_DAYS", 180);
    let text = match std::env::var("CARE_QUALITY_CONFIG") {
        Ok(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => String::new(),
    };
    let cfg = Config::parse(&text, "quality config").unwrap_or_else(|e| panic!("{e}"));
    let seed = u64::from(env_u32("CARE_QUALITY_SEED", 1));
    let variants = [Variant::reference(seed, customers, days), Variant::reference(seed + 1, customers, days), Variant::harsh(seed, customers, days)];
    // `CARE_QUALITY_RUNS=1` runs the first population only (tuning).
    let runs = env_u32("CARE_QUALITY_RUNS", variants.len() as u32) as usize;
    for v in variants.iter().take(runs) {
        let started = Instant::now();
        let report = simulate(&cfg, v, 4, |day, events| {
            if day % 30 == 0 {
                eprint!("\r{} seed {}: day {day}/{days}, {events} events", v.name, v.seed);
                let _ = std::io::stderr().flush();
            }
        });
        eprintln!("\r{} seed {}: {} events in {:.1} s", v.name, v.seed, report.events, started.elapsed().as_secs_f64());
        println!("{report}");
    }
}
