//! Hot-path benchmarks: what one input record costs inside the engine.
//!
//! Every group that reads events reads the SAME pre-generated input: ~200k
//! canonical JSON lines for 20,000 customers over 60 days, deterministic
//! (fixed seed), generated once before any timing, timestamps in epoch
//! millis from 2026-01-01 (≥ 1.7e12), sorted by event time.
//!
//! - `pipeline/decode_only`: `decode::decode` of every line, the baseline.
//! - `pipeline/hot_path`: decode + fold + detect of every line through a
//!   fresh [`Routed`] set of 8 tasks (each record routed by murmur2 of its
//!   customer id, as `replay` and `demo` do). The tasks (rules, empty
//!   state) are built in the
//!   `iter_batched` setup, NOT timed; dropping the filled engine happens
//!   after the timed routine, NOT timed. Output records are cleared after
//!   every record (as the `demo` shell drains them), so their rendering and
//!   dropping ARE timed.
//! - `pipeline/hot_path_no_purchase_days`: the same with `[detect.purchases]`
//!   off, as near as a config gets to the hot path before customer value
//!   was kept in the stream (issue 15): the baseline of its cost.
//! - `pipeline/hot_path_no_purchases_no_retention`: also without the
//!   retention months (issue 17), on by default too, and without profiles.
//! - `pipeline/hot_path_no_profiles`: the defaults without customer
//!   profiles (issue 17), and `hot_path_before_loyalty` also without the
//!   retention months: the hot path before issue 17, the baseline of its
//!   cost.
//! - `pipeline/hot_path_with_fit`: the same with a fit loaded (`[value]`),
//!   so purchase-churn timers run and dormancy scores read the models.
//! - `pipeline_warm/{hot_path,hot_path_no_profiles,hot_path_before_loyalty}`:
//!   the same three configs in steady state: the first 30 days fed in the
//!   setup, untimed, the last 30 timed (throughput over those).
//! - `pipeline_grid/{hot_path,hot_path_no_profiles,hot_path_before_loyalty}`:
//!   the same three configs, cold, on a second input: the quality grid's
//!   first population (`apps::population`: rate shape 1, flat week, no
//!   bursts, seed 1), 5,000 customers over 60 days, about 450k lines:
//!   more events a customer and fewer orders and answers an event.
//! - `detect_decline_evaluate/*`: one `decline::evaluate` call on a customer
//!   whose 29-bucket window is full.
//! - `timers_reschedule_700k/*`: one timer reschedule among 700k customers,
//!   care's timer index beside the sorted set it replaced.
//!
//! Both pipeline groups report `Throughput::Elements(lines)`, i.e. events/s.
//!
//! Run: `cargo bench --bench hot_path` (warm-up 1 s, measurement 3 s,
//! 10 flat samples per pipeline benchmark are set below; command-line flags
//! override them).

#[path = "against/grid.rs"]
mod grid;
#[path = "against/harness.rs"]
#[allow(dead_code)] // its command line and timing are `against`'s
mod harness;

use std::collections::BTreeSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use care::config::{Config, DeclineConfig};
use care::decode::{self, Limits, SourceMapping};
use care::detect::decline;
use care::engine::{Input, Outcome, Routed, Rules};
use care::model::bgnbd::BgNbd;
use care::model::gamma_gamma::GammaGamma;
use care::model::value::Fitted;
use care::model::TimeUnit;
use care::event::{Kind, KindSet};
use care::state::timers::{Keys, TimerIndex};
use care::state::Customer;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z, as in `care demo`.
const START_MS: i64 = 1_767_225_600_000;
const DAYS: u32 = 60;
const SEED: u64 = 42;
const PARTITIONS: i32 = 8;
/// The wall clock handed to the engine: the end of the simulated period, so
/// no event is ahead of it (no future-skew rejections).
const NOW_MS: i64 = START_MS + (DAYS as i64 + 1) * DAY_MS;

