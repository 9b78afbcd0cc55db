//! A synthetic customer population with ground truth, to measure detection
//! quality against (`care demo`'s scorecard, `cargo bench --bench quality`).
//!
//! Built to be hard the way real data is, not to flatter a detector:
//! - rates are Gamma events/day with mean 1.5 (the reference's shape 1.2
//!   spans 0.03–6.3 from the 1st to the 99th percentile: two orders of
//!   magnitude; the grid's shapes 0.5–2 span more and less);
//! - a weekly profile (the reference: weekend days 40 % below weekdays,
//!   about 32 % below the week's mean), the week's mean unchanged;
//! - bursts: a share of customer-days at 3–6× (a campaign, a busy week), or
//!   one day a month at 5× (a payday), which make daily counts overdispersed;
//! - classes: steady, declining (the rate drops by 50–95 %), going silent,
//!   silent then returning (after 30–90 days), unhappy (steady activity,
//!   tickets with low CSAT and NPS). The change day is uniform in
//!   [day 70, last day − 30].
//!
//! Everything follows from the seed: the same [`Variant`] yields the same
//! events in the same order.

use care_core::event::Kind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, Poisson};

pub const DAY_MS: i64 = 86_400_000;
/// Simulated time starts at 2026-01-01T00:00:00Z, a Thursday.
pub const START_MS: i64 = 1_767_225_600_000;
/// Weekday of day 0, Monday = 0.
const FIRST_WEEKDAY: u32 = 3;
/// The earliest change day.
pub const FIRST_CHANGE_DAY: u32 = 70;
/// Every variant's mean rate, events per day.
pub const MEAN_RATE: f64 = 1.5;

/// The knobs of one population.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    /// Shape of the Gamma distribution of rates (mean [`MEAN_RATE`]): the
    /// smaller, the more customers far from the mean.
    pub rate_shape: f64,
    /// Rate factor per weekday, Monday first, mean 1.
    pub weekly: [f64; 7],
    pub bursts: Bursts,
}

/// Days that run above a customer's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bursts {
    None,
    /// Each customer-day bursts with probability `share`, multiplying its
    /// rate by a factor uniform in `factor`.
    Random { share: f64, factor: (f64, f64) },
    /// One day a month per customer (a day of the month drawn per customer,
    /// 1–28: a payday) at `factor` times the rate.
    Monthly { factor: f64 },
}

/// Weekend days `drop` below weekdays, the week's mean 1.
pub fn weekends_down(drop: f64) -> [f64; 7] {
    let weekday = 7.0 / (5.0 + 2.0 * (1.0 - drop));
    let weekend = weekday * (1.0 - drop);
    [weekday, weekday, weekday, weekday, weekday, weekend, weekend]
}

/// `profile`, Monday first, scaled to a mean of 1.
pub fn weekly_profile(profile: [f64; 7]) -> [f64; 7] {
    let mean = profile.iter().sum::<f64>() / 7.0;
    profile.map(|f| f / mean)
}

/// The grid's weekly profiles.
pub const WEEKLY: [(&str, fn() -> [f64; 7]); 3] = [
    ("flat", || [1.0; 7]),
    ("weekends -40 %", || weekends_down(0.4)),
    ("Mon-Sun 1.05 .. 0.55", || weekly_profile([1.05, 1.1, 1.1, 1.05, 1.0, 0.6, 0.55])),
];
/// The grid's rate shapes.
pub const RATE_SHAPES: [f64; 3] = [0.5, 1.0, 2.0];
/// The grid's bursts.
pub const BURSTS: [(&str, Bursts); 3] = [
    ("no bursts", Bursts::None),
    ("2 % of days 3-6x", Bursts::Random { share: 0.02, factor: (3.0, 6.0) }),
    ("monthly 5x", Bursts::Monthly { factor: 5.0 }),
];

impl Variant {
    /// The reference population of the quality bars and the demo.
    pub fn reference(seed: u64, customers: u32, days: u32) -> Variant {
        Variant {
            name: "reference".into(),
            seed,
            customers,
            days,
            rate_shape: 1.2,
            weekly: weekends_down(0.4),
            bursts: Bursts::Random { share: 0.02, factor: (3.0, 6.0) },
        }
    }

