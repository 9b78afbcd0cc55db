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
use std::ops::Range;
use std::time::Instant;

use care_core::config::Config;
use care_core::decode::Limits;
use care_core::engine::Rules;
use care_core::model::bgnbd::BgNbd;
use care_core::model::clv::{historic_clv, historic_terms, predicted_clv, Lifespan};
use care_core::model::fit::{fit_bgnbd, fit_gamma_gamma, BgNbdData, FitError, Fitted, GammaGammaData};
use care_core::model::gamma_gamma::GammaGamma;
use care_core::model::holdout::{Holdout, Validation};
use care_core::model::summary::Summary;
use care_core::model::TimeUnit;
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use read::{Buyers, Customers, LineDecoder, Pass};

#[path = "fit_read.rs"]
mod read;

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

/// One `--customers` line: its JSON is serde's of this struct, which
/// [`CustomerLine::write`] writes directly.
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
    expected_next_purchase: Option<&'a str>,
    historic_clv: Option<f64>,
}

impl CustomerLine<'_> {
    /// Appends the line's JSON (without the newline), byte for byte what
    /// `serde_json::to_writer` writes for it: the keys are fixed text and
    /// the numbers go through serde_json's own formatter, without the
    /// serializer's per-field dispatch and escaping of every key.
    fn write(&self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.extend_from_slice(b"{\"customer_id\":");
        json_str(buf, self.customer_id)?;
        buf.extend_from_slice(b",\"frequency\":");
        CompactFormatter.write_u32(buf, self.frequency)?;
        buf.extend_from_slice(b",\"recency\":");
        json_f64(buf, Some(self.recency))?;
        buf.extend_from_slice(b",\"T\":");
        json_f64(buf, Some(self.t))?;
        buf.extend_from_slice(b",\"monetary_value\":");
        json_f64(buf, Some(self.monetary_value))?;
        buf.extend_from_slice(b",\"p_alive\":");
        json_f64(buf, self.p_alive)?;
        buf.extend_from_slice(b",\"expected_purchases\":");
        json_f64(buf, self.expected_purchases)?;
        buf.extend_from_slice(b",\"expected_avg_value\":");
        json_f64(buf, self.expected_avg_value)?;
        buf.extend_from_slice(b",\"predicted_clv\":");
        json_f64(buf, self.predicted_clv)?;
        buf.extend_from_slice(b",\"expected_next_purchase\":");
        match self.expected_next_purchase {
            Some(d) => json_str(buf, d)?,
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"historic_clv\":");
        json_f64(buf, self.historic_clv)?;
        buf.push(b'}');
        Ok(())
    }
}

/// A number as serde_json writes an `f64` (`null` when not finite) or an
/// absent one.
fn json_f64(buf: &mut Vec<u8>, v: Option<f64>) -> std::io::Result<()> {
    match v {
        Some(v) if v.is_finite() => CompactFormatter.write_f64(buf, v),
        _ => {
            buf.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// A string as serde_json writes it: as it stands when nothing in it needs
/// escaping (control characters, quote, backslash), else by serde_json.
fn json_str(buf: &mut Vec<u8>, s: &str) -> std::io::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(buf, s).map_err(Into::into)
    }
}

/// Day number of a calendar date (days since 1970-01-01): the index
/// `care_core::time::Buckets` of one day in the configured timezone gives its instants.
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

/// The events `care fit` reads: opened once, and a second time when some
/// customer's orders come out of day order (see the read module); input
/// that cannot be opened again (standard input) is read once keeping
/// every order.
pub trait FitInput {
    /// Opens the events from their start.
    ///
    /// # Errors
    /// The input cannot be opened.
    fn open(&mut self) -> std::io::Result<Box<dyn BufRead + '_>>;
    /// Whether [`FitInput::open`] works more than once.
    fn reopens(&self) -> bool;
}

/// Events in memory (tests), read as often as asked.
impl FitInput for &[u8] {
    fn open(&mut self) -> std::io::Result<Box<dyn BufRead + '_>> {
        Ok(Box::new(*self))
    }

    fn reopens(&self) -> bool {
        true
    }
}

