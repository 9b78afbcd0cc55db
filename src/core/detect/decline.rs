//! Activity decline: a customer's recent activity falls significantly below
//! their own baseline.
//!
//! Windows, in buckets, relative to the bucket `now` falls in (never counted,
//! it is still filling): recent = the `recent_buckets` complete buckets before
//! it, baseline = the `baseline_buckets` before those. They never overlap.
//!
//! Enter: the customer was seen before the baseline began, the baseline holds
//! at least `min_baseline_events`, recent ≤ `open_ratio` × expected, and a
//! significance test says so little is unlikely by chance (P < `significance`),
//! which keeps low-volume customers from flapping. The test is the exact
//! conditional test of two Poisson rates: given n events in both windows and
//! an unchanged rate, the recent count is Binomial(n, recent share of time).
//! Testing against the baseline as if it were exact would flag a large share
//! of steady customers, whose baseline is itself a noisy count. The expected
//! count is then frozen. Exit: recent ≥ `resolve_ratio` × frozen expected, then a cooldown
//! of `cooldown_buckets` during which no new episode opens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::stats::binomial_cdf;
use crate::detect::signal::{round, to_value, Body, PayloadContext, WindowInfo};
use crate::detect::{invalid, sequential, yes, ActivityEvent, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::{Kind, KindSet};
use crate::detect::signal::Head;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_zigzag, CodecError, Reader};

/// A detector episode: normal → open → cooldown → normal.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Episode {
    #[default]
    Normal,
    /// Opened by the trigger at `episode_ms`; `expected` is the frozen
    /// baseline expectation for the recent window.
    Open { episode_ms: i64, expected: f32 },
    /// No new episode before bucket `until`.
    Cooldown {
        #[serde(rename = "until_bucket")]
        until: i64,
    },
}

/// The decline episode's changelog block; the window and the sequential
/// methods share it.
pub const EPISODE_BLOCK: StateBlock = StateBlock { id: 1, version: 1, name: "decline episode", encode: encode_episode, decode: decode_episode };

/// When the customer's open decline episode began, of either method.
pub(crate) fn episode_since(c: &Customer) -> Option<i64> {
    match c.decline {
        Episode::Open { episode_ms, .. } => Some(episode_ms),
        _ => None,
    }
}

fn encode_episode(c: &Customer, out: &mut Vec<u8>) {
    match c.decline {
        Episode::Normal => {}
        Episode::Open { episode_ms, expected } => {
            out.push(1);
            put_zigzag(out, episode_ms);
            out.extend_from_slice(&expected.to_le_bytes());
        }
        Episode::Cooldown { until } => {
            out.push(2);
            put_zigzag(out, until);
        }
    }
}

fn decode_episode(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.decline = match p.u8("episode tag")? {
        0 => Episode::Normal,
        1 => Episode::Open { episode_ms: p.zigzag("episode_ms")?, expected: p.f32_le("expected")? },
        2 => Episode::Cooldown { until: p.zigzag("cooldown until")? },
        tag => return Err(CodecError::Corrupt(format!("unknown episode tag {tag}"))),
    };
    Ok(())
}

/// How activity decline is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclineMethod {
    /// A CUSUM on each sealed bucket's count against the customer's own
    /// rate; false alerts are a setting (`false_alerts_per_1000_customer_months`).
    Sequential,
    /// The recent window against the baseline window, with a per-check
    /// significance test (`io.care.activity_decline.v1`).
    Window,
}

