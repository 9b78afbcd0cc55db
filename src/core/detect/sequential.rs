//! Activity decline as sequential change detection: a Poisson CUSUM on each
//! sealed bucket's count against the customer's own rate.
//!
//! Why not a window test: a per-check p-value run every day on every
//! customer does not bound false alerts per customer per month, and bursts
//! make counts overdispersed. CUSUM is optimal for the delay / false-alarm
//! trade-off (Lorden 1971, Moustakides 1986), and its threshold maps to an
//! average run length, which is what a marketer's "false alerts per 1,000
//! customer-months" is.
//!
//! Per sealed bucket with count x (capped at `3μ + 2`, so one burst does not
//! hide a decline), against a drop to ρ = 1 − `design_drop` of the baseline μ:
//!
//! ```text
//! S ← max(0, S + μ(1 − ρ) − x·ln(1/ρ))        open when S ≥ h = ln(ARL)
//! ```
//!
//! the log-likelihood ratio of "rate ρμ" against "rate μ". ARL, the average
//! run length between false alerts in buckets, is 1000 × 30.44 days ÷ the
//! configured target; Lorden's bound ARL ≥ e^h makes the target an upper
//! bound when the Poisson model holds. While an episode is open the baseline
//! is frozen and the statistic turns around, accumulating evidence of
//! recovery (the mirrored increment); at h the episode resolves, then a
//! cooldown.
//!
//! The baseline μ is a running mean of the counts, then an exponential one
//! over `baseline_memory_buckets`. A new customer's buckets are learned as
//! they seal, and they are judged once `baseline_buckets` have passed; from
//! then on each bucket is learned `recent_buckets` late, so a decline that
//! began within the last week has not moved its own yardstick yet when it
//! is judged. (Freezing it instead while evidence builds learns only from
//! the days that kept the statistic low, a biased baseline: measured, 8×
//! the false alerts.) A burst (a count above μ + 3√μ + 1) is not learned at
//! all: learned even capped, a monthly payday at 5× raised μ by about 10 %,
//! and steady customers' ordinary days then read as a decline.
//!
//! Weekly patterns are withstood, not modelled: a weekday profile makes a
//! steady customer's weekends read as small drops, which add false alerts
//! (on the grid of populations, weekends 40–45 % below the week's mean about
//! double them against a flat week at the same setting), and the default
//! setting is calibrated on populations with and without one (BENCHMARKS.md,
//! issue 18). Modelling it would take 7 rates a customer, each learned from
//! a seventh of the data: noisier baselines, which cost false alerts too.
//!
//! Only sealed buckets count, those no on-time event can still fall into
//! (their end is at least `allowed_lateness` behind stream time), so every
//! decision and its episode time (the end of the deciding bucket) are the
//! same whatever the order of events within the lateness, as long as no
//! stronger episode (silence, dormancy) opens or closes within the lateness
//! of those buckets: decline pauses while one is open. Work is O(1) per sealed bucket,
//! amortised over the customer's events; an empty stretch is folded when
//! the customer next acts or their timer fires.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::DeclineConfig;
use crate::detect::decline::ACTIVITY_DECLINE;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext, WindowInfo};
use crate::detect::{decline, ActivityEvent, Detector, DetectorId, Hooks, Moment, Signal};
use crate::event::{Kind, KindSet};
use crate::state::codec::{StateBlock, MAX_BUCKET};
use crate::state::{Customer, Episode};
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// An empty stretch longer than this restarts the baseline instead of
/// being folded bucket by bucket.
const MAX_GAP_BUCKETS: i64 = 4096;
/// Days per month in the false-alert setting.
const MONTH_DAYS: f64 = 365.25 / 12.0;

