//! Satisfaction ground truth: a population of survey answers and tickets
//! whose changes are known, and the satisfaction signals scored against it
//! (`cargo bench --bench quality`, `care demo`'s scorecard).
//!
//! A population of its own, beside [`super::population`]'s activity one
//! and drawn from its own seed stream, so the activity figures do not move
//! with it. Its customers do nothing but answer surveys and raise tickets
//! (one login on day 0 makes them known from the start):
//! - answers: Gamma-distributed rates (mean [`SatVariant::answers_per_month`],
//!   shape [`SatVariant::answer_shape`] 0.6: many answer once a quarter or
//!   less, a few several times a week), each a `survey` record with a CSAT
//!   answer (4–5 when satisfied, 1–3 otherwise) and, one in three, an NPS
//!   answer (7–10 when satisfied, 0–6 otherwise);
//! - each customer's satisfied share is Beta(9, 1) (mean 90 %, a tenth
//!   below 79 %): the levels CSAT surveys report;
//! - tickets: Gamma-distributed rates (mean [`SatVariant::tickets_per_month`],
//!   shape 0.8), and 2 % of customer-days at 3–6× their rate (a busy day);
//! - personas: steady (70 %), falling CSAT (15 %: from the change day the
//!   satisfied share is 0–20 %, for good), ticket surge (15 %: from the
//!   change day 3–8× their ticket rate for 28 days, then back). The change
//!   day is uniform in [day 70, last day − 30], as for activity.
//!
//! Scoring (documented with the bars in BENCHMARKS.md):
//! - recall: a changed customer is caught by the first `opened` of the
//!   signal on or after the start of its change day, within 14 days.
//!   Falling CSAT and low CSAT are scored on the falling customers with at
//!   least 3 answers in those 14 days, ticket surge on the surging ones at
//!   1 ticket a week or more before, NPS detractor on the falling
//!   customers who gave a detractor answer in those 14 days;
//! - a *false alert* is an `opened` after the 35-day warm-up on a steady
//!   customer, of falling CSAT, ticket surge, or low CSAT when the
//!   customer's true satisfied share is above 60 % (low CSAT's exit level:
//!   below it, low CSAT is the truth). An NPS detractor alert reports a
//!   detractor answer the customer gave, so it is never false: its rate on
//!   steady customers is reported beside, not in the total.

use std::fmt;
use std::sync::Arc;

use care_core::config::Config;
use care_core::detect::csat_low::CSAT_LOW;
use care_core::detect::falling_csat::FALLING_CSAT;
use care_core::detect::nps_detractor::NPS_DETRACTOR;
use care_core::detect::ticket_surge::TICKET_SURGE;
use care_core::detect::{SignalType, Status};
use care_core::engine::{Input, Routed, Rules};
use care_core::event::{Event, Kind};
use care_core::render::{signal_type_of, OutputRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Gamma, Poisson};

use super::population::{customer_id, customer_index, SimEvent, DAY_MS, FIRST_CHANGE_DAY, START_MS};
use super::quality::{fill, Recall, MONTH_DAYS, WARMUP_DAYS};

/// The satisfaction signals, in report order.
pub const SIGNALS: [SignalType; 4] = [FALLING_CSAT, TICKET_SURGE, CSAT_LOW, NPS_DETRACTOR];
/// Recall is within this many days of the change.
const WITHIN_DAYS: f64 = 14.0;
/// A steady customer's low CSAT alert is false above this true share.
const LOW_CSAT_TRUE_BELOW: f64 = 0.6;

/// The knobs of one satisfaction population.
#[derive(Debug, Clone, PartialEq)]
pub struct SatVariant {
    pub name: String,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    /// Mean survey answers per customer-month.
    pub answers_per_month: f64,
    /// Shape of the Gamma of answer rates: the smaller, the more spread.
    pub answer_shape: f64,
    /// Mean tickets per customer-month.
    pub tickets_per_month: f64,
}

