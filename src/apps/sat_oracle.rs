//! The oracle bound of the satisfaction signals (issue 16): what the best
//! detector of each kind could do on the satisfaction population, scored
//! by the same truth and definitions as the real detectors
//! ([`super::satisfaction`]), so a report shows beside each real detector
//! what one that knows the truth catches at the same false alerts. CUSUM
//! is the optimal test for a known change (Lorden, Moustakides); here the
//! size of the change is drawn and the bar is recall within days, so it is
//! the best of its kind, close to but not proven the best of all.
//!
//! The oracle sees the same answers and tickets as the engine, and knows
//! what the generator drew for each customer except the change: the
//! satisfied share before any fall, the ticket rate before any surge and
//! the busy days (2 % of days at 3–6×), and the population's changes (a
//! fall to 0–20 % satisfied, a surge of 3–8×). It does not know whether or
//! when a customer changes. On each customer it runs a CUSUM, S = max(0,
//! S + log-likelihood ratio of the changed vs the unchanged customer):
//! - falling CSAT: per answer, satisfied with chance [`OracleParams::fall_to`]
//!   (0.1, the fall's mean; or 0.05 or 0.2) against the customer's own share;
//! - ticket surge: per day's ticket count, the surge's distribution (a
//!   factor uniform in [`OracleParams::surge`], 3–8×; or 3×, 4× or 5×, busy
//!   days included) against the customer's own, both Poisson mixtures; the
//!   count of a day is judged at its end.
//!
//! An episode opens when S reaches the customer's threshold and closes
//! when S is back at 0 (the evidence of a change is gone), as the real
//! detectors' episodes open and resolve; or (the other [`Ending`]) S starts
//! again from 0 after each alert, each alert its own episode. False alerts
//! are the `opened` after the 35-day warm-up on steady customers, and a
//! changed customer is caught by the first `opened` on or after the start
//! of the change day (an episode open since before the change does not
//! count, as for the real detectors).
//!
//! A customer's threshold is h + c × ln(their rate / a reference)
//! ([`RATE_WEIGHTS`]); ticket surge opens only on customers at a ticket a
//! week or more, the bar's cohort (the oracle knows their rate). h is
//! calibrated per cell on the cell's own steady customers: the lowest h
//! whose false alerts, and those of every higher h, are within the budget
//! (or a share of it, [`UNDER`]). At each budget the oracle takes the
//! assumed change, ending, c and share that catch the most of the cohort
//! within 14 days, and the budget of falling CSAT and ticket surge
//! together is split between them to maximise the lower of the two recalls
//! ([`OracleReport::best`]). All of it in sample, on the cell scored: if
//! anything that flatters the oracle, which is what a bound wants.

use serde::Serialize;

use super::population::{SimEvent, DAY_MS, START_MS};
use super::quality::{Recall, MONTH_DAYS, WARMUP_DAYS};
use super::satisfaction::{SatClass, SatTruth, SatVariant};
use care_core::event::Kind;

/// False alerts of falling CSAT and ticket surge together per 1,000 steady
/// customer-months, the bar's first.
pub const BUDGETS: [f64; 3] = [0.5, 5.0, 50.0];
/// Recall within these many days of the change, the bar's first.
pub const WITHIN: [f64; 3] = [14.0, 21.0, 28.0];
/// Shares of the budget tried for falling CSAT (the rest to ticket surge).
const SPLITS: usize = 40;
/// Weights c of a customer's rate in their threshold, h + c × ln(rate /
/// reference) (answers: the population's mean; tickets: one a week): the
/// more a customer answers or raises tickets, the more often a common h
/// opens on them by chance and the more evidence a change brings, so a
/// higher one can cost little recall. The best at each budget is taken.
pub const RATE_WEIGHTS: [f64; 3] = [0.0, 0.5, 1.0];
/// Shares of a budget tried: a lower threshold can catch fewer changes
/// within the days (more episodes open since before the change), and a
/// detector may spend less than its budget.
const UNDER: [f64; 5] = [1.0, 0.7, 0.5, 0.3, 0.1];
/// Busy days: share of days and the range of their factor (the generator's).
const BUSY: (f64, (f64, f64)) = (0.02, (3.0, 6.0));