    /// Harsher: bursts at 6×, weekend days 50 % below weekdays.
    pub fn harsh(seed: u64, customers: u32, days: u32) -> Variant {
        Variant {
            name: "harsh".into(),
            weekly: weekends_down(0.5),
            bursts: Bursts::Random { share: 0.02, factor: (6.0, 6.0) },
            ..Variant::reference(seed, customers, days)
        }
    }

    /// Every combination of rate shape, weekly profile and bursts (issue
    /// 18's grid), on `seed`.
    pub fn grid(seed: u64, customers: u32, days: u32) -> Vec<Variant> {
        let mut cells = Vec::new();
        for shape in RATE_SHAPES {
            for (week, weekly) in WEEKLY {
                for (bursts_name, bursts) in BURSTS {
                    let name = format!("shape {shape}, {week}, {bursts_name}");
                    cells.push(Variant { name, seed, customers, days, rate_shape: shape, weekly: weekly(), bursts });
                }
            }
        }
        cells
    }
}

/// What truly happens to a customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Class {
    Steady,
    /// From the change day the rate is `1 − drop` of what it was.
    Declining { drop: f64 },
    /// No activity from the change day on.
    Silent,
    /// No activity from the change day until day `back`.
    Returning { back: u32 },
    /// Steady activity, unhappy survey answers.
    Unhappy,
}

/// One customer's ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub class: Class,
    /// Mean activity events per day before any change.
    pub rate: f64,
    /// The day the change begins; `None` for steady and unhappy customers.
    pub change_day: Option<u32>,
}

impl Truth {
    /// Mean rate on `day`, before the weekly profile and bursts.
    pub fn rate_on(&self, day: u32) -> f64 {
        let changed = self.change_day.is_some_and(|c| day >= c);
        match self.class {
            Class::Declining { drop } if changed => self.rate * (1.0 - drop),
            Class::Silent if changed => 0.0,
            Class::Returning { back } if changed && day < back => 0.0,
            _ => self.rate,
        }
    }
}

/// One simulated event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimEvent {
    pub ts_ms: i64,
    pub customer: u32,
    pub kind: Kind,
    pub amount: Option<f64>,
    pub csat: Option<u8>,
    pub nps: Option<u8>,
}

/// A population and the random stream its days are drawn from.
#[derive(Debug)]
pub struct Population {
    pub variant: Variant,
    pub truth: Vec<Truth>,
    /// Per customer, the day of the month of a monthly burst (1–28; empty
    /// without monthly bursts).
    burst_day: Vec<u8>,
    rng: StdRng,
}

impl Population {
    pub fn new(variant: Variant) -> Population {
        let mut rng = StdRng::seed_from_u64(variant.seed);
        let gamma = Gamma::<f64>::new(variant.rate_shape, MEAN_RATE / variant.rate_shape).expect("valid gamma");
        let last_change = variant.days.saturating_sub(30).max(FIRST_CHANGE_DAY);
        let truth = (0..variant.customers)
            .map(|_| {
                let rate = gamma.sample(&mut rng).max(0.01);
                let change_day = rng.random_range(FIRST_CHANGE_DAY..=last_change);
                let roll: f64 = rng.random();
                let class = match roll {
                    r if r < 0.60 => Class::Steady,
                    r if r < 0.75 => Class::Declining { drop: rng.random_range(0.5..=0.95) },
                    r if r < 0.85 => Class::Silent,
                    r if r < 0.90 => Class::Returning { back: change_day + rng.random_range(30..=90) },
                    _ => Class::Unhappy,
                };
                let changes = !matches!(class, Class::Steady | Class::Unhappy);
                Truth { class, rate, change_day: changes.then_some(change_day) }
            })
            .collect();
        // A stream of its own, so the other variants draw what they drew before.
        let mut days_rng = StdRng::seed_from_u64(variant.seed ^ 0x6d6f_6e74_686c_7921);
        let burst_day = match variant.bursts {
            Bursts::Monthly { .. } => (0..variant.customers).map(|_| days_rng.random_range(1..=28)).collect(),
            _ => Vec::new(),
        };
        Population { variant, truth, burst_day, rng }
    }

    /// The weekly profile's factor on `day`.
    pub fn weekly_factor(&self, day: u32) -> f64 {
        self.variant.weekly[((day + FIRST_WEEKDAY) % 7) as usize]
    }

