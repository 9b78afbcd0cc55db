//! Detection quality: a [`Population`] through the engine, its alerts scored
//! against the ground truth.
//!
//! Definitions (frozen with the bars in BENCHMARKS.md, QUALITY):
//! - the first [`WARMUP_DAYS`] days build baselines and are not scored;
//! - a changed customer (declining, silent, returning) is *caught* by the
//!   first decline, silence or dormancy `opened` whose trigger is on or
//!   after the start of its change day; the delay is trigger − that start;
//! - a *false alert* is a decline or silence `opened` for a steady customer
//!   after the warm-up, counted per 1,000 steady customer-months of scored
//!   time (a month is 365.25 / 12 days).

use std::fmt;
use std::sync::Arc;

use care_core::config::Config;
use care_core::detect::decline::ACTIVITY_DECLINE;
use care_core::detect::dormancy::DORMANT;
use care_core::detect::registry::MAX_SIGNAL_TYPES;
use care_core::detect::silence::SILENCE;
use care_core::detect::{SignalType, Status};
use care_core::engine::{Input, Routed, Rules};
use care_core::event::Event;
use care_core::render::{signal_type_of, OutputRecord};
use serde::Serialize;

use super::population::{customer_id, customer_index, Class, Population, SimEvent, Truth, Variant, DAY_MS, START_MS};

/// Days not scored for false alerts.
pub const WARMUP_DAYS: u32 = 35;
pub const MONTH_DAYS: f64 = 365.25 / 12.0;
/// Delays, in days, the curve reports recall at.
pub const CURVE_DAYS: [f64; 4] = [7.0, 14.0, 21.0, 28.0];

/// Whether an `opened` of this type catches a changed customer, and whether
/// it is a false alert on a steady one. The activity chain's signals are
/// what this harness scores; the others do not warn of a change in
/// activity (reactivation, first order) or are scored against cohorts of
/// their own (satisfaction).
fn scoring(t: SignalType) -> (bool, bool) {
    if t == ACTIVITY_DECLINE || t == SILENCE {
        (true, true)
    } else if t == DORMANT {
        (true, false)
    } else {
        (false, false)
    }
}

/// Recall of one cohort within a delay limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recall {
    pub customers: usize,
    pub caught: usize,
    /// Median delay in days of those caught within the limit.
    pub median_delay_days: Option<f64>,
}

impl Recall {
    /// Of a cohort's delays (`None`: not caught), those within `limit_days`.
    pub fn of(delays: &[Option<f64>], limit_days: f64) -> Recall {
        let mut within: Vec<f64> = delays.iter().flatten().copied().filter(|d| *d <= limit_days).collect();
        within.sort_by(f64::total_cmp);
        let median = (!within.is_empty()).then(|| within[within.len() / 2]);
        Recall { customers: delays.len(), caught: within.len(), median_delay_days: median }
    }

    /// Share caught, 0 for an empty cohort.
    pub fn rate(&self) -> f64 {
        if self.customers == 0 { 0.0 } else { self.caught as f64 / self.customers as f64 }
    }
}

/// One row of the recall-vs-delay curve: a band of base rate and drop.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub rates: (f64, f64),
    /// Drop band, half-open; starting at 1 for customers going silent.
    pub drops: (f64, f64),
    /// Recall within each of [`CURVE_DAYS`].
    pub recall: Vec<Recall>,
}