impl SatVariant {
    /// The reference: two answers and one ticket a customer-month.
    pub fn reference(seed: u64, customers: u32, days: u32) -> SatVariant {
        SatVariant { name: "reference".into(), seed, customers, days, answers_per_month: 2.0, answer_shape: 0.6, tickets_per_month: 1.0 }
    }

    /// Answer rates × ticket rates, on `seed`: the variants the bars hold on.
    pub fn grid(seed: u64, customers: u32, days: u32) -> Vec<SatVariant> {
        let mut cells = Vec::new();
        for answers in [1.0, 2.0, 4.0] {
            for tickets in [0.5, 1.0, 3.0] {
                let name = format!("{answers} answers, {tickets} tickets a month");
                cells.push(SatVariant { name, answers_per_month: answers, tickets_per_month: tickets, ..SatVariant::reference(seed, customers, days) });
            }
        }
        cells
    }
}

/// What truly happens to a customer's satisfaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SatClass {
    Steady,
    /// From the change day, satisfied answers at share `to`.
    FallingCsat { to: f64 },
    /// From the change day, tickets at `factor` × the rate for [`SURGE_DAYS`].
    TicketSurge { factor: f64 },
}

/// How long a surge lasts.
pub const SURGE_DAYS: u32 = 28;

/// One customer's truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SatTruth {
    pub class: SatClass,
    /// Survey answers per day.
    pub answer_rate: f64,
    /// Tickets per day before any surge.
    pub ticket_rate: f64,
    /// Share of satisfied answers before any fall.
    pub satisfied: f64,
    /// `None` for steady customers.
    pub change_day: Option<u32>,
}

impl SatTruth {
    fn changed(&self, day: u32) -> bool {
        self.change_day.is_some_and(|c| day >= c)
    }

    /// Satisfied share on `day`.
    pub fn satisfied_on(&self, day: u32) -> f64 {
        match self.class {
            SatClass::FallingCsat { to } if self.changed(day) => to,
            _ => self.satisfied,
        }
    }

    /// Mean tickets on `day`, before bursts.
    pub fn tickets_on(&self, day: u32) -> f64 {
        match (self.class, self.change_day) {
            (SatClass::TicketSurge { factor }, Some(c)) if (c..c + SURGE_DAYS).contains(&day) => self.ticket_rate * factor,
            _ => self.ticket_rate,
        }
    }
}

/// A satisfaction population and its random stream.
#[derive(Debug)]
pub struct SatPopulation {
    pub variant: SatVariant,
    pub truth: Vec<SatTruth>,
    rng: StdRng,
}

/// Share of customer-days whose ticket rate bursts, and the burst's factor.
const TICKET_BURSTS: (f64, (f64, f64)) = (0.02, (3.0, 6.0));

impl SatPopulation {
    pub fn new(variant: SatVariant) -> SatPopulation {
        // Not the activity population's stream: its figures stay put.
        let mut rng = StdRng::seed_from_u64(variant.seed ^ 0x7361_7469_7366_6163);
        let month = 365.25 / 12.0;
        let answers = Gamma::<f64>::new(variant.answer_shape, variant.answers_per_month / month / variant.answer_shape).expect("valid gamma");
        let tickets = Gamma::<f64>::new(0.8, variant.tickets_per_month / month / 0.8).expect("valid gamma");
        let satisfied = Beta::<f64>::new(9.0, 1.0).expect("valid beta");
        let last_change = variant.days.saturating_sub(30).max(FIRST_CHANGE_DAY);
        let truth = (0..variant.customers)
            .map(|_| {
                let (answer_rate, ticket_rate, satisfied) = (answers.sample(&mut rng), tickets.sample(&mut rng), satisfied.sample(&mut rng));
                let change_day = rng.random_range(FIRST_CHANGE_DAY..=last_change);
                let class = match rng.random::<f64>() {
                    r if r < 0.70 => SatClass::Steady,
                    r if r < 0.85 => SatClass::FallingCsat { to: rng.random_range(0.0..=0.2) },
                    _ => SatClass::TicketSurge { factor: rng.random_range(3.0..=8.0) },
                };
                let change_day = (class != SatClass::Steady).then_some(change_day);
                SatTruth { class, answer_rate, ticket_rate, satisfied, change_day }
            })
            .collect();
        SatPopulation { variant, truth, rng }
    }