    /// Replaces `out` with every event of `day`, in time order.
    pub fn day_events(&mut self, day: u32, out: &mut Vec<SimEvent>) {
        out.clear();
        let week = self.weekly_factor(day);
        let start = START_MS + i64::from(day) * DAY_MS;
        let month_day = day_of_month(day);
        for (i, t) in self.truth.iter().enumerate() {
            let mut mean = t.rate_on(day) * week;
            match self.variant.bursts {
                Bursts::None => {}
                Bursts::Random { share, factor: (lo, hi) } => {
                    if self.rng.random::<f64>() < share {
                        mean *= if hi > lo { self.rng.random_range(lo..hi) } else { lo };
                    }
                }
                Bursts::Monthly { factor } => {
                    if self.burst_day[i] == month_day {
                        mean *= factor;
                    }
                }
            }
            if mean <= 0.0 {
                continue;
            }
            let n = Poisson::new(mean).map_or(0.0, |p| p.sample(&mut self.rng)) as u32;
            for _ in 0..n {
                let ts_ms = start + self.rng.random_range(0..DAY_MS);
                out.push(event(&mut self.rng, i as u32, ts_ms, t.class == Class::Unhappy));
            }
        }
        out.sort_unstable_by_key(|e| (e.ts_ms, e.customer));
    }
}

/// The day of the month (1–31) of simulated `day`, day 0 being 2026-01-01.
fn day_of_month(day: u32) -> u8 {
    let (mut year, mut left) = (2026u32, day);
    loop {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        for len in [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
            if left < len {
                return (left + 1) as u8;
            }
            left -= len;
        }
        year += 1;
    }
}

/// The kind mix: mostly clicks and logins, some orders, chats with CSAT;
/// unhappy customers raise tickets with low CSAT and NPS.
fn event(rng: &mut StdRng, customer: u32, ts_ms: i64, unhappy: bool) -> SimEvent {
    let roll: f64 = rng.random();
    let mut e = SimEvent { ts_ms, customer, kind: Kind::Click, amount: None, csat: None, nps: None };
    if roll < 0.08 {
        e.kind = Kind::Order;
        e.amount = Some(((20.0 + 180.0 * rng.random::<f64>()) * 100.0).round() / 100.0);
    } else if unhappy && roll < 0.25 {
        e.kind = Kind::Ticket;
        (e.csat, e.nps) = (Some(rng.random_range(1..=2)), Some(rng.random_range(0..=5)));
    } else if roll < 0.12 {
        e.kind = Kind::Chat;
        e.csat = Some(rng.random_range(3..=5));
    } else if roll < 0.35 {
        e.kind = Kind::Login;
    }
    e
}

/// The customer id of customer `i`.
pub fn customer_id(i: u32) -> String {
    format!("cust-{i:07}")
}