/// The figures of one population.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub variant: String,
    pub seed: u64,
    pub customers: u32,
    pub days: u32,
    pub events: u64,
    /// Approximate state per customer at the end, heap included.
    pub bytes_per_customer: f64,
    pub steady_customer_months: f64,
    pub false_alerts: u64,
    /// False alerts by signal type (`activity_decline`, `silence`).
    pub false_by_type: Vec<(&'static str, u64)>,
    /// Declining by ≥ 70 % from ≥ 2 events/day, within 14 days.
    pub decline: Recall,
    /// Every declining customer, any rate and drop, within 14 days.
    pub all_declines: Recall,
    /// Silent (for good or for a while) from ≥ 1 event/day, within 14 days.
    pub silence_1: Recall,
    /// Silent from ≥ 0.5 events/day, within 21 days.
    pub silence_05: Recall,
    pub curve: Vec<CurveRow>,
    /// The configured false alerts per 1,000 customer-months, by signal type
    /// as in `false_by_type` (set by [`simulate`], empty otherwise): the
    /// calibration is the setting against the measured figure.
    pub settings: Vec<(&'static str, f64)>,
    /// Source anomaly records (the outage guard tripping or clearing): a
    /// population without an outage has none.
    pub source_anomalies: u64,
}

impl Report {
    pub fn false_alerts_per_1000_months(&self) -> f64 {
        1000.0 * self.false_alerts as f64 / self.steady_customer_months.max(1e-9)
    }

    /// False alerts of one signal type (`activity_decline`, `silence`) per
    /// 1,000 steady customer-months.
    pub fn false_alerts_of(&self, signal_type: &str) -> f64 {
        let n = self.false_by_type.iter().find(|(t, _)| *t == signal_type).map_or(0, |(_, n)| *n);
        1000.0 * n as f64 / self.steady_customer_months.max(1e-9)
    }

    /// The header of [`Report::grid_row`]'s table.
    pub const GRID_HEADER: &'static str = "| population (seed) | decline ≤ 14 d, ≥ 2/day, ≥ 70 % (bar ≥ 90 %) | median | all declines ≤ 14 d | silence ≤ 14 d, ≥ 1/day | silence ≤ 21 d, ≥ 0.5/day | false alerts: decline (setting) | silence (setting) | total (bar ≤ 1) | steady customer-months |\n|---|---|---|---|---|---|---|---|---|---|";

    /// One markdown row of the grid: the bars, and each false-alert figure
    /// beside its setting.
    pub fn grid_row(&self) -> String {
        let share = |r: &Recall| format!("{:.1} %", 100.0 * r.rate());
        let setting = |t: &str| self.settings.iter().find(|(s, _)| *s == t).map_or("–".into(), |(_, v)| format!("{v}"));
        let median = self.decline.median_delay_days.map_or("–".into(), |m| format!("{m:.1} d"));
        format!(
            "| {} ({}) | {} ({}/{}) | {median} | {} | {} | {} | {:.2} ({}) | {:.2} ({}) | {:.2} | {:.0} |",
            self.variant,
            self.seed,
            share(&self.decline),
            self.decline.caught,
            self.decline.customers,
            share(&self.all_declines),
            share(&self.silence_1),
            share(&self.silence_05),
            self.false_alerts_of("activity_decline"),
            setting("activity_decline"),
            self.false_alerts_of("silence"),
            setting("silence"),
            self.false_alerts_per_1000_months(),
            self.steady_customer_months,
        )
    }
}

/// How one persona's changes were caught.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: &'static str,
    pub customers: usize,
    /// Caught by any decline, silence or dormancy alert after the change.
    pub caught: usize,
    pub within_14_days: usize,
    /// Median days from the change to the first alert, of those caught.
    pub median_delay_days: Option<f64>,
}

/// Collects the alerts that matter for scoring.
#[derive(Debug)]
pub struct Scorer<'a> {
    truth: &'a [Truth],
    /// Per customer: delay in days of the first catching `opened` after the change.
    delay: Vec<Option<f64>>,
    false_alerts: [u64; MAX_SIGNAL_TYPES],
    source_anomalies: u64,
}