/// What the oracle may assume of a change: it tries each and takes the
/// one that catches the most at each budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OracleParams {
    /// Satisfied shares after a fall (the generator's 0–20 %: mean 0.1).
    pub fall_to: Vec<f64>,
    /// Ranges of the surge factor, uniform (the generator's 3–8×; a
    /// single factor: the same at both ends).
    pub surge: Vec<(f64, f64)>,
}

impl Default for OracleParams {
    fn default() -> Self {
        OracleParams { fall_to: vec![0.1, 0.05, 0.2], surge: vec![(3.0, 8.0), (3.0, 3.0), (4.0, 4.0), (5.0, 5.0)] }
    }
}

impl OracleParams {
    /// `fall_to=0.1/0.2,surge=3-8/4` style (`CARE_QUALITY_ORACLE`): the
    /// alternatives tried; a missing key keeps the defaults.
    pub fn parse(s: &str) -> Option<OracleParams> {
        let mut p = OracleParams::default();
        for kv in s.split(',').filter(|kv| !kv.trim().is_empty()) {
            let (k, v) = kv.split_once('=')?;
            match k.trim() {
                "fall_to" => p.fall_to = v.split('/').map(|x| x.trim().parse().ok()).collect::<Option<_>>()?,
                "surge" => {
                    p.surge = v
                        .split('/')
                        .map(|x| {
                            let (lo, hi) = x.split_once('-').unwrap_or((x, x));
                            Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
                        })
                        .collect::<Option<_>>()?
                }
                _ => return None,
            }
        }
        (!p.fall_to.is_empty() && !p.surge.is_empty()).then_some(p)
    }
}

/// A CUSUM path: after each step, max(0, the last + its log-likelihood ratio).
pub fn cusum(llr: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut s = 0.0f64;
    llr.into_iter()
        .map(|l| {
            s = (s + l).max(0.0);
            s
        })
        .collect()
}

/// The steps at which an episode opens at threshold `h`: S reaches `h`
/// with no episode open; the episode closes when S is back at 0.
pub fn openings(path: &[f64], h: f64) -> impl Iterator<Item = usize> + '_ {
    let mut open = false;
    path.iter().enumerate().filter_map(move |(i, &s)| {
        if open {
            open = s > 0.0;
            None
        } else if s >= h {
            open = true;
            Some(i)
        } else {
            None
        }
    })
}

/// The steps at which a CUSUM over `llr` that starts again from 0 after
/// each alert alerts at threshold `h` (each alert its own episode).
pub fn reset_openings(llr: &[f64], h: f64) -> impl Iterator<Item = usize> + '_ {
    let mut s = 0.0f64;
    llr.iter().enumerate().filter_map(move |(i, &l)| {
        s = (s + l).max(0.0);
        (s >= h).then(|| s = 0.0).map(|()| i)
    })
}

/// Each excursion of `path` (a stretch between zeros) that reaches a
/// scored step, as (its highest value before the first scored step, its
/// highest from it): at threshold h it opens a scored episode when the
/// first < h ≤ the second. `scored` is non-decreasing in the step.
pub fn excursions(path: &[f64], scored: impl Fn(usize) -> bool) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let (mut before, mut after) = (0.0f64, None::<f64>);
    for (i, &s) in path.iter().enumerate() {
        if s <= 0.0 {
            out.extend(after.take().map(|a| (before, a)));
            before = 0.0;
        } else if scored(i) {
            after = Some(after.map_or(s, |a| a.max(s)));
        } else {
            before = before.max(s);
        }
    }
    out.extend(after.map(|a| (before, a)));
    out
}

/// Scored episodes against their threshold: for each h at which the count
/// changes (highest first), the most episodes any threshold at or above it
/// opens.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    steps: Vec<(f64, u64)>,
}

impl Calibration {
    pub fn new(excursions: &[(f64, f64)]) -> Calibration {
        // At h = v the excursions with after == v come in, those with
        // before == v go out (they opened before the scored steps).
        let mut ends: Vec<(f64, i64)> = excursions.iter().filter(|(b, a)| a > b).flat_map(|&(b, a)| [(a, 1), (b, -1)]).collect();
        ends.sort_by(|x, y| y.0.total_cmp(&x.0));
        let (mut n, mut most, mut steps) = (0i64, 0u64, Vec::new());
        let mut i = 0;
        while i < ends.len() {
            let v = ends[i].0;
            while i < ends.len() && ends[i].0 == v {
                n += ends[i].1;
                i += 1;
            }
            most = most.max(n.max(0) as u64);
            steps.push((v, most));
        }
        Calibration { steps }
    }