/// The sequential decline detector's running figures (see
/// `detect::sequential`): 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeclineStat {
    /// The customer's baseline rate, events per bucket (frozen while an
    /// episode is open).
    pub rate: f32,
    /// The CUSUM statistic: evidence of a decline, or while an episode is
    /// open, of recovery.
    pub stat: f32,
    /// Buckets passed since the customer was first seen (saturating):
    /// learned into `rate`, or skipped as a burst or while learning switches
    /// to its lag (see `learn`).
    pub buckets: u16,
    /// The next bucket to fold; [`DeclineStat::UNSET`] before the first.
    pub next: i64,
}

impl DeclineStat {
    pub const UNSET: i64 = i64::MIN;
}

impl Default for DeclineStat {
    fn default() -> DeclineStat {
        DeclineStat { rate: 0.0, stat: 0.0, buckets: 0, next: DeclineStat::UNSET }
    }
}

/// The running figures' changelog block.
pub const BLOCK: StateBlock = StateBlock { id: 3, version: 1, name: "decline statistic", encode: encode_stat, decode: decode_stat };

fn encode_stat(c: &Customer, out: &mut Vec<u8>) {
    let d = c.decline_stat;
    if d != DeclineStat::default() {
        out.extend_from_slice(&d.rate.to_le_bytes());
        out.extend_from_slice(&d.stat.to_le_bytes());
        put_varint(out, u64::from(d.buckets));
        put_zigzag(out, d.next);
    }
}

fn decode_stat(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let rate = p.f32_le("decline rate")?;
    let stat = p.f32_le("decline statistic")?;
    let buckets = u16::try_from(p.varint("decline buckets")?).map_err(|_| CodecError::Corrupt("decline buckets exceed u16".into()))?;
    let next = p.zigzag("decline next bucket")?;
    if !(rate.is_finite() && stat.is_finite()) || next != DeclineStat::UNSET && !(-MAX_BUCKET..=MAX_BUCKET).contains(&next) {
        return Err(CodecError::Corrupt(format!("decline figures out of range: rate {rate}, statistic {stat}, next {next}")));
    }
    c.decline_stat = DeclineStat { rate, stat, buckets, next };
    Ok(())
}

/// Thresholds, derived from config once.
#[derive(Debug, Clone)]
pub struct Params {
    /// ρ = 1 − design drop, and ln(1/ρ).
    pub rho: f64,
    pub log_inv_rho: f64,
    /// The CUSUM threshold h.
    pub threshold: f64,
    /// Buckets passed since first seen before a customer is judged.
    pub min_history: u16,
    /// `min_history` + `recent_buckets`: where lagged learning starts.
    pub learn_again: u16,
    pub min_rate: f64,
    /// The exponential baseline's memory, in buckets.
    pub memory: f64,
    pub recent_buckets: i64,
    pub cooldown_buckets: i64,
    pub kinds: KindSet,
}

impl Params {
    pub fn new(cfg: &DeclineConfig, kinds: KindSet, bucket_secs: u32) -> Params {
        let rho = 1.0 - cfg.design_drop;
        let buckets_per_month = MONTH_DAYS * 86_400.0 / f64::from(bucket_secs);
        let arl = 1000.0 * buckets_per_month / cfg.false_alerts_per_1000_customer_months;
        Params {
            rho,
            log_inv_rho: (1.0 / rho).ln(),
            threshold: arl.ln().max(1.0),
            min_history: cfg.baseline_buckets,
            learn_again: cfg.baseline_buckets.saturating_add(cfg.recent_buckets),
            min_rate: cfg.min_baseline_rate,
            memory: f64::from(cfg.baseline_memory_buckets),
            recent_buckets: i64::from(cfg.recent_buckets),
            cooldown_buckets: i64::from(cfg.cooldown_buckets),
            kinds,
        }
    }

    /// Buckets of activity kept: the recent window (the evidence, and the
    /// lag of learning), the bucket filling now, those not yet sealed, and
    /// a spare.
    pub fn window_width(&self, lateness_buckets: i64) -> usize {
        (self.recent_buckets + 4 + lateness_buckets).max(9) as usize
    }