/// The canonical JSON lines, sorted by event time: 5 % heavy users (1–3
/// events a day, a fifth of them declining from day 35–50) and 95 % light
/// ones (0.03–0.12 a day), written by the demo's own event writer (same
/// format and kind mix as `care demo`). The same input `against` times
/// through an earlier commit's build.
fn generate() -> Vec<String> {
    harness::hot_path_input()
}

fn config() -> Config {
    Config::parse("", "bench").expect("default config")
}

fn fresh_engine(cfg: &Config) -> Routed {
    Routed::new(Arc::new(Rules::new(cfg)), PARTITIONS)
}

/// Runs every line through `engine`; returns (folded, other outcomes, output records).
fn run_all(engine: &mut Routed, lines: &[String]) -> (u64, u64, u64) {
    run_from(engine, lines, 0)
}

/// Runs `lines` through `engine`, the first at offset `first`.
fn run_from(engine: &mut Routed, lines: &[String], first: usize) -> (u64, u64, u64) {
    let source = engine.rules().canonical_source();
    let mut out = Vec::with_capacity(8);
    let (mut folded, mut other, mut outputs) = (0u64, 0u64, 0u64);
    for (i, line) in lines.iter().enumerate() {
        let offset = first + i;
        let input = Input { source, partition: 0, offset: offset as i64, key: None, payload: line.as_bytes() };
        match engine.process(&input, NOW_MS, &mut out) {
            Outcome::Folded => folded += 1,
            _ => other += 1,
        }
        outputs += out.len() as u64;
        out.clear();
    }
    (folded, other, outputs)
}