/// Activity decline: recent rate significantly below the customer's baseline.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `sequential` (the default) or `window` (the per-check test of
    /// `io.care.activity_decline.v1`, for configs that rely on it).
    #[serde(default = "default_decline_method")]
    pub method: DeclineMethod,
    /// Sequential: how many false alerts per 1,000 steady customer-months
    /// the threshold allows at most (Lorden's bound: CUSUM threshold
    /// h = ln(average run length in buckets)).
    #[serde(default = "default_false_alerts")]
    pub false_alerts_per_1000_customer_months: f64,
    /// Sequential: the drop the statistic is tuned to detect fastest.
    #[serde(default = "default_design_drop")]
    pub design_drop: f64,
    /// Sequential: customers whose baseline is below this many events per
    /// bucket are not judged (silence covers them).
    #[serde(default = "default_min_baseline_rate")]
    pub min_baseline_rate: f64,
    /// Complete buckets in the recent window.
    #[serde(default = "default_recent_buckets")]
    pub recent_buckets: u16,
    /// Complete buckets in the baseline, just before the recent window.
    /// Sequential: buckets after first seen before a customer is judged.
    #[serde(default = "default_baseline_buckets")]
    pub baseline_buckets: u16,
    /// Sequential: the baseline's memory, in buckets (a running mean up to
    /// this many, then an exponential mean with this time constant).
    #[serde(default = "default_baseline_memory_buckets")]
    pub baseline_memory_buckets: u16,
    /// Fewer baseline events than this: never a decline (too little data).
    #[serde(default = "default_min_baseline_events")]
    pub min_baseline_events: u32,
    /// Open when recent ÷ expected is at most this ...
    #[serde(default = "default_open_ratio")]
    pub open_ratio: f64,
    /// ... and P(this few recent events | unchanged rate) is below this
    /// (conditional binomial test; it runs daily, so keep it small).
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// Resolve when recent ÷ frozen expected is back to at least this.
    #[serde(default = "default_resolve_ratio")]
    pub resolve_ratio: f64,
    /// Buckets after an episode closes during which no new one opens.
    #[serde(default = "default_cooldown_buckets")]
    pub cooldown_buckets: u16,
}

fn default_decline_method() -> DeclineMethod {
    DeclineMethod::Sequential
}
fn default_false_alerts() -> f64 {
    1.0
}
fn default_design_drop() -> f64 {
    0.7
}
fn default_min_baseline_rate() -> f64 {
    0.5
}
fn default_recent_buckets() -> u16 {
    7
}
fn default_baseline_buckets() -> u16 {
    21
}
fn default_baseline_memory_buckets() -> u16 {
    56
}
fn default_min_baseline_events() -> u32 {
    20
}
fn default_open_ratio() -> f64 {
    0.5
}
fn default_significance() -> f64 {
    0.001
}
fn default_resolve_ratio() -> f64 {
    0.8
}
fn default_cooldown_buckets() -> u16 {
    7
}

impl Default for DeclineConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}


impl DeclineConfig {
    /// Checks the `[detect.decline]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let d = self;
        let key = |k: &str| format!("detect.decline.{k}");
        if d.recent_buckets == 0 || d.baseline_buckets == 0 {
            return Err(invalid(key("recent_buckets"), "and baseline_buckets must be at least 1"));
        }
        if d.baseline_memory_buckets == 0 {
            return Err(invalid(key("baseline_memory_buckets"), "must be at least 1"));
        }
        if u32::from(d.recent_buckets) + u32::from(d.baseline_buckets) > 1_000 {
            return Err(invalid(key("baseline_buckets"), "plus recent_buckets must be at most 1000"));
        }
        if !(0.0..1.0).contains(&d.open_ratio) {
            return Err(invalid(key("open_ratio"), "must be in [0, 1)"));
        }
        if !(d.open_ratio..=1.0).contains(&d.resolve_ratio) {
            return Err(invalid(key("resolve_ratio"), "must be in [open_ratio, 1]"));
        }
        if !(d.significance > 0.0 && d.significance < 1.0) {
            return Err(invalid(key("significance"), "must be in (0, 1)"));
        }
        if !(d.false_alerts_per_1000_customer_months > 0.0 && d.false_alerts_per_1000_customer_months <= 1000.0) {
            return Err(invalid(key("false_alerts_per_1000_customer_months"), "must be in (0, 1000]"));
        }
        if !(d.design_drop >= 0.1 && d.design_drop <= 0.99) {
            return Err(invalid(key("design_drop"), "must be in [0.1, 0.99]"));
        }
        if !(d.min_baseline_rate > 0.0 && d.min_baseline_rate.is_finite()) {
            return Err(invalid(key("min_baseline_rate"), "must be greater than 0"));
        }
        Ok(())
    }
}