    /// A bucket's count in the statistic, capped against bursts.
    fn capped(&self, x: u32, rate: f64, history: u16) -> f64 {
        let x = f64::from(x);
        if history < 7 { x } else { x.min(3.0 * rate + 2.0) }
    }

    /// Empty buckets from a statistic of `stat` to the threshold, at least
    /// one and at most [`MAX_GAP_BUCKETS`] (a rate near 0 crosses never).
    fn buckets_to_cross(&self, stat: f32, rate: f32) -> i64 {
        let step = self.increment(0.0, f64::from(rate));
        ((self.threshold - f64::from(stat)) / step).ceil().clamp(1.0, MAX_GAP_BUCKETS as f64) as i64
    }

    /// The CUSUM increment towards "declined" for count `x` at rate `rate`.
    fn increment(&self, x: f64, rate: f64) -> f64 {
        rate * (1.0 - self.rho) - x * self.log_inv_rho
    }
}

/// The evidence behind a decision, carried in the alert payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Events per bucket before the decline (frozen).
    pub baseline_rate: f64,
    /// Events in the last `recent_buckets` sealed buckets.
    pub recent_events: u32,
    pub recent_buckets: i64,
    pub statistic: f64,
    pub threshold: f64,
    /// Per activity kind: events in the recent buckets.
    pub by_kind: Vec<(Kind, u32)>,
}

impl Evidence {
    pub fn recent_rate(&self) -> f64 {
        f64::from(self.recent_events) / self.recent_buckets.max(1) as f64
    }

    /// 1 − recent rate ÷ baseline rate, at least 0.
    pub fn drop(&self) -> f64 {
        if self.baseline_rate > 0.0 { (1.0 - self.recent_rate() / self.baseline_rate).max(0.0) } else { 0.0 }
    }
}

/// The sequential decline detector.
#[derive(Debug, Clone)]
pub struct Sequential(pub Params);

impl Detector for Sequential {
    fn id(&self) -> DetectorId {
        decline::ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::ADVANCE.and(Hooks::ACTIVITY).and(Hooks::TIMERS).and(Hooks::EPISODES)
    }

    fn advance(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        // Each call folds up to a decision, and at least one bucket.
        while let Some(s) = fold_sealed(&self.0, c, at) {
            out.push(s);
        }
    }

    /// Nothing: the event is folded in `advance`, once its bucket is sealed.
    fn on_activity(&self, _: &mut Customer, _: Moment, _: ActivityEvent, _: &mut Vec<Signal>) {}

    /// Nothing: the engine calls `advance` before every timer, which folds
    /// the buckets the timer was set for.
    fn on_timer(&self, _: &mut Customer, _: Moment, _: &mut Vec<Signal>) {}

    /// While judged: the end of the bucket in which the statistic would
    /// cross the threshold if no event came (counted from the end of a
    /// cooldown); while open, the end of the newest bucket with activity,
    /// which may hold the evidence of recovery.
    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        let p = &self.0;
        let d = c.decline_stat;
        if at.superseded || !judged(p, &d) {
            return None;
        }
        let last = match c.decline {
            Episode::Open { .. } => c.activity.head().filter(|&newest| newest >= d.next)?,
            Episode::Cooldown { until } => d.next.max(until - 1) + p.buckets_to_cross(0.0, d.rate) - 1,
            Episode::Normal => d.next + p.buckets_to_cross(d.stat, d.rate) - 1,
        };
        let end = last.checked_add(1)?.checked_mul(at.buckets.bucket_ms)?;
        end.checked_sub(at.buckets.offset_ms)
    }

    fn is_open(&self, c: &Customer) -> bool {
        matches!(c.decline, Episode::Open { .. })
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        super::decline::episode_since(c)
    }

    fn supersede(&self, c: &mut Customer) {
        if self.is_open(c) {
            c.decline = Episode::Normal;
            c.decline_stat.stat = 0.0;
        }
    }
}