fn pipeline(c: &mut Criterion) {
    let lines = generate();
    let n = lines.len() as u64;
    let bytes: usize = lines.iter().map(String::len).sum();
    let cfg = config();

    // One untimed pass to describe the input and check it is all accepted.
    let mut engine = fresh_engine(&cfg);
    let (folded, other, outputs) = run_all(&mut engine, &lines);
    assert_eq!(other, 0, "every generated line must fold (no rejects, late or duplicates)");
    let first_ts = lines.first().map(|l| decode::decode_event_only(l.as_bytes(), &SourceMapping::canonical(), limits(&cfg), NOW_MS).unwrap().ts_ms);
    eprintln!(
        "input: {n} lines ({:.1} bytes/line avg), {} customers tracked, {folded} folded, {outputs} output records \
         (signals), state ≈ {} bytes ({:.0} bytes/customer), first ts {:?}",
        bytes as f64 / n as f64,
        engine.customer_count(),
        state_bytes(&engine),
        state_bytes(&engine) as f64 / engine.customer_count().max(1) as f64,
        first_ts,
    );
    drop(engine);

    let mapping = SourceMapping::canonical();
    let limits = limits(&cfg);

    let mut g = flat_group(c, "pipeline", n, Duration::from_secs(3));

    g.bench_function("decode_only", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(decode::decode(black_box(line.as_bytes()), &mapping, limits, NOW_MS));
            }
        });
    });

    let no_purchase_days = Config::parse("[detect.purchases]\nenabled = false\n", "bench").expect("config");
    let mut with_fit = config();
    with_fit.value.fitted = Some(Arc::new(Fitted {
        bgnbd: BgNbd { r: 0.25, alpha: 28.0, a: 0.8, b: 2.5 },
        gamma_gamma: GammaGamma { p: 6.0, q: 3.8, v: 15.0 },
        unit: TimeUnit::Days,
        calibration_end: "2025-12-31".into(),
    }));
    let session_start = Config::parse("[detect.purchases]\nenabled = false\n[detect.retention]\nenabled = false\n[profiles]\nenabled = false\n", "bench").expect("config");
    let (no_profiles, before_loyalty) = (bench_config(NO_PROFILES), bench_config(BEFORE_LOYALTY));
    for (name, cfg) in [
        ("hot_path", &cfg),
        ("hot_path_no_profiles", &no_profiles),
        ("hot_path_before_loyalty", &before_loyalty),
        ("hot_path_no_purchase_days", &no_purchase_days),
        ("hot_path_no_purchases_no_retention", &session_start),
        ("hot_path_with_fit", &with_fit),
    ] {
        bench_cold(&mut g, name, cfg, &lines);
    }
    g.finish();

    // Steady state: the first 30 days fed untimed, the last 30 timed, so
    // most customers are known (the cold runs above send every new
    // customer's first profile).
    let half = lines.len() / 2;
    let (warm_up, timed) = lines.split_at(half);
    let mut g = flat_group(c, "pipeline_warm", timed.len() as u64, Duration::from_secs(3));
    for (name, cfg) in [("hot_path", &cfg), ("hot_path_no_profiles", &no_profiles), ("hot_path_before_loyalty", &before_loyalty)] {
        let mut engine = fresh_engine(cfg);
        run_all(&mut engine, warm_up);
        let (_, _, outputs) = run_from(&mut engine, timed, half);
        eprintln!("warm {name}: {outputs} output records in the timed half");
        drop(engine);
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut engine = fresh_engine(cfg);
                    run_all(&mut engine, warm_up);
                    engine
                },
                |mut engine| {
                    black_box(run_from(&mut engine, timed, half));
                    engine
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

/// Issue 17's three configs on the second input, cold.
fn pipeline_grid(c: &mut Criterion) {
    let lines = grid::lines(5_000, DAYS);
    let mut g = flat_group(c, "pipeline_grid", lines.len() as u64, Duration::from_secs(5));
    for (name, cfg) in [("hot_path", &config()), ("hot_path_no_profiles", &bench_config(NO_PROFILES)), ("hot_path_before_loyalty", &bench_config(BEFORE_LOYALTY))] {
        bench_cold(&mut g, name, cfg, &lines);
    }
    g.finish();
}

/// Issue 17's baselines: the defaults without profiles, and without the
/// retention months too (the hot path before the issue).
const NO_PROFILES: &str = "[profiles]\nenabled = false\n";
const BEFORE_LOYALTY: &str = "[detect.retention]\nenabled = false\n[profiles]\nenabled = false\n";

fn bench_config(text: &str) -> Config {
    Config::parse(text, "bench").expect("config")
}

/// A group of flat samples (10), 1 s of warm-up, throughput in lines.
fn flat_group<'a>(c: &'a mut Criterion, name: &str, lines: u64, measure: Duration) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(lines));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(measure);
    g
}

/// Times `lines` through fresh tasks with `cfg`, after an untimed pass
/// that says what it outputs and holds.
fn bench_cold(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, cfg: &Config, lines: &[String]) {
    let mut engine = fresh_engine(cfg);
    let (_, _, outputs) = run_all(&mut engine, lines);
    eprintln!("{name} ({} lines): {outputs} output records, state ≈ {:.0} bytes/customer", lines.len(), state_bytes(&engine) as f64 / engine.customer_count().max(1) as f64);
    drop(engine);
    g.bench_function(name, |b| {
        b.iter_batched(
            || fresh_engine(cfg),
            |mut engine| {
                black_box(run_all(&mut engine, lines));
                engine // dropped by criterion after the timed routine
            },
            BatchSize::LargeInput,
        );
    });
}

fn state_bytes(r: &Routed) -> usize {
    r.tasks().iter().map(|t| t.state_bytes()).sum()
}

fn limits(cfg: &Config) -> Limits {
    Limits::new(&cfg.engine)
}

/// A customer with `per_day` clicks and one login on each of days
/// `0..active_days`, window sized for the default decline parameters.
fn customer(p: &decline::Params, active_days: i64, per_day: u32) -> Customer {
    let mut c = Customer::new("cust-0000001".into(), 0, p.window_width());
    for d in 0..active_days {
        for _ in 0..per_day {
            c.activity.add(d, Kind::Click);
        }
        c.activity.add(d, Kind::Login);
    }
    c
}