    /// The lowest threshold at which this and every higher threshold open
    /// at most `allowed` scored episodes.
    pub fn threshold(&self, allowed: f64) -> f64 {
        match self.steps.iter().find(|(_, most)| *most as f64 > allowed) {
            // Just above the highest value with too many.
            Some(&(v, _)) => v + v.abs() * 1e-12 + 1e-12,
            // Never too many: below every end, any threshold will do.
            None => self.steps.iter().rev().find(|(v, _)| v.is_finite()).map_or(1e-12, |&(v, _)| v - 1.0),
        }
    }

    /// Scored episodes at threshold `h` (counted, not the running most).
    pub fn count_at(excursions: &[(f64, f64)], h: f64) -> u64 {
        excursions.iter().filter(|&&(b, a)| b < h && h <= a).count() as u64
    }
}

/// Ln of the Poisson probability of `n` at mean `mu`.
fn ln_poisson(n: u32, mu: f64) -> f64 {
    let ln_fact: f64 = (2..=n).map(|k| f64::from(k).ln()).sum();
    f64::from(n) * mu.max(1e-300).ln() - mu - ln_fact
}

/// Ln of the chance of `n` tickets in a day at mean `rate` (before busy
/// days), busy days included: a mixture over the busy factor, by midpoints.
fn ln_day(n: u32, rate: f64) -> f64 {
    const POINTS: usize = 12;
    let (share, (lo, hi)) = BUSY;
    let busy = (0..POINTS).map(|k| (ln_poisson(n, rate * (lo + (hi - lo) * (k as f64 + 0.5) / POINTS as f64))).exp()).sum::<f64>() / POINTS as f64;
    ((1.0 - share) * ln_poisson(n, rate).exp() + share * busy).max(1e-300).ln()
}

/// Per day's ticket count, the log-likelihood ratio of a surge of a factor
/// uniform in `surge` against none, for a customer at `rate` a day.
#[derive(Debug, Clone)]
pub struct TicketLlr {
    rate: f64,
    surge: (f64, f64),
    table: Vec<f64>,
}

impl TicketLlr {
    pub fn new(rate: f64, surge: (f64, f64)) -> TicketLlr {
        TicketLlr { rate: rate.max(1e-12), surge, table: Vec::new() }
    }

    pub fn llr(&mut self, n: u32) -> f64 {
        const POINTS: usize = 25;
        while self.table.len() <= n as usize {
            let k = self.table.len() as u32;
            let (lo, hi) = self.surge;
            let changed = (0..POINTS).map(|j| ln_day(k, self.rate * (lo + (hi - lo) * (j as f64 + 0.5) / POINTS as f64)).exp()).sum::<f64>() / POINTS as f64;
            self.table.push(changed.max(1e-300).ln() - ln_day(k, self.rate));
        }
        self.table[n as usize]
    }
}

/// Per answer, the log-likelihood ratio of a share `to` against `from`.
pub fn answer_llr(satisfied: bool, from: f64, to: f64) -> f64 {
    let (from, to) = (from.clamp(1e-9, 1.0 - 1e-9), to.clamp(1e-9, 1.0 - 1e-9));
    if satisfied { (to / from).ln() } else { ((1.0 - to) / (1.0 - from)).ln() }
}

/// What the oracle sees of a population: per customer its answers (time,
/// satisfied) and its tickets per day.
#[derive(Debug, Clone)]
pub struct OracleObs {
    days: u32,
    answers: Vec<Vec<(i64, bool)>>,
    tickets: Vec<u16>,
}

impl OracleObs {
    pub fn new(customers: u32, days: u32) -> OracleObs {
        OracleObs { days, answers: vec![Vec::new(); customers as usize], tickets: vec![0; customers as usize * days as usize] }
    }

