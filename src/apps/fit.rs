//! `care fit`: BG/NBD and Gamma-Gamma fitted by maximum likelihood on a
//! file of order events, each customer's predictions, historic CLV and a
//! holdout check.
//!
//! Reads canonical JSON lines (or a configured source's shape), gzipped or
//! not; keeps the orders up to the holdout end (or the calibration end),
//! groups each customer's orders per calendar day in the configured
//! timezone ([`care_core::model::summary`]), fits both models on the
//! calibration period and writes one JSON report. Customers whose first
//! order falls after the calibration end are not yet customers there and
//! are left out, as lifetimes' `calibration_and_holdout_data` does.
//! `--customers` lines come in the order customers first appear in the input.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use care_core::config::Config;
use care_core::decode::Decoded;
use care_core::engine::{Input, Rules};
use care_core::event::Kind;
use care_core::model::bgnbd::BgNbd;
use care_core::model::clv::{historic_clv, historic_terms, predicted_clv, Lifespan};
use care_core::model::fit::{fit_bgnbd, fit_gamma_gamma, BgNbdData, FitError, Fitted, GammaGammaData};
use care_core::model::gamma_gamma::GammaGamma;
use care_core::model::holdout::{Holdout, Validation};
use care_core::model::summary::{purchase_days, PurchaseDays, Summary};
use care_core::model::TimeUnit;
use care_core::time::Buckets;
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;
/// Input lines between progress updates on a terminal.
const PROGRESS_LINES: u64 = 1 << 20;

/// What to fit and what to predict.
#[derive(Debug, Clone)]
pub struct Options {
    /// Last day of the calibration period (inclusive, configured timezone).
    pub calibration_end: NaiveDate,
    /// Last day of the holdout period, if a validation is wanted.
    pub holdout_end: Option<NaiveDate>,
    pub unit: TimeUnit,
    /// Horizon of `expected_purchases` and `predicted_clv`, days.
    pub horizon_days: f64,
    /// Yearly discount rate of `predicted_clv`.
    pub discount_rate_yearly: f64,
    pub lifespan: Lifespan,
    /// Source mapping to apply; `None` = the config's only source, or the
    /// canonical format when the config has none.
    pub source: Option<String>,
}

/// Why `care fit` could not produce a fit.
#[derive(Debug, thiserror::Error)]
pub enum FitAppError {
    #[error("no source named {0:?} in the config")]
    UnknownSource(String),
    #[error("the config has {0} sources: name the one whose mapping to apply with --source")]
    AmbiguousSource(usize),
    #[error("{0}")]
    Options(String),
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Write(std::io::Error),
    #[error("{0}")]
    Fit(#[from] FitError),
    #[error("{model} did not converge after {iterations} iterations (best so far: {best}); the data may not support the model (too few repeaters, too short a history)")]
    NotConverged { model: &'static str, iterations: u64, best: String },
}

/// One parameter and its standard error (`null` when the Hessian gives none).
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub std_err: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BgNbdReport {
    pub r: Estimate,
    pub alpha: Estimate,
    pub a: Estimate,
    pub b: Estimate,
    pub log_likelihood: f64,
    pub iterations: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GammaGammaReport {
    pub p: Estimate,
    pub q: Estimate,
    pub v: Estimate,
    pub log_likelihood: f64,
    /// Repeaters with a value > 0, the customers this model is fitted on.
    pub customers: u64,
    pub iterations: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSeconds {
    pub read: f64,
    pub fit: f64,
    pub predict: f64,
}

/// What was read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputCounts {
    pub lines: u64,
    pub orders: u64,
    /// Lines the mapping rejected (the first reason goes to stderr).
    pub rejected: u64,
    /// Events that are not orders, and orders after the last day used.
    pub ignored: u64,
}

/// The JSON `care fit` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bgnbd: BgNbdReport,
    pub gamma_gamma: GammaGammaReport,
    pub customers: u64,
    pub repeaters: u64,
    pub time_unit: TimeUnit,
    pub calibration_end: String,
    pub converged: bool,
    pub iterations: u64,
    pub seconds: f64,
    /// Where the seconds went: reading and summarising, fitting, writing
    /// the customers' predictions.
    pub phase_seconds: PhaseSeconds,
    pub input: InputCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    pub holdout_end: String,
    pub holdout_days: i64,
    #[serde(flatten)]
    pub table: Validation,
}

/// One `--customers` line.
#[derive(Debug, Serialize)]
struct CustomerLine<'a> {
    customer_id: &'a str,
    frequency: u32,
    recency: f64,
    #[serde(rename = "T")]
    t: f64,
    monetary_value: f64,
    p_alive: Option<f64>,
    expected_purchases: Option<f64>,
    expected_avg_value: Option<f64>,
    predicted_clv: Option<f64>,
    expected_next_purchase: Option<String>,
    historic_clv: Option<f64>,
}

/// Each customer's orders up to the last day used, `(day, amount)`, kept
/// in the order customers first appear (the order of `--customers`: no
/// sort of a million ids).
#[derive(Debug, Default)]
struct Orders {
    index: FxHashMap<String, u32>,
    orders: Vec<Vec<(i64, f64)>>,
}

impl Orders {
    fn push(&mut self, id: String, day: i64, amount: f64) {
        let next = self.orders.len() as u32;
        let i = *self.index.entry(id).or_insert(next);
        if i == next {
            self.orders.push(Vec::new());
        }
        self.orders[i as usize].push((day, amount));
    }

