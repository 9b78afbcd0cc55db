//! Detection quality against ground truth (BENCHMARKS.md, QUALITY): issue
//! 18's grid of populations (rate shape × weekly profile × bursts × seed),
//! each scored with the default config. Prints markdown: one row per cell,
//! then the worst cell of each bar.
//!
//! `cargo bench --bench quality`. `CARE_QUALITY_CUSTOMERS` and
//! `CARE_QUALITY_DAYS` (default 180) size each cell: 100,000 customers a
//! cell of the activity grid by default (20,000 left a cell's false alerts
//! a count of about 57 at the bar, whose Poisson noise of ±0.13 per 1,000
//! is the size of the margins; at 100,000 it is ±0.06), 20,000 a
//! satisfaction cell,
//! `CARE_QUALITY_SEEDS` (default `1,2,3`) picks the seeds,
//! `CARE_QUALITY_ONLY` keeps the cells whose name contains it (tuning),
//! `CARE_QUALITY_CONFIG` names a config file to score instead of the
//! defaults, `CARE_QUALITY_THREADS` (default 2) runs cells side by side,
//! `CARE_QUALITY_DETAIL=1` prints each cell's full report (the recall curve)
//! too, and `CARE_QUALITY_REFERENCE=1` scores the reference and harsh
//! populations of the first seed instead of the grid.
//!
//! Then the satisfaction signals on their own populations (answer rates ×
//! ticket rates × the same seeds, `CARE_QUALITY_CUSTOMERS` customers each):
//! `CARE_QUALITY_PART=activity` or `satisfaction` runs only one part.
//! Beside the satisfaction detectors, their oracle bound
//! (`care::apps::sat_oracle`) on the same events: `CARE_QUALITY_ORACLE`
//! sets what it assumes of a change (`fall_to=0.1,surge=3-8`, the
//! defaults), `CARE_QUALITY_ORACLE_ONLY=1` scores the oracle alone, without
//! the engine (the same events, in seconds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use care::apps::population::Variant;
use care::apps::quality::{simulate, Report};
use care::apps::quality::Recall;
use care::apps::sat_oracle::{self, OracleObs, OracleParams, OracleReport, BUDGETS, WITHIN};
use care::apps::satisfaction::{self, SatReport, SatVariant};
use care::config::Config;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments.
    let customers = env_u32("CARE_QUALITY_CUSTOMERS", 100_000);
    let sat_customers = env_u32("CARE_QUALITY_CUSTOMERS", 20_000);
    let days = env_u32("CARE_QUALITY_DAYS", 180);
    let text = match std::env::var("CARE_QUALITY_CONFIG") {
        Ok(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        Err(_) => String::new(),
    };
    let cfg = Config::parse(&text, "quality config").unwrap_or_else(|e| panic!("{e}"));
    let seeds: Vec<u64> = std::env::var("CARE_QUALITY_SEEDS").unwrap_or_else(|_| "1,2,3".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let only = std::env::var("CARE_QUALITY_ONLY").unwrap_or_default();
    let cells: Vec<Variant> = if env_u32("CARE_QUALITY_REFERENCE", 0) == 1 {
        let s = seeds.first().copied().unwrap_or(1);
        vec![Variant::reference(s, customers, days), Variant::harsh(s, customers, days)]
    } else {
        seeds.iter().flat_map(|&s| Variant::grid(s, customers, days)).filter(|v| v.name.contains(&only)).collect()
    };
    let threads = env_u32("CARE_QUALITY_THREADS", 2).max(1) as usize;
    let part = std::env::var("CARE_QUALITY_PART").unwrap_or_default();
    if part != "satisfaction" {
        activity(&cfg, &cells, threads, customers, days);
    }
    if part != "activity" {
        let cells: Vec<SatVariant> = seeds.iter().flat_map(|&s| SatVariant::grid(s, sat_customers, days)).filter(|v| v.name.contains(&only)).collect();
        satisfaction_grid(&cfg, &cells, threads);
    }
}

/// Runs `cells` on `threads` threads, in order.
fn par<V: Sync, R: Send>(cells: &[V], threads: usize, run: impl Fn(usize, &V) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..cells.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(cells.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(v) = cells.get(i) else { return };
                let r = run(i, v);
                out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

fn satisfaction_grid(cfg: &Config, cells: &[SatVariant], threads: usize) {
    let started = Instant::now();
    let params = std::env::var("CARE_QUALITY_ORACLE").map_or(OracleParams::default(), |s| OracleParams::parse(&s).unwrap_or_else(|| panic!("CARE_QUALITY_ORACLE: {s}")));
    if env_u32("CARE_QUALITY_ORACLE_ONLY", 0) == 1 {
        let oracles = par(cells, threads, |_, v| sat_oracle::oracle_only(v, &params));
        eprintln!("{} satisfaction oracle cells in {:.0} s on {threads} threads", oracles.len(), started.elapsed().as_secs_f64());
        oracle_tables(&oracles, None);
        return;
    }
    let both: Vec<(SatReport, OracleReport)> = par(cells, threads, |_, v| {
        let mut obs = OracleObs::new(v.customers, v.days);
        let r = satisfaction::simulate_observed(cfg, v, 4, |e| obs.input(e));
        let o = {
            let population = satisfaction::SatPopulation::new(v.clone());
            sat_oracle::score(v, &population.truth, &obs, &params, Some([r.per_1000_months(0), r.per_1000_months(1)]))
        };
        (r, o)
    });
    let (reports, oracles): (Vec<SatReport>, Vec<OracleReport>) = both.into_iter().unzip();
    eprintln!("{} satisfaction cells in {:.0} s on {threads} threads", reports.len(), started.elapsed().as_secs_f64());
    println!("\n{}", SatReport::GRID_HEADER);
    for r in &reports {
        println!("{}", r.grid_row());
    }
    let lowest = |s: usize| {
        // A cohort nobody is in (no customer at a ticket a week) has no recall.
        let r = reports.iter().filter(|r| r.recall[s].customers > 0).min_by(|a, b| a.recall[s].rate().total_cmp(&b.recall[s].rate()));
        r.map_or("–".into(), |r| format!("{:.1} % ({}, seed {})", 100.0 * r.recall[s].rate(), r.variant, r.seed))
    };
    let highest = reports.iter().max_by(|a, b| a.false_alerts_per_1000_months().total_cmp(&b.false_alerts_per_1000_months()));
    let holds = |r: &care::apps::quality::Recall| r.customers == 0 || r.rate() >= 0.9;
    let meets = reports.iter().filter(|r| holds(&r.recall[0]) && holds(&r.recall[1]) && r.false_alerts_per_1000_months() <= 0.5).count();
    println!("\nsatisfaction cells meeting every bar (falling CSAT and ticket surge ≥ 90 %, false alerts ≤ 0.5): {meets} of {}", reports.len());
    println!("lowest falling CSAT recall ≤ 14 d: {}", lowest(0));
    println!("lowest ticket surge recall ≤ 14 d: {}", lowest(1));
    println!("highest satisfaction false alerts, together: {}", highest.map_or("–".into(), |r| format!("{:.2} ({}, seed {})", r.false_alerts_per_1000_months(), r.variant, r.seed)));
    let months: f64 = reports.iter().map(|r| r.steady_customer_months).sum();
    let alerts: Vec<u64> = (0..4).map(|s| reports.iter().map(|r| r.alerts_on_steady[s]).sum()).collect();
    let per = |n: u64| 1000.0 * n as f64 / months.max(1e-9);
    println!(
        "all satisfaction cells together, per 1,000 steady customer-months: falling CSAT {:.2}, ticket surge {:.2}, low CSAT {:.2}, together {:.2} ({} in {months:.0}); NPS detractor alerts {:.2}",
        per(alerts[0]), per(alerts[1]), per(alerts[2]), per(alerts[0] + alerts[1] + alerts[2]), alerts[0] + alerts[1] + alerts[2], per(alerts[3])
    );
    oracle_tables(&oracles, Some(&reports));
}

/// Cohorts smaller than this are left out of the ranges (at half a ticket
/// a month, one to four customers are at a ticket a week).
const RANGE_COHORT: usize = 20;

/// The range over cells of `f`, in percent, of cohorts of [`RANGE_COHORT`] or more.
fn pct_range<T>(cells: &[T], f: impl Fn(&T) -> &Recall) -> String {
    let rates: Vec<f64> = cells.iter().map(&f).filter(|r| r.customers >= RANGE_COHORT).map(|r| 100.0 * r.rate()).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if rates.is_empty() { "–".into() } else { format!("{lo:.0}-{hi:.0} %") }
}

/// The oracle bound per cell, its ranges over cells at each budget and
/// delay, and the real detectors' beside it.
fn oracle_tables(oracles: &[OracleReport], reports: Option<&[SatReport]>) {
    let Some(first) = oracles.first() else { return };
    let surges: Vec<String> = first.params.surge.iter().map(|(lo, hi)| if lo == hi { format!("{lo}x") } else { format!("{lo}-{hi}x") }).collect();
    println!("\nsatisfaction oracle bound (assumes a fall to {:?} satisfied, a surge of {}, the best of each; budgets: false alerts of falling CSAT and ticket surge together per 1,000 steady customer-months, split to maximise the lower 14-day recall)\n", first.params.fall_to, surges.join(" or "));
    println!("{}", OracleReport::GRID_HEADER);
    for o in oracles {
        println!("{}", o.grid_row());
    }
    println!("\n| over {} cells, range (cohorts of {RANGE_COHORT} or more) | falling CSAT, ≥ 3 answers: ≤ 14 d | ≤ 21 d | ≤ 28 d | ticket surge, ≥ 1/week: ≤ 14 d | ≤ 21 d | ≤ 28 d | falling CSAT ≥ 5 answers ≤ 14 d | surge ≥ 5× ≤ 14 d |\n|---|---|---|---|---|---|---|---|---|", oracles.len());
    if let Some(reports) = reports {
        println!("| real detectors (this config) | {} | | | {} | | | | |", pct_range(reports, |r| &r.recall[0]), pct_range(reports, |r| &r.recall[1]));
    }
    for (b, budget) in BUDGETS.iter().enumerate() {
        let mut row = format!("| oracle at {budget}, best split |");
        for s in 0..2 {
            for w in 0..WITHIN.len() {
                row += &format!(" {} |", pct_range(oracles, |o| &o.best[b][s].recall[w]));
            }
        }
        if b == 0 {
            row += &format!(" {} | {} |", pct_range(oracles, |o| &o.csat_5_answers), pct_range(oracles, |o| &o.surge_5x));
        } else {
            row += " | |";
        }
        println!("{row}");
        let mut row = format!("| oracle at {budget}, half each |");
        for s in 0..2 {
            for w in 0..WITHIN.len() {
                row += &format!(" {} |", pct_range(oracles, |o| &o.even[b][s].recall[w]));
            }
        }
        println!("{row} | |");
    }
    if let Some(reports) = reports {
        println!("\n| satisfaction population (seed) | falling CSAT ≤ 14 d: real | oracle at the real one's false alerts | ticket surge ≤ 14 d: real | oracle at the real one's false alerts | false alerts (real): falling CSAT | ticket surge |\n|---|---|---|---|---|---|---|");
        for (r, o) in reports.iter().zip(oracles) {
            let Some(m) = &o.matched else { continue };
            let p = |x: &Recall| if x.customers == 0 { "–".to_string() } else { format!("{:.1} %", 100.0 * x.rate()) };
            println!("| {} ({}) | {} | {} | {} | {} | {:.2} | {:.2} |", r.variant, r.seed, p(&r.recall[0]), p(&m[0].recall[0]), p(&r.recall[1]), p(&m[1].recall[0]), r.per_1000_months(0), r.per_1000_months(1));
        }
        let below = reports.iter().zip(oracles).filter_map(|(r, o)| o.matched.as_ref().map(|m| (r, m))).filter(|(r, m)| (0..2).any(|s| r.recall[s].customers > 0 && r.recall[s].rate() > m[s].recall[0].rate())).count();
        println!("\ncells where a real detector catches more than the oracle at its false alerts (the bound broken): {below} of {}", reports.len());
    }
    let meets = oracles.iter().filter(|o| o.best[0].iter().all(|s| s.recall[0].customers == 0 || s.recall[0].rate() >= 0.9)).count();
    println!("\ncells where the oracle meets both recall bars at 0.5 (≥ 90 % within 14 days): {meets} of {}", oracles.len());
    let shares: Vec<f64> = oracles.iter().map(|o| o.best[0][0].budget).collect();
    println!("falling CSAT's share of the 0.5 at the best split: {:.2}-{:.2}", shares.iter().copied().fold(f64::INFINITY, f64::min), shares.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let assumed = |s: usize| {
        let mut seen: Vec<String> = oracles.iter().filter(|o| o.best[0][s].recall[0].customers > 0).map(|o| format!("{}-{}", o.best[0][s].assumed.0, o.best[0][s].assumed.1)).collect();
        seen.sort();
        seen.dedup();
        seen.join(", ")
    };
    println!("assumed at 0.5 best split: falling CSAT {}; ticket surge {}", assumed(0), assumed(1));
    let reset = oracles.iter().flat_map(|o| &o.best[0]).filter(|s| s.ending == sat_oracle::Ending::Reset).count();
    println!("oracle at 0.5 best split, signals whose CUSUM starts again after each alert (not at 0): {reset} of {}", 2 * oracles.len());
    let false_at: Vec<f64> = oracles.iter().map(|o| o.best[0][0].false_per_1000 + o.best[0][1].false_per_1000).collect();
    println!("oracle false alerts at 0.5, measured: {:.2}-{:.2}", false_at.iter().copied().fold(f64::INFINITY, f64::min), false_at.iter().copied().fold(f64::NEG_INFINITY, f64::max));
}

fn activity(cfg: &Config, cells: &[Variant], threads: usize, customers: u32, days: u32) {
    let started = Instant::now();
    let reports: Vec<Report> = par(cells, threads, |i, v| {
        let t = Instant::now();
        let r = simulate(cfg, v, 4, |_, _| {});
        eprintln!("[{}/{}] {} (seed {}): {} events in {:.1} s", i + 1, cells.len(), v.name, v.seed, r.events, t.elapsed().as_secs_f64());
        r
    });
    eprintln!("{} cells in {:.0} s on {threads} threads", reports.len(), started.elapsed().as_secs_f64());
    println!("{} customers x {days} days per cell\n\n{}", customers, Report::GRID_HEADER);
    for r in &reports {
        println!("{}", r.grid_row());
    }
    summary(&reports);
    if env_u32("CARE_QUALITY_DETAIL", 0) == 1 {
        reports.iter().for_each(|r| println!("\n{r}"));
    }
}

/// The worst cell of each bar, and how many cells meet them all.
fn summary(reports: &[Report]) {
    let worst = |key: &dyn Fn(&Report) -> f64, lowest: bool| {
        let pick = reports.iter().min_by(|a, b| if lowest { key(a).total_cmp(&key(b)) } else { key(b).total_cmp(&key(a)) });
        pick.map_or("–".into(), |r| format!("{:.2} ({}, seed {})", key(r), r.variant, r.seed))
    };
    let meets = reports.iter().filter(|r| r.decline.rate() >= 0.9 && r.false_alerts_per_1000_months() <= 1.0).count();
    println!("\ncells meeting both bars (decline ≥ 90 %, false alerts ≤ 1): {meets} of {}", reports.len());
    println!("lowest decline recall ≤ 14 d: {}", worst(&|r| 100.0 * r.decline.rate(), true));
    println!("highest false alerts, total: {}", worst(&|r| r.false_alerts_per_1000_months(), false));
    // A cell's false alerts are a Poisson count: its noise, at the bar.
    let months = reports.iter().map(|r| r.steady_customer_months).fold(f64::INFINITY, f64::min);
    println!("a cell's false alerts at the bar are ±{:.2} per 1,000 (one standard deviation of a Poisson count, {months:.0} steady customer-months)", 1.0 / (months / 1000.0).sqrt());
    println!("highest decline false alerts: {}", worst(&|r| r.false_alerts_of("activity_decline"), false));
    println!("highest silence false alerts: {}", worst(&|r| r.false_alerts_of("silence"), false));
    println!("lowest silence recall ≤ 14 d, ≥ 1/day: {}", worst(&|r| 100.0 * r.silence_1.rate(), true));
    println!("lowest silence recall ≤ 21 d, ≥ 0.5/day: {}", worst(&|r| 100.0 * r.silence_05.rate(), true));
    let months: f64 = reports.iter().map(|r| r.steady_customer_months).sum();
    let false_alerts: u64 = reports.iter().map(|r| r.false_alerts).sum();
    println!("all cells together: {:.2} false alerts per 1,000 steady customer-months ({false_alerts} in {months:.0})", 1000.0 * false_alerts as f64 / months.max(1e-9));
    // No cell has an outage: the outage guard must never trip.
    let tripped: Vec<String> = reports.iter().filter(|r| r.source_anomalies > 0).map(|r| format!("{} (seed {}): {}", r.variant, r.seed, r.source_anomalies)).collect();
    println!("source anomaly records (the outage guard; no cell has an outage): {}", if tripped.is_empty() { "none".to_string() } else { tripped.join(", ") });
}