    /// Takes one generated event (CSAT 4–5 is a satisfied answer).
    pub fn input(&mut self, e: &SimEvent) {
        let day = (e.ts_ms - START_MS).div_euclid(DAY_MS);
        let i = e.customer as usize;
        if let Some(c) = e.csat {
            if let Some(a) = self.answers.get_mut(i) {
                a.push((e.ts_ms, c >= 4));
            }
        }
        if e.kind == Kind::Ticket && (0..i64::from(self.days)).contains(&day) {
            if let Some(n) = self.tickets.get_mut(i * self.days as usize + day as usize) {
                *n = n.saturating_add(1);
            }
        }
    }
}

/// One customer's CUSUM: when each step is decided, its log-likelihood
/// ratio and the path.
#[derive(Debug, Clone, Default)]
struct Path {
    at_ms: Vec<i64>,
    llr: Vec<f64>,
    s: Vec<f64>,
}

impl Path {
    fn new(at_ms: Vec<i64>, llr: Vec<f64>) -> Path {
        let s = cusum(llr.iter().copied());
        Path { at_ms, llr, s }
    }

    /// The steps at which it opens at threshold `h` (at least a hair above 0).
    fn openings(&self, ending: Ending, h: f64) -> Box<dyn Iterator<Item = usize> + '_> {
        match ending {
            Ending::AtZero => Box::new(openings(&self.s, h.max(1e-12))),
            Ending::Reset => Box::new(reset_openings(&self.llr, h.max(1e-12))),
        }
    }

    /// Days from `from_ms` to the first opening at or after it.
    fn delay(&self, ending: Ending, h: f64, from_ms: i64) -> Option<f64> {
        self.openings(ending, h).map(|i| self.at_ms[i]).find(|&t| t >= from_ms).map(|t| (t - from_ms) as f64 / DAY_MS as f64)
    }
}

/// How the oracle's episode ends: when the CUSUM is back at 0, or at once
/// (the CUSUM starts again from 0 after each alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ending {
    AtZero,
    Reset,
}

/// The thresholds the reset CUSUM is calibrated on (its alerts depend on
/// the threshold, so they are counted at each).
fn reset_grid() -> impl Iterator<Item = f64> {
    (0..=200).map(|k| -10.0 + 0.25 * f64::from(k))
}

/// One signal's oracle over a population, each customer's threshold the
/// common h plus their own offset (infinite: never opens).
#[derive(Debug)]
struct SignalOracle {
    /// Scored episodes' excursions over the steady customers, less their
    /// offsets: at h, (lower, upper] holds h when one opens.
    excursions: Vec<(f64, f64)>,
    calibration: Calibration,
    /// The reset CUSUM's scored alerts on the steady customers at each h of
    /// [`reset_grid`].
    reset_counts: Vec<(f64, u64)>,
    /// Changed customers of the signal's change: (index, change ms, path, offset).
    changed: Vec<(usize, i64, Path, f64)>,
}