/// Runs `care fit` over `input`; writes `--customers` lines to `customers`
/// and progress to stderr when it is a terminal. `now_wall_ms` is the
/// clock for the decoder's future-skew check.
///
/// # Errors
/// Bad options or source, I/O, or a fit that fails or does not converge.
pub fn run(cfg: &Config, opts: &Options, input: &mut dyn FitInput, customers: Option<&mut dyn Write>, now_wall_ms: i64) -> Result<Report, FitAppError> {
    let started = Instant::now();
    check(opts)?;
    let cal_end = day_number(opts.calibration_end);
    let last_day = opts.holdout_end.map_or(cal_end, day_number);
    let progress = std::io::stderr().is_terminal();
    let (folded, counts) = read(cfg, opts, input, last_day, now_wall_ms, progress)?;
    let at_end = summarise(folded, cal_end, opts.unit);
    let summaries = &at_end.summaries;
    let read_done = Instant::now();
    // The two models are independent: Gamma-Gamma is fitted beside BG/NBD.
    let (bg, gg) = std::thread::scope(|s| {
        let gg = s.spawn(|| fit_gamma_gamma(&GammaGammaData::new(summaries)));
        (fit_bgnbd(&BgNbdData::new(summaries)), gg.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    let bg = converged("BG/NBD", bg?, |m: &BgNbd| format!("r {} alpha {} a {} b {}", m.r, m.alpha, m.a, m.b))?;
    let gg = converged("Gamma-Gamma", gg?, |m: &GammaGamma| format!("p {} q {} v {}", m.p, m.q, m.v))?;
    let fit_done = Instant::now();
    let holdout_days = last_day - cal_end;
    let mut holdout = Holdout::default();
    if let Some(out) = customers {
        write_customers(out, &at_end, &bg.model, &gg.model, opts, progress)?;
    }
    if opts.holdout_end.is_some() {
        let horizon = opts.unit.of_days(holdout_days as f64);
        for (s, &days) in summaries.iter().zip(&at_end.buyers.holdout_days) {
            holdout.add(s.frequency, finite(bg.model.expected_purchases(horizon, s.frequency, s.recency, s.t)).unwrap_or(0.0), days);
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

/// Reads every customer's purchase days up to `last_day`.
fn read(cfg: &Config, opts: &Options, input: &mut dyn FitInput, last_day: i64, now_wall_ms: i64, progress: bool) -> Result<(Customers, InputCounts), FitAppError> {
    let rules = Rules::new(cfg);
    let source = match (&opts.source, cfg.sources.len()) {
        (Some(name), _) => rules.source_index(name).filter(|&i| i != rules.canonical_source()).ok_or_else(|| FitAppError::UnknownSource(name.clone()))?,
        (None, 0) => rules.canonical_source(),
        (None, 1) => 0,
        (None, n) => return Err(FitAppError::AmbiguousSource(n)),
    };
    let days = care_core::detect::purchases::day_buckets(cfg);
    let canonical = source == rules.canonical_source();
    let dec = LineDecoder::new(rules.mapping(source).clone(), canonical, Limits::new(&cfg.engine), days, now_wall_ms);
    let mut customers = Customers::new(day_number(opts.calibration_end), last_day, !input.reopens());
    let counts = read::read(&dec, &mut *input.open().map_err(FitAppError::Read)?, &mut customers, Pass::First, progress)?;
    if input.reopens() && customers.unordered() > 0 {
        read::read(&dec, &mut *input.open().map_err(FitAppError::Read)?, &mut customers, Pass::Second, false)?;
    }
    Ok((customers, counts))
}

/// The customers with an order up to the calibration end, in the order
/// customers first appear, with their summaries there (by the same number).
struct AtEnd {
    buyers: Buyers,
    summaries: Vec<Summary>,
}

impl AtEnd {
    fn len(&self) -> usize {
        self.summaries.len()
    }
}

fn summarise(customers: Customers, cal_end: i64, unit: TimeUnit) -> AtEnd {
    let buyers = customers.finish();
    let summaries = buyers.days.iter().map(|d| d.summary(cal_end, unit)).collect();
    AtEnd { buyers, summaries }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Customers formatted per chunk: two threads format a pair of chunks
/// while this one writes the pair before, in order.
const WRITE_CHUNK: usize = 1 << 15;

/// Expected purchases of a customer alive, by (x, T as bits): one ₂F₁ per
/// pair instead of one per customer (a million customers share about ten
/// thousand pairs in whole days).
type IfAlive = FxHashMap<(u32, u64), f64>;

fn write_customers(out: &mut dyn Write, cs: &AtEnd, bg: &BgNbd, gg: &GammaGamma, opts: &Options, progress: bool) -> Result<(), FitAppError> {
    let horizon = opts.unit.of_days(opts.horizon_days);
    let mut if_alive = IfAlive::default();
    for s in &cs.summaries {
        if_alive.entry((s.frequency, s.t.to_bits())).or_insert_with(|| bg.expected_purchases_if_alive(horizon, s.frequency, s.t));
    }
    let if_alive = &if_alive;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    // Written buffers are reused (fresh ones cost a page fault per 4 KiB).
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut chunks = (0..cs.len()).step_by(WRITE_CHUNK).map(|i| i..cs.len().min(i + WRITE_CHUNK));
    let mut done = 0;
    loop {
        let pair: Vec<Range<usize>> = chunks.by_ref().take(2).collect();
        let formatted = std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|c| {
                    let buf = spare.pop().unwrap_or_default();
                    s.spawn(move || format_customers(cs, c.clone(), bg, gg, opts, if_alive, buf))
                })
                .collect();
            for mut buf in pending.drain(..) {
                out.write_all(&buf).map_err(FitAppError::Write)?;
                buf.clear();
                spare.push(buf);
            }
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect::<Result<Vec<_>, _>>()
        })?;
        if formatted.is_empty() {
            break;
        }
        done += pair.iter().map(|c| c.len()).sum::<usize>();
        if progress && cs.len() >= 1 << 18 {
            eprint!("\rcare fit: predictions for {done} of {} customers", cs.len());
        }
        pending = formatted;
    }
    if progress && cs.len() >= 1 << 18 {
        eprintln!();
    }
    out.flush().map_err(FitAppError::Write)
}

/// One `--customers` line per customer in `range` of `cs`, into `buf` (empty).
fn format_customers(cs: &AtEnd, range: Range<usize>, bg: &BgNbd, gg: &GammaGamma, opts: &Options, if_alive: &IfAlive, mut buf: Vec<u8>) -> Result<Vec<u8>, FitAppError> {
    let cal_end = day_number(opts.calibration_end);
    let horizon = opts.unit.of_days(opts.horizon_days);
    let mut dates = NextDates::new(opts.calibration_end);
    buf.reserve(range.len() * 256);
    for i in range {
        let s = &cs.summaries[i];
        let p_alive = bg.p_alive(s.frequency, s.recency, s.t);
        let value = gg.expected_avg_value(s.frequency, s.monetary_value).and_then(finite);
        let next = bg.next_purchase_in(s.frequency, s.t, p_alive).and_then(|t| dates.after(t * opts.unit.days()));
        let (aov, per_year) = historic_terms(&cs.buyers.days[i], cal_end);
        let alive = if_alive.get(&(s.frequency, s.t.to_bits())).copied().unwrap_or_else(|| bg.expected_purchases_if_alive(horizon, s.frequency, s.t));
        let expected = bg.expected_purchases_from(alive, horizon, s.frequency, s.recency, s.t);
        // Undiscounted, predicted CLV is value × the same expectation
        // (predicted_clv's own shortcut): ₂F₁ once per customer, not twice.
        let clv = |m: f64| if opts.discount_rate_yearly == 0.0 && opts.horizon_days > 0.0 { m * expected } else { predicted_clv(bg, s, opts.unit, m, opts.horizon_days, opts.discount_rate_yearly) };
        let line = CustomerLine {
            customer_id: cs.buyers.id(i),
            frequency: s.frequency,
            recency: s.recency,
            t: s.t,
            monetary_value: s.monetary_value,
            p_alive: finite(p_alive),
            expected_purchases: finite(expected),
            expected_avg_value: value,
            predicted_clv: value.and_then(|m| finite(clv(m))),
            expected_next_purchase: next,
            historic_clv: finite(historic_clv(aov, per_year, opts.lifespan)),
        };
        line.write(&mut buf).map_err(FitAppError::Write)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// [`next_date`]'s text per whole number of days: a million customers
/// wait one of a few thousand.
struct NextDates {
    cal_end: NaiveDate,
    text: FxHashMap<u64, Option<String>>,
}

impl NextDates {
    fn new(cal_end: NaiveDate) -> NextDates {
        NextDates { cal_end, text: FxHashMap::default() }
    }

    /// `next_date(cal_end, days)`.
    fn after(&mut self, days: f64) -> Option<&str> {
        let whole = days.ceil();
        if !(whole < 1e6) {
            return None;
        }
        let cal_end = self.cal_end;
        self.text.entry(whole as u64).or_insert_with(|| next_date(cal_end, whole)).as_deref()
    }
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