/// Both methods' name: they are one signal, `activity_decline`.
pub const ID: DetectorId = DetectorId("decline");

/// The registry's entry: on by default, with the method the config names.
pub const ENTRY: Entry = Entry { id: ID, build, window_width, signals: &[ACTIVITY_DECLINE], blocks: &[&EPISODE_BLOCK, &sequential::BLOCK] };

/// `activity_decline`, both methods' signal: the window method's payload
/// is v1, the sequential method's v2 (`p_value`, `expected_events` and
/// `ratio` have no meaning there).
pub const ACTIVITY_DECLINE: SignalType = SignalType(&SignalDef {
    name: "activity_decline",
    destination: Destination::Alerts,
    outage_guarded: true,
    versions: &[(1, "io.care.activity_decline.v1"), (2, "io.care.activity_decline.v2")],
});

fn build(cfg: &Config) -> Option<Box<dyn Detector>> {
    let (d, activity) = (&cfg.detect.decline, cfg.engine.activity_set());
    Some(match d.method {
        _ if !d.enabled => return None,
        DeclineMethod::Window => Box::new(Decline(Params::new(d, activity))),
        DeclineMethod::Sequential => Box::new(sequential::Sequential(sequential::Params::new(d, activity, cfg.engine.bucket_secs))),
    })
}

/// Buckets of activity the configured method reads.
fn window_width(cfg: &Config) -> usize {
    let (d, activity) = (&cfg.detect.decline, cfg.engine.activity_set());
    match d.method {
        DeclineMethod::Window => Params::new(d, activity).window_width(),
        DeclineMethod::Sequential => {
            let lateness_buckets = i64::from(cfg.engine.allowed_lateness_secs.div_ceil(cfg.engine.bucket_secs));
            sequential::Params::new(d, activity, cfg.engine.bucket_secs).window_width(lateness_buckets)
        }
    }
}

/// Thresholds, copied from config once.
#[derive(Debug, Clone)]
pub struct Params {
    pub recent_buckets: i64,
    pub baseline_buckets: i64,
    pub min_baseline_events: u32,
    pub open_ratio: f64,
    pub significance: f64,
    pub resolve_ratio: f64,
    pub cooldown_buckets: i64,
    pub kinds: KindSet,
}

impl Params {
    pub fn new(cfg: &DeclineConfig, kinds: KindSet) -> Params {
        Params {
            recent_buckets: i64::from(cfg.recent_buckets),
            baseline_buckets: i64::from(cfg.baseline_buckets),
            min_baseline_events: cfg.min_baseline_events,
            open_ratio: cfg.open_ratio,
            significance: cfg.significance,
            resolve_ratio: cfg.resolve_ratio,
            cooldown_buckets: i64::from(cfg.cooldown_buckets),
            kinds,
        }
    }

    /// Buckets of history the detector reads, plus the one filling now.
    pub fn window_width(&self) -> usize {
        (self.recent_buckets + self.baseline_buckets + 1) as usize
    }
}

/// The activity decline detector.
#[derive(Debug, Clone)]
pub struct Decline(pub Params);

impl Decline {
    fn check(&self, c: &mut Customer, at: Moment) -> Option<Signal> {
        if at.superseded {
            return None;
        }
        let first = at.buckets.of(c.first_seen_ms);
        evaluate(&self.0, c, first, at.buckets.of(at.now_ms), at.trigger_ms)
    }
}

impl Detector for Decline {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::ACTIVITY.and(Hooks::TIMERS).and(Hooks::EPISODES)
    }

    fn on_activity(&self, c: &mut Customer, at: Moment, _: ActivityEvent, out: &mut Vec<Signal>) {
        out.extend(self.check(c, at));
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        out.extend(self.check(c, at));
    }

    /// The next bucket boundary, while the customer has enough history to
    /// decline or an episode is in progress: windows move only there.
    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        let now = at.buckets.of(at.now_ms);
        (!at.superseded && is_candidate(&self.0, c, now)).then(|| at.buckets.start_ms(now + 1))
    }

    fn is_open(&self, c: &Customer) -> bool {
        matches!(c.decline, Episode::Open { .. })
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        super::decline::episode_since(c)
    }

    fn supersede(&self, c: &mut Customer) {
        c.decline = Episode::Normal;
    }
}

