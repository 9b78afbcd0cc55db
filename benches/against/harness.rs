//! What `benches/against.rs` runs on both sides: the hot-path input and
//! the timing of a line file through the engine with the default config.
//! Built into this checkout's bench as a module, and into a worktree of
//! the earlier commit as an example (`against_harness`), so it uses only
//! what both have: `Routed`, `Rules`, `Config::parse` and the demo's
//! event writer. Command line (the earlier commit's side): `time FILE`
//! prints the best cold and warm milliseconds.

use std::sync::Arc;
use std::time::Instant;

use care::apps::demo::{poisson, write_event_line};
use care::config::Config;
use care::engine::{Input, Outcome, Routed, Rules};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY_MS: i64 = 86_400_000;
const START_MS: i64 = 1_767_225_600_000;
/// The wall clock handed to the engine: after the last event, so none is
/// ahead of it.
pub const NOW_MS: i64 = START_MS + 61 * DAY_MS;

/// `benches/hot_path.rs`'s input, drawn the same way: 20,000 customers
/// over 60 days (5 % heavy, a fifth of those declining), ~200k canonical
/// lines sorted by event time.
pub fn hot_path_input() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(42);
    let people: Vec<(f64, f64, bool, Option<u32>)> = (0..20_000)
        .map(|i| {
            let heavy = i % 20 == 0;
            let rate = if heavy { 1.0 + 2.0 * rng.random::<f64>() } else { 0.03 + 0.093 * rng.random::<f64>() };
            let decline_at = (heavy && rng.random::<f64>() < 0.2).then(|| rng.random_range(35..=50));
            (rate, 20.0 + 180.0 * rng.random::<f64>(), rng.random::<f64>() < 0.1, decline_at)
        })
        .collect();
    let mut events: Vec<(i64, String)> = Vec::with_capacity(220_000);
    for day in 0..60 {
        let base = START_MS + i64::from(day) * DAY_MS;
        for (id, (rate, basket, unhappy, decline_at)) in people.iter().enumerate() {
            let rate = if decline_at.is_some_and(|at| day >= at) { rate * 0.1 } else { *rate };
            for _ in 0..poisson(&mut rng, rate) {
                let ts = base + rng.random_range(0..DAY_MS);
                let mut line = String::with_capacity(96);
                write_event_line(&mut rng, &mut line, id as u32, ts, *basket, *unhappy);
                events.push((ts, line));
            }
        }
    }
    events.sort_by_key(|(ts, _)| *ts);
    events.into_iter().map(|(_, l)| l).collect()
}

fn run(engine: &mut Routed, lines: &[String], first: usize) {
    let source = engine.rules().canonical_source();
    let mut out = Vec::with_capacity(8);
    for (i, line) in lines.iter().enumerate() {
        let input = Input { source, partition: 0, offset: (first + i) as i64, key: None, payload: line.as_bytes() };
        let outcome = engine.process(&input, NOW_MS, &mut out);
        assert!(matches!(outcome, Outcome::Folded), "line {i} was not folded");
        out.clear();
    }
}

/// The best of `reps` runs of `lines` through 8 fresh tasks with the
/// default config: cold (every line, from empty) and warm (the second
/// half, after the first fed untimed), in milliseconds.
pub fn time(lines: &[String], reps: usize) -> (f64, f64) {
    let rules = Arc::new(Rules::new(&Config::parse("", "against").expect("the default config")));
    let half = lines.len() / 2;
    let (mut cold, mut warm) = (f64::MAX, f64::MAX);
    for _ in 0..reps {
        let mut e = Routed::new(Arc::clone(&rules), 8);
        let t = Instant::now();
        run(&mut e, lines, 0);
        cold = cold.min(t.elapsed().as_secs_f64() * 1e3);
        let mut e = Routed::new(Arc::clone(&rules), 8);
        run(&mut e, &lines[..half], 0);
        let t = Instant::now();
        run(&mut e, &lines[half..], half);
        warm = warm.min(t.elapsed().as_secs_f64() * 1e3);
    }
    (cold, warm)
}

#[allow(dead_code)] // the earlier commit's side only
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, cmd, file, reps] = &args[..] else { panic!("usage: against_harness time FILE REPS") };
    assert_eq!(cmd, "time");
    let text = std::fs::read_to_string(file).expect("the input file");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (cold, warm) = time(&lines, reps.parse().expect("a number of runs"));
    println!("{cold:.3} {warm:.3}");
}