    fn len(&self) -> usize {
        self.orders.len()
    }

    /// (id, orders) in first-appearance order.
    fn into_customers(self) -> impl Iterator<Item = (String, Vec<(i64, f64)>)> {
        let mut ids = vec![String::new(); self.orders.len()];
        for (id, i) in self.index {
            ids[i as usize] = id;
        }
        ids.into_iter().zip(self.orders)
    }
}

/// Day number of a calendar date (days since 1970-01-01): the index
/// [`Buckets`] of one day in the configured timezone gives its instants.
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

/// Runs `care fit` over `input`; writes `--customers` lines to `customers`
/// and progress to stderr when it is a terminal. `now_wall_ms` is the
/// clock for the decoder's future-skew check.
///
/// # Errors
/// Bad options or source, I/O, or a fit that fails or does not converge.
pub fn run(cfg: &Config, opts: &Options, input: &mut dyn BufRead, customers: Option<&mut dyn Write>, now_wall_ms: i64) -> Result<Report, FitAppError> {
    let started = Instant::now();
    check(opts)?;
    let cal_end = day_number(opts.calibration_end);
    let last_day = opts.holdout_end.map_or(cal_end, day_number);
    let progress = std::io::stderr().is_terminal();
    let (orders, counts) = read(cfg, opts, input, last_day, now_wall_ms, progress)?;
    let customers_at_end = summarise(orders, cal_end, opts.unit);
    let summaries: Vec<Summary> = customers_at_end.iter().map(|c| c.summary).collect();
    let read_done = Instant::now();
    let bg = converged("BG/NBD", fit_bgnbd(&BgNbdData::new(&summaries))?, |m: &BgNbd| format!("r {} alpha {} a {} b {}", m.r, m.alpha, m.a, m.b))?;
    let gg = converged("Gamma-Gamma", fit_gamma_gamma(&GammaGammaData::new(&summaries))?, |m: &GammaGamma| format!("p {} q {} v {}", m.p, m.q, m.v))?;
    let fit_done = Instant::now();
    let holdout_days = last_day - cal_end;
    let mut holdout = Holdout::default();
    if let Some(out) = customers {
        write_customers(out, &customers_at_end, &bg.model, &gg.model, opts, progress)?;
    }
    if opts.holdout_end.is_some() {
        let horizon = opts.unit.of_days(holdout_days as f64);
        for c in &customers_at_end {
            let s = &c.summary;
            holdout.add(s.frequency, finite(bg.model.expected_purchases(horizon, s.frequency, s.recency, s.t)).unwrap_or(0.0), c.holdout_days);
        }
    }
    let est = |value: f64, se: Option<f64>| Estimate { value, std_err: se };
    let (b, g) = (&bg.model, &gg.model);
    Ok(Report {
        bgnbd: BgNbdReport {
            r: est(b.r, bg.std_errs[0]),
            alpha: est(b.alpha, bg.std_errs[1]),
            a: est(b.a, bg.std_errs[2]),
            b: est(b.b, bg.std_errs[3]),
            log_likelihood: bg.log_likelihood,
            iterations: bg.iterations,
        },
        gamma_gamma: GammaGammaReport {
            p: est(g.p, gg.std_errs[0]),
            q: est(g.q, gg.std_errs[1]),
            v: est(g.v, gg.std_errs[2]),
            log_likelihood: gg.log_likelihood,
            customers: gg.customers,
            iterations: gg.iterations,
        },
        customers: bg.customers,
        repeaters: summaries.iter().filter(|s| s.frequency > 0).count() as u64,
        time_unit: opts.unit,
        calibration_end: opts.calibration_end.to_string(),
        converged: bg.converged && gg.converged,
        iterations: bg.iterations + gg.iterations,
        seconds: started.elapsed().as_secs_f64(),
        phase_seconds: PhaseSeconds {
            read: (read_done - started).as_secs_f64(),
            fit: (fit_done - read_done).as_secs_f64(),
            predict: fit_done.elapsed().as_secs_f64(),
        },
        input: counts,
        validation: opts.holdout_end.map(|h| ValidationReport { holdout_end: h.to_string(), holdout_days, table: holdout.finish() }),
    })
}

fn check(opts: &Options) -> Result<(), FitAppError> {
    let bad = |m: &str| Err(FitAppError::Options(m.into()));
    if !(opts.horizon_days >= 0.0 && opts.horizon_days.is_finite()) {
        return bad("--horizon-days must be a number of days ≥ 0");
    }
    if !(opts.discount_rate_yearly > -1.0 && opts.discount_rate_yearly.is_finite()) {
        return bad("--discount-rate-yearly must be above -1 (0.1 is 10 % a year)");
    }
    match opts.lifespan {
        Lifespan::Years(y) if !(y > 0.0 && y.is_finite()) => return bad("--lifespan-years must be > 0"),
        Lifespan::Retention(r) if !(0.0..1.0).contains(&r) => return bad("--retention-rate must be in [0, 1)"),
        _ => {}
    }
    if opts.holdout_end.is_some_and(|h| h <= opts.calibration_end) {
        return bad("--holdout-end must be after --calibration-end");
    }
    Ok(())
}

fn converged<M: Copy>(model: &'static str, f: Fitted<M>, show: impl Fn(&M) -> String) -> Result<Fitted<M>, FitAppError> {
    if f.converged {
        Ok(f)
    } else {
        Err(FitAppError::NotConverged { model, iterations: f.iterations, best: show(&f.model) })
    }
}

/// Reads the orders up to `last_day`, per customer.
fn read(cfg: &Config, opts: &Options, input: &mut dyn BufRead, last_day: i64, now_wall_ms: i64, progress: bool) -> Result<(Orders, InputCounts), FitAppError> {
    let rules = Rules::new(cfg);
    let source = match (&opts.source, cfg.sources.len()) {
        (Some(name), _) => rules.source_index(name).filter(|&i| i != rules.canonical_source()).ok_or_else(|| FitAppError::UnknownSource(name.clone()))?,
        (None, 0) => rules.canonical_source(),
        (None, 1) => 0,
        (None, n) => return Err(FitAppError::AmbiguousSource(n)),
    };
    let days = Buckets { bucket_ms: DAY_MS, offset_ms: i64::from(cfg.engine.utc_offset_secs().unwrap_or(0)) * 1000 };
    let mut orders = Orders::default();
    let mut counts = InputCounts::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(FitAppError::Read)? == 0 {
            break;
        }
        let payload = line.trim_ascii();
        if payload.is_empty() {
            continue;
        }
        counts.lines += 1;
        if progress && counts.lines % PROGRESS_LINES == 0 {
            eprint!("\rcare fit: {} lines, {} customers", counts.lines, orders.len());
        }
        let rec = Input { source, partition: 0, offset: counts.lines as i64 - 1, key: None, payload };
        match rules.decode(&rec, now_wall_ms) {
            Err(e) => {
                if counts.rejected == 0 {
                    eprintln!("care fit: line {} rejected ({e}); counting the rest", counts.lines);
                }
                counts.rejected += 1;
            }
            // Skipped types (unknown, ignored) are not orders.
            Ok(Decoded::Ignored | Decoded::Unknown(_)) => counts.ignored += 1,
            Ok(Decoded::Event(ev)) if ev.kind != Kind::Order || days.of(ev.ts_ms) > last_day => counts.ignored += 1,
            Ok(Decoded::Event(ev)) => {
                counts.orders += 1;
                let day = days.of(ev.ts_ms);
                // An order without an amount still counts as a purchase.
                orders.push(ev.customer_id, day, ev.amount.unwrap_or(0.0));
            }
        }
    }
    if progress && counts.lines >= PROGRESS_LINES {
        eprintln!("\rcare fit: {} lines, {} customers", counts.lines, orders.len());
    }
    Ok((orders, counts))
}