    /// Replaces `out` with every event of `day`, in time order.
    pub fn day_events(&mut self, day: u32, out: &mut Vec<SimEvent>) {
        out.clear();
        let start = START_MS + i64::from(day) * DAY_MS;
        for (i, t) in self.truth.iter().enumerate() {
            let customer = i as u32;
            if day == 0 {
                let ts_ms = start + self.rng.random_range(0..DAY_MS);
                out.push(SimEvent { ts_ms, customer, kind: Kind::Login, amount: None, csat: None, nps: None });
            }
            let share = t.satisfied_on(day);
            for _ in 0..poisson(&mut self.rng, t.answer_rate) {
                let ts_ms = start + self.rng.random_range(0..DAY_MS);
                out.push(answer(&mut self.rng, customer, ts_ms, share));
            }
            let (burst, (lo, hi)) = TICKET_BURSTS;
            let factor = if self.rng.random::<f64>() < burst { self.rng.random_range(lo..hi) } else { 1.0 };
            for _ in 0..poisson(&mut self.rng, t.tickets_on(day) * factor) {
                let ts_ms = start + self.rng.random_range(0..DAY_MS);
                out.push(SimEvent { ts_ms, customer, kind: Kind::Ticket, amount: None, csat: None, nps: None });
            }
        }
        out.sort_unstable_by_key(|e| (e.ts_ms, e.customer));
    }
}

fn poisson(rng: &mut StdRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0.0, |p| p.sample(rng)) as u32
}

/// A survey answer, satisfied with chance `share`; one in three carries NPS.
fn answer(rng: &mut StdRng, customer: u32, ts_ms: i64, share: f64) -> SimEvent {
    let satisfied = rng.random::<f64>() < share;
    let csat = if satisfied { rng.random_range(4..=5) } else { rng.random_range(1..=3) };
    let nps = (rng.random::<f64>() < 1.0 / 3.0).then(|| if satisfied { rng.random_range(7..=10) } else { rng.random_range(0..=6) });
    SimEvent { ts_ms, customer, kind: Kind::Survey, amount: None, csat: Some(csat), nps }
}

/// Per customer, what the scorer needs of their answers: how many in the
/// 14 days from the change, and whether one was a detractor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct AfterChange {
    answers: u32,
    detractor: bool,
}

/// Collects satisfaction alerts against the truth.
#[derive(Debug)]
pub struct SatScorer<'a> {
    truth: &'a [SatTruth],
    after: Vec<AfterChange>,
    /// Per signal (in [`SIGNALS`] order), per customer: days from the
    /// change to the first `opened` on or after it.
    delay: [Vec<Option<f64>>; 4],
    /// Per signal: false alerts (NPS detractor: alerts on steady customers).
    false_alerts: [u64; 4],
}