impl SignalOracle {
    fn new(paths: &[Path], truth: &[SatTruth], offset: impl Fn(&SatTruth) -> f64, of_signal: impl Fn(&SatClass) -> bool) -> SignalOracle {
        let warmup = START_MS + i64::from(WARMUP_DAYS) * DAY_MS;
        let (mut excursions_all, mut changed, mut steady) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (p, t)) in paths.iter().zip(truth).enumerate() {
            let o = offset(t);
            match (t.class, t.change_day) {
                (SatClass::Steady, _) if o.is_finite() => {
                    // An excursion all after the warm-up opens at any h + o
                    // down to a hair above 0: no lower end.
                    let shifted = excursions(&p.s, |k| p.at_ms[k] >= warmup).into_iter().map(|(b, a)| (if b > 0.0 { b - o } else { f64::NEG_INFINITY }, a - o));
                    excursions_all.extend(shifted);
                    steady.push((p, o));
                }
                (c, Some(day)) if of_signal(&c) => changed.push((i, START_MS + i64::from(day) * DAY_MS, p.clone(), o)),
                _ => {}
            }
        }
        let calibration = Calibration::new(&excursions_all);
        let reset_counts = reset_grid()
            .map(|h| {
                let n = steady.iter().map(|(p, o)| p.openings(Ending::Reset, h + o).filter(|&k| p.at_ms[k] >= warmup).count() as u64).sum();
                (h, n)
            })
            .collect();
        SignalOracle { excursions: excursions_all, calibration, reset_counts, changed }
    }

    /// The threshold of `ending` at `allowed` scored false alerts, and how
    /// many it opens.
    fn threshold(&self, ending: Ending, allowed: f64) -> (f64, u64) {
        match ending {
            Ending::AtZero => {
                let h = self.calibration.threshold(allowed);
                (h, Calibration::count_at(&self.excursions, h))
            }
            // The lowest h of the grid at which it and every higher one
            // are within; none: never.
            Ending::Reset => {
                let over = self.reset_counts.iter().rposition(|&(_, n)| n as f64 > allowed);
                match over.map_or(Some(0), |k| (k + 1 < self.reset_counts.len()).then_some(k + 1)) {
                    Some(k) => self.reset_counts[k],
                    None => (f64::INFINITY, 0),
                }
            }
        }
    }

    /// Delays of the cohort `keep` (by customer index) at threshold `h`.
    fn delays(&self, ending: Ending, h: f64, keep: impl Fn(usize) -> bool) -> Vec<Option<f64>> {
        self.changed.iter().filter(|(i, ..)| keep(*i)).map(|(_, from, p, o)| if o.is_finite() && h.is_finite() { p.delay(ending, h + o, *from) } else { None }).collect()
    }
}

/// One budget's figures for one signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OracleAt {
    /// Its share of the budget (false alerts per 1,000 steady customer-months).
    pub budget: f64,
    /// The change it assumed (the best at this budget): the share after a
    /// fall (twice), or the surge factor's range.
    pub assumed: (f64, f64),
    /// How its episodes end (the better at this budget).
    pub ending: Ending,
    /// The weighting of the customer's rate in their threshold (c of
    /// [`RATE_WEIGHTS`], the best at this budget).
    pub rate_weight: f64,
    /// The common h; a customer's is h + c × ln(their rate / a reference).
    /// The lowest within the budget or within a share of it ([`UNDER`]):
    /// one that spends less can catch more, and the best is taken.
    pub threshold: f64,
    /// Measured false alerts per 1,000 steady customer-months at it.
    pub false_per_1000: f64,
    /// The bar's cohort, within each of [`WITHIN`].
    pub recall: Vec<Recall>,
}

/// The oracle's figures of one population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OracleReport {
    pub variant: String,
    pub seed: u64,
    pub params: OracleParams,
    pub steady_customer_months: f64,
    /// Per budget of [`BUDGETS`], half each: falling CSAT, then ticket surge.
    pub even: Vec<[OracleAt; 2]>,
    /// Per budget, the split that maximises the lower 14-day recall.
    pub best: Vec<[OracleAt; 2]>,
    /// At the real detectors' own false alerts (when given): what the
    /// best detector catches at the same cost.
    pub matched: Option<[OracleAt; 2]>,
    /// At the first budget's best split, within 14 days: falling CSAT on
    /// customers with at least 5 answers in the 14 days, ticket surge on
    /// surges of 5× or more (from a ticket a week or more).
    pub csat_5_answers: Recall,
    pub surge_5x: Recall,
}