fn judged(p: &Params, d: &DeclineStat) -> bool {
    d.buckets >= p.min_history && f64::from(d.rate) >= p.min_rate
}

/// Folds the sealed buckets not folded yet, up to and including the first
/// that opens or resolves an episode, and returns that decision; the engine
/// calls again for the rest of the stretch.
fn fold_sealed(p: &Params, c: &mut Customer, at: Moment) -> Option<Signal> {
    let sealed = at.buckets.of(at.sealed_ms);
    let d = &mut c.decline_stat;
    if d.next == DeclineStat::UNSET {
        d.next = at.buckets.of(c.first_seen_ms);
    }
    if sealed - d.next > MAX_GAP_BUCKETS {
        *d = DeclineStat { next: sealed, ..DeclineStat::default() };
        return None;
    }
    let first = at.buckets.of(c.first_seen_ms);
    while c.decline_stat.next < sealed {
        let b = c.decline_stat.next;
        let x = c.activity.sum(b, b + 1, p.kinds);
        let decided = fold_bucket(p, c, b, x, first, at);
        c.decline_stat.next = b + 1;
        if decided.is_some() {
            return decided;
        }
    }
    None
}

/// One sealed bucket `b` with `x` events; the customer was first seen in
/// bucket `first`.
fn fold_bucket(p: &Params, c: &mut Customer, b: i64, x: u32, first: i64, at: Moment) -> Option<Signal> {
    let end_ms = at.buckets.start_ms(b + 1);
    let d = c.decline_stat;
    let rate = f64::from(d.rate);
    let xc = p.capped(x, rate, d.buckets);
    let outage = at.outage;
    let in_outage = outage.overlaps(at.buckets.start_ms(b), end_ms);
    if let Episode::Open { episode_ms, .. } = c.decline {
        if in_outage {
            return None;
        }
        // The baseline is frozen; the statistic gathers evidence of recovery.
        let recovery = (f64::from(d.stat) - p.increment(xc, rate)).max(0.0);
        c.decline_stat.stat = recovery as f32;
        // An episode the outage opened ends with it: its evidence was the
        // source's silence, and a real decline is judged afresh.
        let outages = outage.overlaps(episode_ms - 1, episode_ms);
        if recovery < p.threshold && !outages {
            return None;
        }
        let evidence = evidence(p, c, b, recovery);
        c.decline = if outages { Episode::Normal } else { Episode::Cooldown { until: b + 1 + p.cooldown_buckets } };
        c.decline_stat.stat = 0.0;
        return Some(Signal::resolved(ACTIVITY_DECLINE, episode_ms, end_ms, evidence).with_version(2));
    }
    learn(p, c, b, first, at);
    let cooling = matches!(c.decline, Episode::Cooldown { until } if b + 1 < until);
    if in_outage {
        // No evidence either way: the bucket is empty because the source is.
        return None;
    }
    if cooling || at.superseded || !judged(p, &d) {
        // Superseded: a stronger episode (dormancy) is open; pause.
        c.decline_stat.stat = 0.0;
        return None;
    }
    c.decline = Episode::Normal;
    let stat = (f64::from(d.stat) + p.increment(xc, rate)).max(0.0);
    c.decline_stat.stat = stat as f32;
    if stat < p.threshold {
        return None;
    }
    let evidence = evidence(p, c, b, stat);
    c.decline = Episode::Open { episode_ms: end_ms, expected: (rate * p.recent_buckets as f64) as f32 };
    c.decline_stat.stat = 0.0;
    Some(Signal::opened(ACTIVITY_DECLINE, end_ms, evidence).with_version(2))
}