impl<'a> SatScorer<'a> {
    pub fn new(truth: &'a [SatTruth]) -> SatScorer<'a> {
        let none = || vec![None; truth.len()];
        SatScorer { truth, after: vec![AfterChange::default(); truth.len()], delay: [none(), none(), none(), none()], false_alerts: [0; 4] }
    }

    /// Notes an input event: answers after the change make the cohorts.
    pub fn input(&mut self, e: &SimEvent) {
        let Some(t) = self.truth.get(e.customer as usize) else { return };
        let Some(change) = t.change_day else { return };
        let day = (e.ts_ms - START_MS).div_euclid(DAY_MS);
        if e.csat.is_some() && (i64::from(change)..i64::from(change) + WITHIN_DAYS as i64).contains(&day) {
            let a = &mut self.after[e.customer as usize];
            a.answers += 1;
            a.detractor |= e.nps.is_some_and(|n| n <= care_core::detect::nps_detractor::DETRACTOR_MAX);
        }
    }

    /// Takes one output record into account.
    pub fn observe(&mut self, r: &OutputRecord) {
        let Some(t) = r.header("ce_type").and_then(signal_type_of) else { return };
        let Some(i) = r.key.as_deref().and_then(customer_index) else { return };
        if r.status() == Some(Status::Opened) {
            self.opened(i, t, r.trigger_ms);
        }
    }

    /// An episode (or single alert) of `t` opened for customer `i` at `at_ms`.
    pub fn opened(&mut self, i: u32, t: SignalType, at_ms: i64) {
        let (Some(s), Some(truth)) = (SIGNALS.iter().position(|x| *x == t), self.truth.get(i as usize)) else { return };
        match truth.change_day {
            Some(day) => {
                let delay = (at_ms - START_MS - i64::from(day) * DAY_MS) as f64 / DAY_MS as f64;
                let d = &mut self.delay[s][i as usize];
                if delay >= 0.0 && d.is_none() {
                    *d = Some(delay);
                }
            }
            None if at_ms >= START_MS + i64::from(WARMUP_DAYS) * DAY_MS => {
                let is_false = t != CSAT_LOW || truth.satisfied > LOW_CSAT_TRUE_BELOW;
                self.false_alerts[s] += u64::from(is_false);
            }
            None => {}
        }
    }

    /// The recall cohort of signal `s`: the customers with a truth for it.
    fn in_cohort(&self, s: usize, i: usize) -> bool {
        let (t, a) = (&self.truth[i], &self.after[i]);
        match t.class {
            SatClass::Steady => false,
            SatClass::TicketSurge { .. } => SIGNALS[s] == TICKET_SURGE && t.ticket_rate * 7.0 >= 1.0,
            SatClass::FallingCsat { .. } if SIGNALS[s] == NPS_DETRACTOR => a.detractor,
            SatClass::FallingCsat { .. } => (SIGNALS[s] == FALLING_CSAT || SIGNALS[s] == CSAT_LOW) && a.answers >= 3,
        }
    }

    /// The figures, for `events` events of `variant`.
    pub fn report(&self, variant: &SatVariant, events: u64) -> SatReport {
        let steady = self.truth.iter().filter(|t| t.class == SatClass::Steady).count();
        let months = steady as f64 * f64::from(variant.days.saturating_sub(WARMUP_DAYS)) / MONTH_DAYS;
        let recall = |s: usize| {
            let delays: Vec<Option<f64>> = (0..self.truth.len()).filter(|&i| self.in_cohort(s, i)).map(|i| self.delay[s][i]).collect();
            Recall::of(&delays, WITHIN_DAYS)
        };
        // Any signal: each changed customer in some cohort, by the first of them.
        let any: Vec<Option<f64>> = (0..self.truth.len())
            .filter(|&i| (0..2).any(|s| self.in_cohort(s, i)))
            .map(|i| (0..4).filter_map(|s| self.delay[s][i]).min_by(f64::total_cmp))
            .collect();
        SatReport {
            variant: variant.name.clone(),
            seed: variant.seed,
            customers: variant.customers,
            days: variant.days,
            events,
            steady_customer_months: months,
            recall: [recall(0), recall(1), recall(2), recall(3)],
            any: Recall::of(&any, WITHIN_DAYS),
            alerts_on_steady: self.false_alerts,
        }
    }
}

/// The satisfaction figures of one population.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SatReport {
    pub variant: String,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    pub events: u64,
    pub steady_customer_months: f64,
    /// Per signal in [`SIGNALS`] order: recall within 14 days of its cohort.
    pub recall: [Recall; 4],
    /// Falling-CSAT and surge cohorts caught by any satisfaction signal.
    pub any: Recall,
    /// Per signal: false alerts on steady customers (NPS detractor: its
    /// alerts on them, never false).
    pub alerts_on_steady: [u64; 4],
}

