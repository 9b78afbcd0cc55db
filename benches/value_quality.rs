//! Purchase-churn quality on buyers drawn from BG/NBD with known parameters
//! and known dropouts (`care::apps::value_quality`): four populations from
//! slow to frequent buyers, three seeds each, at the default threshold and
//! one more eager. Prints one row per cell; BENCHMARKS.md keeps the table.
//!
//! Run: `cargo bench --bench value_quality`.

use care::apps::value_quality::{run, Options};
use care::config::Config;
use care::model::bgnbd::BgNbd;
use care::model::gamma_gamma::GammaGamma;

const CUSTOMERS: usize = 20_000;

fn main() {
    let populations = [
        ("slow (gap ~110 d)", BgNbd { r: 0.25, alpha: 28.0, a: 0.8, b: 2.5 }),
        ("mixed (gap ~20 d)", BgNbd { r: 0.5, alpha: 10.0, a: 0.5, b: 4.0 }),
        ("regular (gap ~20 d)", BgNbd { r: 1.0, alpha: 20.0, a: 0.8, b: 2.5 }),
        ("steady (gap ~15 d)", BgNbd { r: 2.0, alpha: 30.0, a: 1.0, b: 6.0 }),
    ];
    let gg = GammaGamma { p: 6.0, q: 3.8, v: 15.0 };
    println!("{CUSTOMERS} buyers per cell over 730 days, first purchases in the first 670; recall over dropouts with ≥ 2 repeats watched ≥ 90 days");
    println!("| population | θ | seed | alerted | precision | eligible dropouts | recall ≤ 30 d | recall ≤ 60 d | recall ever | median days after dropout | median lead before dormancy |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, bg) in populations {
        for theta in [0.3, 0.5] {
            let cfg = Config::parse(&format!("[detect.purchase_churn]\np_alive_threshold = {theta}\n"), "bench").expect("config");
            for seed in 1..=3 {
                let r = run(&cfg, &Options { bgnbd: bg, gamma_gamma: gg, customers: CUSTOMERS, horizon_days: 730.0, seed }).expect("valid parameters");
                let days = |d: Option<f64>| d.map_or("-".to_string(), |d| format!("{d:.0}"));
                println!(
                    "| {name} | {theta} | {seed} | {} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {} | {} |",
                    r.alerted, r.precision, r.eligible_dropouts, r.recall_30_days, r.recall_60_days, r.recall_ever,
                    days(r.median_days_after_dropout), days(r.median_lead_days_before_dormancy)
                );
            }
        }
    }
}