/// The oracle's figures for `truth`, from what it saw in `obs`.
///
/// `matched`: the real detectors' false alerts per 1,000 steady
/// customer-months (falling CSAT, ticket surge), at which the oracle's
/// recall is given too ([`OracleReport::matched`]).
pub fn score(variant: &SatVariant, truth: &[SatTruth], obs: &OracleObs, params: &OracleParams, matched: Option<[f64; 2]>) -> OracleReport {
    let day_end = |d: u32| START_MS + i64::from(d + 1) * DAY_MS;
    let csat_paths = |to: f64| -> Vec<Path> {
        truth.iter().zip(&obs.answers).map(|(t, a)| Path::new(a.iter().map(|x| x.0).collect(), a.iter().map(|&(_, sat)| answer_llr(sat, t.satisfied, to)).collect())).collect()
    };
    let days = obs.days as usize;
    let ticket_paths = |surge: (f64, f64)| -> Vec<Path> {
        truth
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // Customers under a ticket a week never open (below): no path.
                if t.ticket_rate * 7.0 < 1.0 {
                    return Path::default();
                }
                let mut llr = TicketLlr::new(t.ticket_rate, surge);
                let counts = &obs.tickets[i * days..(i + 1) * days];
                Path::new((0..obs.days).map(day_end).collect(), counts.iter().map(|&n| llr.llr(u32::from(n))).collect())
            })
            .collect()
    };
    // The cohorts: answers in the 14 days from the change; a ticket a week.
    let answers_after: Vec<usize> = truth
        .iter()
        .zip(&obs.answers)
        .map(|(t, a)| {
            t.change_day.map_or(0, |c| {
                let from = START_MS + i64::from(c) * DAY_MS;
                a.iter().filter(|x| (from..from + 14 * DAY_MS).contains(&x.0)).count()
            })
        })
        .collect();
    let weekly = |i: usize| truth[i].ticket_rate * 7.0 >= 1.0;
    let csat_cohort = |i: usize| answers_after[i] >= 3;
    // Per customer threshold offsets: c × ln of the rate against a
    // reference, for each c in RATE_WEIGHTS; ticket surge opens only on
    // customers at a ticket a week or more (the bar's cohort), whose
    // rate the oracle knows.
    let mean_answers = variant.answers_per_month / MONTH_DAYS;
    let falling = |c: &SatClass| matches!(c, SatClass::FallingCsat { .. });
    let surging = |c: &SatClass| matches!(c, SatClass::TicketSurge { .. });
    // Per assumption and weight: (assumption, c, oracle).
    let mut csat: Vec<((f64, f64), f64, SignalOracle)> = Vec::new();
    for &to in &params.fall_to {
        let paths = csat_paths(to);
        csat.extend(RATE_WEIGHTS.iter().map(|&w| ((to, to), w, SignalOracle::new(&paths, truth, |t| w * (t.answer_rate / mean_answers).max(1e-9).ln(), falling))));
    }
    let mut tickets: Vec<((f64, f64), f64, SignalOracle)> = Vec::new();
    for &surge in &params.surge {
        let paths = ticket_paths(surge);
        let offset = |w: f64| move |t: &SatTruth| if t.ticket_rate * 7.0 >= 1.0 { w * (t.ticket_rate * 7.0).ln() } else { f64::INFINITY };
        tickets.extend(RATE_WEIGHTS.iter().map(|&w| (surge, w, SignalOracle::new(&paths, truth, offset(w), surging))));
    }
    let steady = truth.iter().filter(|t| t.class == SatClass::Steady).count();
    let months = steady as f64 * f64::from(variant.days.saturating_sub(WARMUP_DAYS)) / MONTH_DAYS;
    // The best weighting at `budget` (14-day recall; ties to the first).
    let at = |oracles: &[((f64, f64), f64, SignalOracle)], budget: f64, cohort: &dyn Fn(usize) -> bool| {
        oracles
            .iter()
            .flat_map(|(a, w, o)| [Ending::AtZero, Ending::Reset].into_iter().flat_map(move |e| UNDER.iter().map(move |u| (a, w, o, e, u * budget))))
            .map(|(assumed, w, o, ending, spent)| {
                let (threshold, n) = o.threshold(ending, spent * months / 1000.0);
                let delays = o.delays(ending, threshold, cohort);
                let false_per_1000 = 1000.0 * n as f64 / months.max(1e-9);
                OracleAt { budget, assumed: *assumed, ending, rate_weight: *w, threshold, false_per_1000, recall: WITHIN.iter().map(|&d| Recall::of(&delays, d)).collect() }
            })
            .reduce(|best, x| if x.recall[0].caught > best.recall[0].caught { x } else { best })
            .expect("weights")
    };
    let pair = |b_csat: f64, b_tickets: f64| [at(&csat, b_csat, &csat_cohort), at(&tickets, b_tickets, &weekly)];
    let even: Vec<[OracleAt; 2]> = BUDGETS.iter().map(|&b| pair(b / 2.0, b / 2.0)).collect();
    let best: Vec<[OracleAt; 2]> = BUDGETS
        .iter()
        .map(|&b| {
            let lower = |p: &[OracleAt; 2]| p[0].recall[0].rate().min(p[1].recall[0].rate());
            (0..=SPLITS)
                .map(|k| {
                    let share = k as f64 / SPLITS as f64;
                    pair(b * share, b * (1.0 - share))
                })
                .max_by(|x, y| lower(x).total_cmp(&lower(y)))
                .expect("splits")
        })
        .collect();
    let matched = matched.map(|[c, t]| pair(c, t));
    let of = |all: &[((f64, f64), f64, SignalOracle)], x: &OracleAt| all.iter().position(|(a, w, _)| *a == x.assumed && *w == x.rate_weight).expect("assumption");
    let (c, t) = (&best[0][0], &best[0][1]);
    let csat_5_answers = Recall::of(&csat[of(&csat, c)].2.delays(c.ending, c.threshold, |i| answers_after[i] >= 5), WITHIN[0]);
    let surge_5x = Recall::of(
        &tickets[of(&tickets, t)].2.delays(t.ending, t.threshold, |i| weekly(i) && matches!(truth[i].class, SatClass::TicketSurge { factor } if factor >= 5.0)),
        WITHIN[0],
    );
    OracleReport { variant: variant.name.clone(), seed: variant.seed, params: params.clone(), steady_customer_months: months, even, best, matched, csat_5_answers, surge_5x }
}

