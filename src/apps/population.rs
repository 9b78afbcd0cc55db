//! A synthetic customer population with ground truth, to measure detection
//! quality against (`care demo`'s scorecard, `cargo bench --bench quality`).
//!
//! Built to be hard the way real data is, not to flatter a detector:
//! - rates are Gamma(1.2, 1.25) events/day (mean 1.5, 1st–99th percentile
//!   0.03–6.3: two orders of magnitude);
//! - a weekly profile: weekend days `weekend_drop` below weekdays (0.4:
//!   about 32 % below the week's mean), the week's mean unchanged;
//! - bursts: `burst_share` of customer-days run at 3–6× (a campaign, a
//!   busy week), which makes daily counts overdispersed;
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

/// The knobs of one population.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: &'static str,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    /// Weekend days run this share below weekdays.
    pub weekend_drop: f64,
    /// Share of customer-days that burst.
    pub burst_share: f64,
    /// A burst multiplies the day's rate by a factor uniform in this range.
    pub burst_factor: (f64, f64),
}

impl Variant {
    /// The reference population of the quality bars.
    pub fn reference(seed: u64, customers: u32, days: u32) -> Variant {
        Variant { name: "reference", seed, customers, days, weekend_drop: 0.4, burst_share: 0.02, burst_factor: (3.0, 6.0) }
    }

    /// Harsher: bursts at 6×, weekends 50 % lower.
    pub fn harsh(seed: u64, customers: u32, days: u32) -> Variant {
        Variant { name: "harsh", weekend_drop: 0.5, burst_factor: (6.0, 6.0), ..Variant::reference(seed, customers, days) }
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
    rng: StdRng,
}

impl Population {
    pub fn new(variant: Variant) -> Population {
        let mut rng = StdRng::seed_from_u64(variant.seed);
        let gamma = Gamma::<f64>::new(1.2, 1.25).expect("valid gamma");
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
        Population { variant, truth, rng }
    }

    /// The weekly profile's factor on `day`: weekends `weekend_drop` below
    /// weekdays' level, scaled so the week's mean is 1.
    pub fn weekly_factor(&self, day: u32) -> f64 {
        let d = self.variant.weekend_drop;
        let weekday = 7.0 / (5.0 + 2.0 * (1.0 - d));
        if (day + FIRST_WEEKDAY) % 7 >= 5 {
            weekday * (1.0 - d)
        } else {
            weekday
        }
    }

    /// Replaces `out` with every event of `day`, in time order.
    pub fn day_events(&mut self, day: u32, out: &mut Vec<SimEvent>) {
        out.clear();
        let week = self.weekly_factor(day);
        let start = START_MS + i64::from(day) * DAY_MS;
        let (lo, hi) = self.variant.burst_factor;
        for (i, t) in self.truth.iter().enumerate() {
            let mut mean = t.rate_on(day) * week;
            if self.rng.random::<f64>() < self.variant.burst_share {
                mean *= if hi > lo { self.rng.random_range(lo..hi) } else { lo };
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
    fn customer_ids_round_trip() {
        assert_eq!(customer_index(customer_id(42).as_bytes()), Some(42));
        assert_eq!(customer_index(b"someone"), None);
    }
}