/// The figures behind a decline decision, carried in the alert payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub recent_events: u32,
    pub baseline_events: u32,
    pub expected_events: f64,
    pub ratio: f64,
    pub p_value: f64,
    /// Per activity kind: (kind, recent events, baseline events).
    pub by_kind: Vec<(Kind, u32, u32)>,
}

/// Whether the customer needs a bucket-boundary check: they have enough
/// history to decline, or an episode is in progress.
pub fn is_candidate(p: &Params, c: &Customer, now_bucket: i64) -> bool {
    c.decline != Episode::Normal || c.activity.sum(now_bucket - p.recent_buckets - p.baseline_buckets, now_bucket, p.kinds) >= p.min_baseline_events
}

/// Runs the state machine at `now_bucket` for a trigger at `trigger_ms`
/// (the event's time or the timer's deadline).
pub fn evaluate(p: &Params, c: &mut Customer, first_seen_bucket: i64, now_bucket: i64, trigger_ms: i64) -> Option<Signal> {
    if let Episode::Cooldown { until } = c.decline {
        if now_bucket < until {
            return None;
        }
        c.decline = Episode::Normal;
    }
    let recent_from = now_bucket - p.recent_buckets;
    let baseline_from = recent_from - p.baseline_buckets;
    let recent = c.activity.sum(recent_from, now_bucket, p.kinds);
    match c.decline {
        Episode::Open { episode_ms, expected } => {
            let expected = f64::from(expected);
            if f64::from(recent) < p.resolve_ratio * expected {
                return None;
            }
            c.decline = Episode::Cooldown { until: now_bucket + p.cooldown_buckets };
            let report = report(p, c, recent, expected, now_bucket);
            Some(Signal::resolved(ACTIVITY_DECLINE, episode_ms, trigger_ms, report))
        }
        _ => {
            if first_seen_bucket > baseline_from {
                return None; // not observed over the whole baseline yet
            }
            let baseline = c.activity.sum(baseline_from, recent_from, p.kinds);
            if baseline < p.min_baseline_events {
                return None;
            }
            let expected = f64::from(baseline) * p.recent_buckets as f64 / p.baseline_buckets as f64;
            if f64::from(recent) > p.open_ratio * expected || p_value(p, recent, baseline) >= p.significance {
                return None;
            }
            c.decline = Episode::Open { episode_ms: trigger_ms, expected: expected as f32 };
            let report = report(p, c, recent, expected, now_bucket);
            Some(Signal::opened(ACTIVITY_DECLINE, trigger_ms, report))
        }
    }
}

/// P(recent ≤ observed) if the rate had not changed, conditional on the
/// total over both windows.
fn p_value(p: &Params, recent: u32, baseline: u32) -> f64 {
    let share = p.recent_buckets as f64 / (p.recent_buckets + p.baseline_buckets) as f64;
    binomial_cdf(recent, recent.saturating_add(baseline), share)
}

fn report(p: &Params, c: &Customer, recent: u32, expected: f64, now_bucket: i64) -> Report {
    let recent_from = now_bucket - p.recent_buckets;
    let baseline_from = recent_from - p.baseline_buckets;
    let by_kind = p
        .kinds
        .iter()
        .map(|k| (k, c.activity.sum_kind(recent_from, now_bucket, k), c.activity.sum_kind(baseline_from, recent_from, k)))
        .collect();
    Report {
        recent_events: recent,
        baseline_events: c.activity.sum(baseline_from, recent_from, p.kinds),
        expected_events: expected,
        ratio: if expected > 0.0 { f64::from(recent) / expected } else { 1.0 },
        p_value: p_value(p, recent, c.activity.sum(baseline_from, recent_from, p.kinds)),
        by_kind,
    }
}