/// The oracle on `variant` without the engine: the same events as
/// [`super::satisfaction::simulate`] draws (the same seed stream).
pub fn oracle_only(variant: &SatVariant, params: &OracleParams) -> OracleReport {
    let mut population = super::satisfaction::SatPopulation::new(variant.clone());
    let mut obs = OracleObs::new(variant.customers, variant.days);
    let mut day_events = Vec::new();
    for day in 0..variant.days {
        population.day_events(day, &mut day_events);
        day_events.iter().for_each(|e| obs.input(e));
    }
    score(variant, &population.truth, &obs, params, None)
}

fn pct(r: &Recall) -> String {
    if r.customers == 0 { "–".into() } else { format!("{:.1} %", 100.0 * r.rate()) }
}

impl OracleReport {
    /// The header of [`OracleReport::grid_row`]'s table.
    pub const GRID_HEADER: &'static str = "| satisfaction population (seed) | oracle falling CSAT ≤ 14 d, ≥ 3 answers, at 0.5 | oracle ticket surge ≤ 14 d, ≥ 1/week, at 0.5 | split (falling CSAT / ticket surge) | even split 0.25 / 0.25 | falling CSAT ≤ 14 / 21 / 28 d at 5 | at 50 | ticket surge ≤ 14 / 21 / 28 d at 5 | at 50 | falling CSAT ≥ 5 answers ≤ 14 d at 0.5 | surge ≥ 5× ≤ 14 d at 0.5 |\n|---|---|---|---|---|---|---|---|---|---|---|";

    /// One markdown row: budgets are false alerts of falling CSAT and ticket
    /// surge together per 1,000 steady customer-months.
    pub fn grid_row(&self) -> String {
        let b = &self.best[0];
        let e = &self.even[0];
        let curve = |p: &[OracleAt; 2], s: usize| p[s].recall.iter().map(pct).collect::<Vec<_>>().join(" / ");
        format!(
            "| {} ({}) | {} ({}/{}) | {} ({}/{}) | {:.2} / {:.2} | {} / {} | {} | {} | {} | {} | {} ({}) | {} ({}) |",
            self.variant,
            self.seed,
            pct(&b[0].recall[0]),
            b[0].recall[0].caught,
            b[0].recall[0].customers,
            pct(&b[1].recall[0]),
            b[1].recall[0].caught,
            b[1].recall[0].customers,
            b[0].budget,
            b[1].budget,
            pct(&e[0].recall[0]),
            pct(&e[1].recall[0]),
            curve(&self.best[1], 0),
            curve(&self.best[2], 0),
            curve(&self.best[1], 1),
            curve(&self.best[2], 1),
            pct(&self.csat_5_answers),
            self.csat_5_answers.customers,
            pct(&self.surge_5x),
            self.surge_5x.customers,
        )
    }
}

#[cfg(test)]
#[path = "sat_oracle_tests.rs"]
mod tests;