/// The index back from a customer id made by [`customer_id`].
pub fn customer_index(id: &[u8]) -> Option<u32> {
    std::str::from_utf8(id.strip_prefix(b"cust-")?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Population {
        Population::new(Variant::reference(11, 4_000, 140))
    }

    #[test]
    fn the_same_seed_draws_the_same_population_and_events() {
        let (mut a, mut b) = (small(), small());
        assert_eq!(a.truth, b.truth);
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for day in [0, 1, 90] {
            a.day_events(day, &mut ea);
            b.day_events(day, &mut eb);
            assert_eq!(ea, eb);
        }
    }

    #[test]
    fn rates_classes_and_change_days_follow_the_design() {
        let p = small();
        let mean = p.truth.iter().map(|t| t.rate).sum::<f64>() / p.truth.len() as f64;
        assert!((1.35..1.65).contains(&mean), "mean rate {mean}");
        let spread = |q: f64| {
            let mut r: Vec<f64> = p.truth.iter().map(|t| t.rate).collect();
            r.sort_by(f64::total_cmp);
            r[(q * (r.len() - 1) as f64) as usize]
        };
        assert!(spread(0.99) / spread(0.01) > 50.0, "two orders of magnitude");
        let steady = p.truth.iter().filter(|t| t.class == Class::Steady).count() as f64 / p.truth.len() as f64;
        assert!((0.57..0.63).contains(&steady), "steady share {steady}");
        for t in &p.truth {
            match (t.class, t.change_day) {
                (Class::Steady | Class::Unhappy, None) => {}
                (Class::Declining { drop }, Some(d)) => assert!((0.5..=0.95).contains(&drop) && (70..=110).contains(&d)),
                (Class::Returning { back }, Some(d)) => assert!((d + 30..=d + 90).contains(&back)),
                (Class::Silent, Some(d)) => assert!((70..=110).contains(&d)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn events_follow_rates_weekends_and_the_change() {
        let mut p = small();
        let mut events = Vec::new();
        let (mut weekday, mut weekend) = (0usize, 0usize);
        for day in 0..28 {
            p.day_events(day, &mut events);
            assert!(events.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms), "time order");
            assert!(events.iter().all(|e| (START_MS + i64::from(day) * DAY_MS..START_MS + i64::from(day + 1) * DAY_MS).contains(&e.ts_ms)));
            if (day + FIRST_WEEKDAY) % 7 >= 5 { weekend += events.len() } else { weekday += events.len() }
        }
        let expected: f64 = p.truth.iter().map(|t| t.rate).sum::<f64>() * 28.0;
        let total = (weekday + weekend) as f64;
        // Bursts add 2 % × (4.5 − 1) ≈ 7 %.
        assert!((total / expected - 1.07).abs() < 0.03, "total {total} vs {expected}");
        let ratio = (weekend as f64 / 8.0) / (weekday as f64 / 20.0);
        assert!((ratio - 0.6).abs() < 0.03, "weekend ÷ weekday {ratio}");
        let silent: Vec<u32> = (0..p.truth.len() as u32).filter(|&i| p.truth[i as usize].class == Class::Silent).collect();
        p.day_events(135, &mut events);
        assert!(events.iter().all(|e| silent.binary_search(&e.customer).is_err()), "silent customers are silent after the change");
    }

    #[test]
    fn day_of_month_known_answers() {
        // Day 0 is 2026-01-01; 2026 is not a leap year, 2028 is.
        let cases = [(0, 1), (30, 31), (31, 1), (58, 28), (59, 1), (364, 31), (365, 1), (365 + 365 + 31 + 28, 29)];
        for (day, dom) in cases {
            assert_eq!(day_of_month(day), dom, "day {day}");
        }
    }

    #[test]
    fn the_grid_covers_every_combination_with_the_same_mean_rate() {
        let grid = Variant::grid(5, 3_000, 100);
        assert_eq!(grid.len(), 27);
        let names: std::collections::BTreeSet<&str> = grid.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names.len(), 27, "distinct names");
        let spread = |shape: f64| {
            let p = Population::new(Variant { rate_shape: shape, ..grid[0].clone() });
            let mut r: Vec<f64> = p.truth.iter().map(|t| t.rate).collect();
            let mean = r.iter().sum::<f64>() / r.len() as f64;
            assert!((mean / MEAN_RATE - 1.0).abs() < 0.07, "shape {shape}: mean {mean}");
            r.sort_by(f64::total_cmp);
            r[r.len() * 9 / 10] / r[r.len() / 2]
        };
        assert!(spread(0.5) > spread(1.0) && spread(1.0) > spread(2.0), "smaller shapes spread more");
        for v in &grid {
            assert!((v.weekly.iter().sum::<f64>() / 7.0 - 1.0).abs() < 1e-12, "{}: the week's mean is 1", v.name);
        }
        let profile = WEEKLY[2].1();
        assert!((profile[6] / profile[1] - 0.5).abs() < 1e-12, "Sunday is half a Tuesday");
    }

    #[test]
    fn monthly_bursts_multiply_each_customers_own_day() {
        let v = Variant { bursts: Bursts::Monthly { factor: 5.0 }, weekly: [1.0; 7], ..Variant::grid(9, 4_000, 60)[0].clone() };
        let mut p = Population::new(v);
        let (mut on, mut off, mut events) = (0usize, 0usize, Vec::new());
        // Days 0-59 before any change: January has one burst day per customer, so has February.
        for day in 0..59 {
            p.day_events(day, &mut events);
            let dom = day_of_month(day);
            let bursting = events.iter().filter(|e| p.burst_day[e.customer as usize] == dom).count();
            (on, off) = (on + bursting, off + events.len() - bursting);
        }
        // Two burst days per customer against 57 plain days.
        let ratio = (on as f64 / 2.0) / (off as f64 / 57.0);
        assert!((ratio - 5.0).abs() < 0.3, "burst day ÷ plain day {ratio}");
    }

    #[test]
    fn customer_ids_round_trip() {
        assert_eq!(customer_index(customer_id(42).as_bytes()), Some(42));
        assert_eq!(customer_index(b"someone"), None);
    }
}