/// Moves the baseline towards a bucket's count: a running mean, then an
/// exponential one. Until the customer is judged it learns bucket `b`
/// itself, so a new customer is judged `min_history` buckets after first
/// seen (it learned a week late before, so was judged a week later); then
/// it learns the bucket `recent_buckets` before `b`, so a decline under a
/// week old has not moved its own yardstick, pausing `recent_buckets`
/// buckets at the switch so no bucket is learned twice. `buckets` counts
/// the buckets passed (learned, paused or skipped as bursts): a changelog
/// written before the switch restores with its lagged count, which at worst
/// skips a week of learning once. A bucket of the task's last upstream
/// outage is passed, not learned: its emptiness is the source's, and
/// learned it would lower the customer's yardstick for months.
fn learn(p: &Params, c: &mut Customer, b: i64, first: i64, at: Moment) {
    let d = c.decline_stat;
    let warming = d.buckets < p.min_history;
    let lagged = if warming { b } else { b - p.recent_buckets };
    if lagged < first {
        return;
    }
    c.decline_stat.buckets = d.buckets.saturating_add(1);
    let x = c.activity.sum(lagged, lagged + 1, p.kinds);
    let outage = at.outage.overlaps(at.buckets.start_ms(lagged), at.buckets.start_ms(lagged + 1));
    if !warming && d.buckets < p.learn_again || is_burst(x, &d) || outage {
        return;
    }
    let n = f64::from(d.buckets) + 1.0;
    let alpha = (1.0 / n).max(1.0 / p.memory);
    c.decline_stat.rate = (f64::from(d.rate) + alpha * (f64::from(x) - f64::from(d.rate))) as f32;
}

/// Whether a bucket's count is a burst the baseline must not learn: above
/// μ + 3√μ + 1, which a steady Poisson count exceeds in at most 0.4 % of
/// buckets at any rate (so skipping it lowers μ by at most 2.2 % below 2 a
/// bucket, 0.8 % from there), while a day at 3–6× the rate mostly does.
/// Clipping at the cap instead
/// (as the statistic does) still learned a burst as 3μ + 2: monthly paydays
/// at 5× raised μ by about 10 % and steady customers' normal days then
/// read as a decline (measured: 2–3× the false alerts of a population
/// without bursts). Learned as is while fewer than 7 buckets give μ.
fn is_burst(x: u32, d: &DeclineStat) -> bool {
    let rate = f64::from(d.rate);
    d.buckets >= 7 && f64::from(x) > rate + 3.0 * rate.sqrt() + 1.0
}

fn evidence(p: &Params, c: &Customer, last: i64, statistic: f64) -> Evidence {
    let from = last + 1 - p.recent_buckets;
    Evidence {
        baseline_rate: f64::from(c.decline_stat.rate),
        recent_events: c.activity.sum(from, last + 1, p.kinds),
        recent_buckets: p.recent_buckets,
        statistic,
        threshold: p.threshold,
        by_kind: p.kinds.iter().map(|k| (k, c.activity.sum_kind(from, last + 1, k))).collect(),
    }
}

/// The `io.care.activity_decline.v2` payload: the statistic's evidence.
#[derive(Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    method: &'static str,
    baseline_rate: f64,
    recent_events: u32,
    recent_rate: f64,
    drop: f64,
    statistic: f64,
    threshold: f64,
    window: WindowInfo,
    by_kind: BTreeMap<&'static str, Recent>,
}

#[derive(Serialize)]
struct Recent {
    recent: u32,
}

impl Body for Evidence {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, cx.started, cx.window, self))
    }
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, started: String, window: WindowInfo, e: &Evidence) -> Payload<'a> {
        Payload {
            head,
            episode_started_at: started,
            method: "cusum",
            baseline_rate: round(e.baseline_rate, 4),
            recent_events: e.recent_events,
            recent_rate: round(e.recent_rate(), 4),
            drop: round(e.drop(), 4),
            statistic: round(e.statistic, 4),
            threshold: round(e.threshold, 4),
            window,
            by_kind: e.by_kind.iter().map(|&(k, recent)| (k.as_str(), Recent { recent })).collect(),
        }
    }
}

#[cfg(test)]
#[path = "sequential_tests.rs"]
mod tests;