impl SatReport {
    /// Alerts of signal `s` on steady customers per 1,000 customer-months.
    pub fn per_1000_months(&self, s: usize) -> f64 {
        1000.0 * self.alerts_on_steady[s] as f64 / self.steady_customer_months.max(1e-9)
    }

    /// False alerts of every satisfaction signal together (the bar's figure).
    pub fn false_alerts_per_1000_months(&self) -> f64 {
        (0..3).map(|s| self.per_1000_months(s)).sum()
    }

    /// The header of [`SatReport::grid_row`]'s table.
    pub const GRID_HEADER: &'static str = "| satisfaction population (seed) | falling CSAT ≤ 14 d, ≥ 3 answers (bar ≥ 90 %) | ticket surge ≤ 14 d, ≥ 1/week (bar ≥ 90 %) | low CSAT ≤ 14 d | NPS detractor ≤ 14 d | any ≤ 14 d | false alerts: falling CSAT | ticket surge | low CSAT | together (bar ≤ 0.5) | NPS detractor alerts (not false) | steady customer-months |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// One markdown row: recall per signal, alerts on steady customers per
    /// 1,000 customer-months.
    pub fn grid_row(&self) -> String {
        let r: Vec<String> = self
            .recall
            .iter()
            .chain([&self.any])
            .map(|r| if r.customers == 0 { "– (0/0)".into() } else { format!("{:.1} % ({}/{})", 100.0 * r.rate(), r.caught, r.customers) })
            .collect();
        let f: Vec<String> = (0..4).map(|s| format!("{:.2}", self.per_1000_months(s))).collect();
        format!(
            "| {} ({}) | {} | {} | {} | {} | {:.2} | {} | {:.0} |",
            self.variant,
            self.seed,
            r.join(" | "),
            f[0],
            f[1],
            f[2],
            self.false_alerts_per_1000_months(),
            f[3],
            self.steady_customer_months
        )
    }
}

impl fmt::Display for SatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}\n{}", Self::GRID_HEADER, self.grid_row())
    }
}

/// Runs `variant` through the engine with `cfg` on `partitions` tasks and
/// scores the satisfaction alerts.
pub fn simulate(cfg: &Config, variant: &SatVariant, partitions: i32) -> SatReport {
    simulate_observed(cfg, variant, partitions, |_| {})
}

/// [`simulate`], showing each generated event to `seen` too (the oracle
/// bound, [`super::sat_oracle`], sees the events the engine does).
pub fn simulate_observed(cfg: &Config, variant: &SatVariant, partitions: i32, mut seen: impl FnMut(&SimEvent)) -> SatReport {
    let rules = Arc::new(Rules::new(cfg));
    let source = rules.canonical_source();
    let mut engine = Routed::new(rules, partitions);
    let mut population = SatPopulation::new(variant.clone());
    let truth = population.truth.clone();
    let mut scorer = SatScorer::new(&truth);
    let ids: Vec<String> = (0..variant.customers).map(customer_id).collect();
    let (mut day_events, mut out) = (Vec::new(), Vec::new());
    let mut ev = Event { customer_id: String::new(), kind: Kind::Click, ts_ms: 0, amount: None, csat: None, nps: None, event_id: None };
    let mut events = 0u64;
    for day in 0..variant.days {
        population.day_events(day, &mut day_events);
        for e in &day_events {
            scorer.input(e);
            seen(e);
            fill(&mut ev, e, &ids[e.customer as usize]);
            let input = Input { source, partition: 0, offset: events as i64, key: None, payload: b"" };
            engine.fold(&input, &ev, &mut out);
            events += 1;
        }
        engine.advance(START_MS + i64::from(day + 1) * DAY_MS, &mut out);
        out.drain(..).for_each(|r| scorer.observe(&r));
    }
    scorer.report(variant, events)
}

#[cfg(test)]
#[path = "satisfaction_tests.rs"]
mod tests;