fn detect(c: &mut Criterion) {
    let p = decline::Params::new(&DeclineConfig::default(), KindSet::ALL);
    let width = p.window_width() as i64; // 29: 21 baseline + 7 recent + 1 filling
    let mut g = c.benchmark_group("detect_decline_evaluate");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    // The common case: a steady customer, full window, no signal, no state change.
    let mut steady = customer(&p, width, 3);
    assert!(decline::evaluate(&p, &mut steady, 0, width - 1, 0).is_none());
    g.bench_function("steady_no_signal", |b| {
        b.iter(|| decline::evaluate(&p, black_box(&mut steady), 0, black_box(width - 1), 0));
    });

    // The rare case: the recent week is silent, an episode opens (builds the
    // report with its per-kind breakdown). The customer is cloned untimed.
    let stopped = customer(&p, p.baseline_buckets, 3);
    assert!(decline::evaluate(&p, &mut stopped.clone(), 0, width - 1, 0).is_some());
    g.bench_function("opens_episode", |b| {
        b.iter_batched_ref(
            || stopped.clone(),
            |c| decline::evaluate(&p, c, 0, black_box(width - 1), 0),
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// Customers in the timer benchmark: the population at which the old
/// sorted-set index was the largest single cost of the hot path.
const TIMER_CUSTOMERS: u32 = 700_000;

/// Deadlines and ids of the timer benchmark's customers.
struct Table {
    at: Vec<i64>,
    ids: Vec<String>,
}

impl Keys for Table {
    fn deadline(&self, slot: u32) -> i64 {
        self.at[slot as usize]
    }
    fn id(&self, slot: u32) -> &str {
        &self.ids[slot as usize]
    }
}

/// One reschedule, as every activity event does: the customer's dormancy
/// deadline moves to its latest event plus 60 days. `index` is care's timer
/// index (remove + insert); `btreeset` is the `BTreeSet<(deadline, slot)>`
/// it replaced, as the same-run baseline. Both read deadlines from the same
/// dense table. 700k customers, deadlines spread over 60 days, stream time
/// advancing 100 ms per event, customers visited with a large stride.
fn timers(c: &mut Criterion) {
    let horizon = 60 * DAY_MS;
    let mut rng = StdRng::seed_from_u64(SEED);
    let at: Vec<i64> = (0..TIMER_CUSTOMERS).map(|_| START_MS + horizon + rng.random_range(0..horizon)).collect();
    let ids = (0..TIMER_CUSTOMERS).map(|i| format!("cust-{i:07}")).collect();
    let mut t = Table { at, ids };
    let mut g = c.benchmark_group("timers_reschedule_700k");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let mut index = TimerIndex::default();
    for slot in 0..TIMER_CUSTOMERS {
        index.insert(slot, t.at[slot as usize], &t);
    }
    let (mut now, mut i) = (START_MS + horizon, 0u32);
    g.bench_function("index", |b| {
        b.iter(|| {
            now += 100;
            i = (i + 7919) % TIMER_CUSTOMERS;
            let slot = black_box(i);
            index.remove(slot, t.at[slot as usize]);
            t.at[slot as usize] = now + horizon;
            index.insert(slot, now + horizon, &t);
        });
    });

    let mut set: BTreeSet<(i64, u32)> = t.at.iter().enumerate().map(|(i, &at)| (at, i as u32)).collect();
    let (mut now, mut i) = (START_MS + horizon, 0u32);
    g.bench_function("btreeset", |b| {
        b.iter(|| {
            now += 100;
            i = (i + 7919) % TIMER_CUSTOMERS;
            let slot = black_box(i);
            set.remove(&(t.at[slot as usize], slot));
            t.at[slot as usize] = now + horizon;
            set.insert((now + horizon, slot));
        });
    });
    g.finish();
}

criterion_group!(benches, pipeline, pipeline_grid, detect, timers);
criterion_main!(benches);