/// The `io.care.activity_decline.v1` payload: the window test's figures.
#[derive(Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    recent_events: u32,
    baseline_events: u32,
    expected_events: f64,
    ratio: f64,
    p_value: f64,
    window: WindowInfo,
    by_kind: BTreeMap<&'static str, RecentBaseline>,
}

#[derive(Serialize)]
struct RecentBaseline {
    recent: u32,
    baseline: u32,
}

impl Body for Report {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, cx.started, cx.window, self))
    }
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, started: String, window: WindowInfo, r: &Report) -> Payload<'a> {
        Payload {
            head,
            episode_started_at: started,
            recent_events: r.recent_events,
            baseline_events: r.baseline_events,
            expected_events: round(r.expected_events, 4),
            ratio: round(r.ratio, 4),
            p_value: r.p_value,
            window,
            by_kind: r.by_kind.iter().map(|&(k, recent, baseline)| (k.as_str(), RecentBaseline { recent, baseline })).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Status;
    use crate::state::Customer;

    fn params() -> Params {
        Params::new(&DeclineConfig::default(), KindSet::ALL)
    }

    /// A customer with `per_day` clicks on each of `days` days starting at day 0.
    fn steady(p: &Params, days: i64, per_day: u32) -> Customer {
        let mut c = Customer::new("c".into(), 0, p.window_width());
        for d in 0..days {
            for _ in 0..per_day {
                c.activity.add(d, Kind::Click);
            }
        }
        c
    }

    #[test]
    fn steady_customer_never_declines() {
        let p = params();
        let mut c = steady(&p, 40, 3);
        assert!(evaluate(&p, &mut c, 0, 40, 0).is_none());
    }

    #[test]
    fn a_stop_opens_once_then_resolves_on_recovery() {
        let p = params();
        let mut c = steady(&p, 28, 3); // active days 0..28, silent from day 28
        // Day 30: recent = days 23..30 → 5 active days of 3 = 15 of 21 expected: not yet.
        assert!(evaluate(&p, &mut c, 0, 30, 1).is_none());
        // Day 33: recent = days 26..33 → 6 events of 21 expected: ratio 0.29, p ≈ 0.0002.
        let opened = evaluate(&p, &mut c, 0, 33, 2).expect("opens");
        let report = opened.body::<Report>().expect("a decline report");
        assert_eq!((opened.status(), opened.episode_ms()), (Status::Opened, 2));
        assert_eq!((report.recent_events, report.baseline_events), (6, 63));
        assert!((report.expected_events - 21.0).abs() < 1e-9);
        assert!(report.p_value < 0.01);
        assert!(evaluate(&p, &mut c, 0, 34, 3).is_none(), "one alert per episode");
        // Activity comes back: 20 clicks in days 34..41.
        for d in 34..41 {
            for _ in 0..3 {
                c.activity.add(d, Kind::Click);
            }
        }
        let resolved = evaluate(&p, &mut c, 0, 41, 4).expect("resolves");
        assert_eq!((resolved.status(), resolved.episode_ms(), resolved.trigger_ms()), (Status::Resolved, 2, 4), "{resolved:?}");
        assert_eq!(c.decline, Episode::Cooldown { until: 48 });
    }

    #[test]
    fn low_volume_customers_are_not_judged() {
        let p = params();
        let mut c = steady(&p, 28, 0);
        for d in (0..21).step_by(2) {
            c.activity.add(d, Kind::Login); // 11 baseline events < 20
        }
        assert!(evaluate(&p, &mut c, 0, 35, 0).is_none());
    }

    #[test]
    fn customers_newer_than_the_baseline_are_not_judged() {
        let p = params();
        // Active days 0..28 then silent; at day 40 the baseline starts on day 12.
        let mut c = steady(&p, 28, 5);
        assert!(evaluate(&p, &mut c, 12, 40, 0).is_some(), "seen since the baseline began: judged");
        let mut c = steady(&p, 28, 5);
        assert!(evaluate(&p, &mut c, 13, 40, 0).is_none(), "first seen inside the baseline: not judged");
    }
}
