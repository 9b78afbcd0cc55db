//! The quality grid's first population (rate shape 1, flat week, no
//! bursts, seed 1) as canonical lines: the second input of `hot_path`
//! and of `against`. Not in `harness.rs`: earlier commits may lack the
//! grid.

use care::apps::demo::write_sim_line;
use care::apps::population::{Population, Variant};

/// `customers` over `days`, in event-time order.
pub fn lines(customers: u32, days: u32) -> Vec<String> {
    let v = Variant::grid(1, customers, days).into_iter().next().expect("the grid has cells");
    let mut p = Population::new(v);
    let (mut day, mut lines, mut line) = (Vec::new(), Vec::new(), String::new());
    for d in 0..days {
        p.day_events(d, &mut day);
        for e in &day {
            write_sim_line(&mut line, e);
            lines.push(line.clone());
        }
    }
    lines
}