impl<'a> Scorer<'a> {
    pub fn new(truth: &'a [Truth]) -> Scorer<'a> {
        Scorer { truth, delay: vec![None; truth.len()], false_alerts: [0; MAX_SIGNAL_TYPES], source_anomalies: 0 }
    }

    /// Takes one output record into account.
    pub fn observe(&mut self, r: &OutputRecord) {
        self.source_anomalies += u64::from(r.header("ce_type") == Some(care_core::render::SOURCE_ANOMALY_CE_TYPE));
        let Some(t) = r.header("ce_type").and_then(signal_type_of) else { return };
        let opened = r.status() == Some(Status::Opened);
        let Some(i) = r.key.as_deref().and_then(customer_index) else { return };
        if opened {
            self.opened(i, t, r.trigger_ms);
        }
    }

    /// An episode of type `t` opened for customer `i` at `at_ms`.
    pub fn opened(&mut self, i: u32, t: SignalType, at_ms: i64) {
        let (catches, is_false) = scoring(t);
        let Some(truth) = self.truth.get(i as usize) else { return };
        match truth.change_day {
            Some(day) if catches => {
                let delay = (at_ms - START_MS - i64::from(day) * DAY_MS) as f64 / DAY_MS as f64;
                let d = &mut self.delay[i as usize];
                if delay >= 0.0 && d.is_none() {
                    *d = Some(delay);
                }
            }
            None if is_false && truth.class == Class::Steady => {
                self.false_alerts[t.idx()] += u64::from(at_ms >= START_MS + i64::from(WARMUP_DAYS) * DAY_MS);
            }
            _ => {}
        }
    }

    /// The figures, for `events` events of `variant`.
    pub fn report(&self, variant: &Variant, events: u64, bytes_per_customer: f64) -> Report {
        let steady = self.truth.iter().filter(|t| t.class == Class::Steady).count();
        // The days simulated: fewer than planned if a run was interrupted.
        let scored_days = f64::from(variant.days.saturating_sub(WARMUP_DAYS));
        let silent = |t: &Truth| matches!(t.class, Class::Silent | Class::Returning { .. });
        let decline = self.cohort(|t| t.rate >= 2.0 && matches!(t.class, Class::Declining { drop } if drop >= 0.7));
        Report {
            variant: variant.name.to_string(),
            seed: variant.seed,
            customers: variant.customers,
            days: variant.days,
            events,
            bytes_per_customer,
            steady_customer_months: steady as f64 * scored_days / MONTH_DAYS,
            false_alerts: self.false_alerts.iter().sum(),
            false_by_type: care_core::detect::registry::signal_types().iter().copied().filter(|t| scoring(*t).1).map(|t| (t.as_str(), self.false_alerts[t.idx()])).collect(),
            decline: Recall::of(&decline, 14.0),
            all_declines: Recall::of(&self.cohort(|t| matches!(t.class, Class::Declining { .. })), 14.0),
            silence_1: Recall::of(&self.cohort(|t| t.rate >= 1.0 && silent(t)), 14.0),
            silence_05: Recall::of(&self.cohort(|t| t.rate >= 0.5 && silent(t)), 21.0),
            curve: self.curve(),
            settings: Vec::new(),
            source_anomalies: self.source_anomalies,
        }
    }

    /// Per changing persona (declining, silent, returning): caught, how soon.
    pub fn by_class(&self) -> Vec<ClassScore> {
        let classes: [(&'static str, fn(&Class) -> bool); 3] = [
            ("declining", |c| matches!(c, Class::Declining { .. })),
            ("silent", |c| matches!(c, Class::Silent)),
            ("returning", |c| matches!(c, Class::Returning { .. })),
        ];
        classes
            .into_iter()
            .map(|(class, is)| {
                let delays = self.cohort(|t| is(&t.class));
                let all = Recall::of(&delays, f64::INFINITY);
                let within = Recall::of(&delays, 14.0);
                ClassScore { class, customers: delays.len(), caught: all.caught, within_14_days: within.caught, median_delay_days: all.median_delay_days }
            })
            .collect()
    }

    fn cohort(&self, keep: impl Fn(&Truth) -> bool) -> Vec<Option<f64>> {
        self.truth.iter().zip(&self.delay).filter(|(t, _)| keep(t)).map(|(_, d)| *d).collect()
    }

    fn curve(&self) -> Vec<CurveRow> {
        const RATES: [(f64, f64); 5] = [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, f64::INFINITY)];
        // Half-open bands; drops are drawn from [0.5, 0.95], silence is 1.
        const DROPS: [(f64, f64); 4] = [(0.5, 0.7), (0.7, 0.9), (0.9, 0.951), (1.0, 1.001)];
        let drop_of = |t: &Truth| match t.class {
            Class::Declining { drop } => Some(drop),
            Class::Silent | Class::Returning { .. } => Some(1.0),
            Class::Steady | Class::Unhappy => None,
        };
        let mut rows = Vec::new();
        for rates in RATES {
            for drops in DROPS {
                let delays = self.cohort(|t| {
                    (rates.0..rates.1).contains(&t.rate) && drop_of(t).is_some_and(|d| (drops.0..drops.1).contains(&d))
                });
                let recall = CURVE_DAYS.iter().map(|&limit| Recall::of(&delays, limit)).collect();
                rows.push(CurveRow { rates, drops, recall });
            }
        }
        rows
    }
}

/// Runs `variant` through the engine with `cfg` on `partitions` tasks and
/// scores the alerts. `progress` hears (day, events so far) after each day.
pub fn simulate(cfg: &Config, variant: &Variant, partitions: i32, mut progress: impl FnMut(u32, u64)) -> Report {
    let rules = Arc::new(Rules::new(cfg));
    let source = rules.canonical_source();
    let mut engine = Routed::new(rules, partitions);
    let mut population = Population::new(variant.clone());
    let truth = population.truth.clone();
    let mut scorer = Scorer::new(&truth);
    let ids: Vec<String> = (0..variant.customers).map(customer_id).collect();
    let (mut day_events, mut out) = (Vec::new(), Vec::new());
    let mut ev = Event { customer_id: String::new(), kind: care_core::event::Kind::Click, ts_ms: 0, amount: None, csat: None, nps: None, event_id: None };
    let mut events = 0u64;
    for day in 0..variant.days {
        population.day_events(day, &mut day_events);
        let now = START_MS + i64::from(day + 1) * DAY_MS;
        for e in &day_events {
            fill(&mut ev, e, &ids[e.customer as usize]);
            let input = Input { source, partition: 0, offset: events as i64, key: None, payload: b"" };
            engine.fold(&input, &ev, &mut out);
            events += 1;
        }
        // The day is over for everyone: timers due by its end fire.
        engine.advance(now, &mut out);
        out.drain(..).for_each(|r| scorer.observe(&r));
        progress(day + 1, events);
    }
    let bytes: usize = engine.tasks().iter().map(|t| t.state_bytes()).sum();
    let mut report = scorer.report(variant, events, bytes as f64 / engine.customer_count().max(1) as f64);
    let d = &cfg.detect;
    report.settings = vec![
        (ACTIVITY_DECLINE.as_str(), d.decline.false_alerts_per_1000_customer_months),
        (SILENCE.as_str(), d.silence.false_alerts_per_1000_customer_months),
    ];
    report
}

/// Copies a simulated event into `ev`, reusing its id buffer.
pub fn fill(ev: &mut Event, e: &SimEvent, id: &str) {
    ev.customer_id.clear();
    ev.customer_id.push_str(id);
    (ev.kind, ev.ts_ms, ev.amount, ev.csat, ev.nps) = (e.kind, e.ts_ms, e.amount, e.csat, e.nps);
}

fn pct(r: &Recall) -> String {
    let median = r.median_delay_days.map_or("–".into(), |m| format!("{m:.1} d"));
    format!("{:.1} % ({}/{}), median {median}", 100.0 * r.rate(), r.caught, r.customers)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "### {} (seed {}, {} customers, {} days, {} events, {:.0} B of state per customer)\n",
            self.variant, self.seed, self.customers, self.days, self.events, self.bytes_per_customer
        )?;
        writeln!(f, "| measure | figure |\n|---|---|")?;
        let by_type: Vec<String> = self.false_by_type.iter().map(|(t, n)| format!("{t} {n}")).collect();
        writeln!(
            f,
            "| false alerts per 1,000 steady customer-months | {:.2} ({} in {:.0} months: {}) |",
            self.false_alerts_per_1000_months(),
            self.false_alerts,
            self.steady_customer_months,
            by_type.join(", ")
        )?;
        writeln!(f, "| decline recall ≤ 14 d (rate ≥ 2/day, drop ≥ 70 %) | {} |", pct(&self.decline))?;
        writeln!(f, "| all declines recall ≤ 14 d | {} |", pct(&self.all_declines))?;
        writeln!(f, "| silence recall ≤ 14 d (rate ≥ 1/day) | {} |", pct(&self.silence_1))?;
        writeln!(f, "| silence recall ≤ 21 d (rate ≥ 0.5/day) | {} |", pct(&self.silence_05))?;
        writeln!(f, "\nRecall by base rate and drop, within 7 / 14 / 21 / 28 days:\n")?;
        writeln!(f, "| events/day | drop | customers | ≤ 7 d | ≤ 14 d | ≤ 21 d | ≤ 28 d | median (≤ 28 d) |\n|---|---|---|---|---|---|---|---|")?;
        for row in &self.curve {
            let drops = if row.drops.0 >= 1.0 { "silent".to_string() } else { format!("{:.0}–{:.0} %", row.drops.0 * 100.0, row.drops.1 * 100.0) };
            let rates = if row.rates.1.is_finite() { format!("{}–{}", row.rates.0, row.rates.1) } else { format!("≥ {}", row.rates.0) };
            let cells: Vec<String> = row.recall.iter().map(|r| format!("{:.0} %", 100.0 * r.rate())).collect();
            let median = row.recall.last().and_then(|r| r.median_delay_days).map_or("–".into(), |m| format!("{m:.1} d"));
            writeln!(f, "| {rates} | {drops} | {} | {} | {median} |", row.recall[0].customers, cells.join(" | "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn truth(class: Class, rate: f64, change_day: Option<u32>) -> Truth {
        Truth { class, rate, change_day }
    }

    #[test]
    fn scoring_known_answer() {
        let t = [
            truth(Class::Steady, 1.0, None),
            truth(Class::Steady, 3.0, None),
            truth(Class::Declining { drop: 0.8 }, 3.0, Some(100)),
            truth(Class::Declining { drop: 0.9 }, 2.5, Some(90)),
            truth(Class::Silent, 1.5, Some(80)),
            truth(Class::Declining { drop: 0.6 }, 3.0, Some(80)),
        ];
        let day = |d: f64| START_MS + (d * DAY as f64) as i64;
        let mut s = Scorer::new(&t);
        s.opened(0, ACTIVITY_DECLINE, day(20.0)); // in the warm-up: not counted
        s.opened(0, ACTIVITY_DECLINE, day(50.0)); // false
        s.opened(1, DORMANT, day(60.0)); // dormancy is not a false alert
        s.opened(1, ACTIVITY_DECLINE, day(61.0)); // false
        s.opened(2, ACTIVITY_DECLINE, day(99.0)); // before the change: not a catch
        s.opened(2, ACTIVITY_DECLINE, day(106.0)); // caught after 6 days
        s.opened(2, ACTIVITY_DECLINE, day(107.0)); // only the first counts
        s.opened(3, care_core::detect::dormancy::REACTIVATED, day(95.0)); // not a catch
        s.opened(3, ACTIVITY_DECLINE, day(105.0)); // 15 days: outside 14
        s.opened(4, DORMANT, day(90.5)); // silence caught by dormancy in 10.5 days
        let r = s.report(&Variant::reference(1, 6, 180), 0, 0.0);
        assert_eq!(r.false_alerts, 2);
        assert!((r.steady_customer_months - 2.0 * 145.0 / MONTH_DAYS).abs() < 1e-9);
        assert_eq!(r.decline, Recall { customers: 2, caught: 1, median_delay_days: Some(6.0) });
        assert_eq!(r.all_declines, Recall { customers: 3, caught: 1, median_delay_days: Some(6.0) });
        let per_type = 1000.0 / r.steady_customer_months;
        assert!((r.false_alerts_of("activity_decline") - 2.0 * per_type).abs() < 1e-9 && r.false_alerts_of("silence") == 0.0);
        assert_eq!(r.silence_1, Recall { customers: 1, caught: 1, median_delay_days: Some(10.5) });
        let row = r.curve.iter().find(|c| c.rates == (2.0, 4.0) && c.drops.0 == 0.9).unwrap();
        assert_eq!((row.recall[1].caught, row.recall[3].caught, row.recall[3].customers), (0, 1, 1));
        let mid = r.curve.iter().find(|c| c.rates == (2.0, 4.0) && c.drops.0 == 0.5).unwrap();
        assert_eq!(mid.recall[0].customers, 1, "a 60 % drop is in the 50–70 band");
        let total: usize = r.curve.iter().map(|c| c.recall[0].customers).sum();
        assert_eq!(total, 4, "every changed customer with rate ≥ 0.25 in exactly one band");
    }

    #[test]
    fn a_simulation_is_deterministic_and_counts_every_event() {
        let cfg = Config::parse("", "t").unwrap();
        let v = Variant::reference(3, 600, 110);
        let a = simulate(&cfg, &v, 2, |_, _| {});
        let b = simulate(&cfg, &v, 3, |_, _| {});
        // Hash index capacity differs with the partition count, nothing else.
        assert_eq!(Report { bytes_per_customer: 0.0, ..a.clone() }, Report { bytes_per_customer: 0.0, ..b }, "partitions do not change decisions");
        let mut p = Population::new(v.clone());
        let mut day = Vec::new();
        let events: usize = (0..v.days).map(|d| { p.day_events(d, &mut day); day.len() }).sum();
        assert_eq!(a.events, events as u64);
        assert!(a.decline.customers > 0 && a.silence_05.customers > 0);
    }
}