/// A customer at the calibration end.
struct AtEnd {
    id: String,
    days: PurchaseDays,
    summary: Summary,
    /// Distinct purchase days in the holdout period.
    holdout_days: u32,
}

/// Each customer's purchase days at the calibration end.
fn summarise(orders: Orders, cal_end: i64, unit: TimeUnit) -> Vec<AtEnd> {
    orders
        .into_customers()
        .filter_map(|(id, mut o)| {
            o.sort_unstable_by_key(|x| x.0);
            let split = o.partition_point(|x| x.0 <= cal_end);
            let (cal, hold) = o.split_at_mut(split);
            let days = purchase_days(cal)?;
            let mut holdout_days = 0;
            let mut prev = None;
            for &(d, _) in hold.iter() {
                if prev != Some(d) {
                    holdout_days += 1;
                    prev = Some(d);
                }
            }
            Some(AtEnd { summary: days.summary(cal_end, unit), id, days, holdout_days })
        })
        .collect()
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn write_customers(out: &mut dyn Write, cs: &[AtEnd], bg: &BgNbd, gg: &GammaGamma, opts: &Options, progress: bool) -> Result<(), FitAppError> {
    let cal_end = day_number(opts.calibration_end);
    let horizon = opts.unit.of_days(opts.horizon_days);
    let mut buf = Vec::with_capacity(256);
    for (i, c) in cs.iter().enumerate() {
        if progress && i > 0 && i % (1 << 18) == 0 {
            eprint!("\rcare fit: predictions for {i} of {} customers", cs.len());
        }
        let s = &c.summary;
        let p_alive = bg.p_alive(s.frequency, s.recency, s.t);
        let value = gg.expected_avg_value(s.frequency, s.monetary_value).and_then(finite);
        let next = bg.next_purchase_in(s.frequency, s.t, p_alive).and_then(|t| next_date(opts.calibration_end, t * opts.unit.days()));
        let (aov, per_year) = historic_terms(&c.days, cal_end);
        let line = CustomerLine {
            customer_id: &c.id,
            frequency: s.frequency,
            recency: s.recency,
            t: s.t,
            monetary_value: s.monetary_value,
            p_alive: finite(p_alive),
            expected_purchases: finite(bg.expected_purchases(horizon, s.frequency, s.recency, s.t)),
            expected_avg_value: value,
            predicted_clv: value.and_then(|m| finite(predicted_clv(bg, s, opts.unit, m, opts.horizon_days, opts.discount_rate_yearly))),
            expected_next_purchase: next,
            historic_clv: finite(historic_clv(aov, per_year, opts.lifespan)),
        };
        buf.clear();
        serde_json::to_writer(&mut buf, &line).map_err(|e| FitAppError::Write(e.into()))?;
        buf.push(b'\n');
        out.write_all(&buf).map_err(FitAppError::Write)?;
    }
    if progress && cs.len() >= 1 << 18 {
        eprintln!("\rcare fit: predictions for {} customers      ", cs.len());
    }
    out.flush().map_err(FitAppError::Write)
}

/// The calibration end plus `days`, rounded up to the first whole day by
/// which the chance is reached; `None` past the calendar.
fn next_date(cal_end: NaiveDate, days: f64) -> Option<String> {
    let whole = days.ceil();
    (whole < 1e6).then(|| cal_end.checked_add_days(chrono::Days::new(whole as u64))).flatten().map(|d| d.to_string())
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
