//! Silence / overdue: a customer with enough history has been quiet for
//! longer than their own rate makes plausible.
//!
//! The rate is the customer's lifetime gap rate, μ = (activity events − 1)
//! ÷ days from first seen to last activity: every gap between two events
//! counts, the open one does not. (The decline detector's 3-week baseline
//! was tried instead: noisier, so more false alerts.) If gaps were
//! exponential at μ a day, a
//! customer would have about 30.44 μ gaps a month and a gap outlasts t days
//! with probability e^(−μt); the deadline after the last activity is the t
//! at which a steady customer would raise `false_alerts_per_1000_customer_months`:
//!
//! ```text
//! t = ln(30.44 μ × 1000 ÷ target) ÷ μ, at least `min_gap_secs`
//! ```
//!
//! Weekly patterns and bursts make real gaps less regular than that; the
//! measured rate is in BENCHMARKS.md (QUALITY). Fired by the customer's
//! stream-time timer (no event arrives to reveal silence); any activity
//! event resolves it. No state beyond the open episode's start: the rate
//! comes from the lifetime figures every customer keeps.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{decline, invalid, yes, ActivityEvent, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::time::rfc3339;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_zigzag, CodecError, Reader};

const DAY_MS: f64 = 86_400_000.0;
const MONTH_DAYS: f64 = 365.25 / 12.0;

/// The changelog block of `Customer::silent_since`: the deadline the open
/// episode began at, while open.
pub const BLOCK: StateBlock = StateBlock { id: 4, version: 1, name: "silence", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    if let Some(since) = c.silent_since {
        put_zigzag(out, since);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.silent_since = Some(p.zigzag("silent_since")?);
    Ok(())
}

/// Silence / overdue: quiet for longer than the customer's own rate makes
/// plausible.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At most this many false alerts per 1,000 steady customer-months if
    /// gaps were exponential at the customer's rate (replaces a per-gap
    /// quantile, which at 1.5 events a day raised 0.45 a customer-month).
    #[serde(default = "default_silence_false_alerts")]
    pub false_alerts_per_1000_customer_months: f64,
    /// Fewer lifetime activity events than this: never overdue.
    #[serde(default = "default_silence_min_events")]
    pub min_events: u32,
    /// Less history (first seen to last activity) than this: never overdue.
    #[serde(default = "default_silence_min_history_days")]
    pub min_history_days: u32,
    /// Never overdue after less quiet than this, however busy the customer.
    /// A week by default: any 7 days hold one whole weekly cycle, so a quiet
    /// weekend cannot make a steady customer look overdue (busy customers'
    /// declines are caught sooner by the decline detector anyway).
    #[serde(default = "default_silence_min_gap_secs")]
    pub min_gap_secs: u64,
}

fn default_silence_false_alerts() -> f64 {
    0.05
}
fn default_silence_min_events() -> u32 {
    10
}
fn default_silence_min_history_days() -> u32 {
    28
}
fn default_silence_min_gap_secs() -> u64 {
    7 * 86_400
}

impl Default for SilenceConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}


impl SilenceConfig {
    /// Checks the `[detect.silence]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let s = self;
        if !(s.false_alerts_per_1000_customer_months > 0.0 && s.false_alerts_per_1000_customer_months <= 1000.0) {
            return Err(invalid("detect.silence.false_alerts_per_1000_customer_months", "must be in (0, 1000]"));
        }
        if s.min_events < 2 {
            return Err(invalid("detect.silence.min_events", "must be at least 2 (a rate needs a gap)"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("silence");

/// The registry's entry: on by default.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.silence.enabled.then(|| Box::new(Silence(Params::new(&cfg.detect.silence))) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[SILENCE],
    blocks: &[&BLOCK],
};

/// `silence`, on the alerts topic.
pub const SILENCE: SignalType =
    SignalType(&SignalDef { name: "silence", destination: Destination::Alerts, outage_guarded: true, versions: &[(1, "io.care.silence.v1")] });

/// Thresholds, copied from config once.
#[derive(Debug, Clone)]
pub struct Params {
    /// Allowed false alerts per customer-month (the setting ÷ 1000).
    pub per_month: f64,
    pub min_events: u32,
    pub min_history_ms: i64,
    pub min_gap_ms: i64,
}

impl Params {
    pub fn new(cfg: &SilenceConfig) -> Params {
        Params {
            per_month: cfg.false_alerts_per_1000_customer_months / 1000.0,
            min_events: cfg.min_events,
            min_history_ms: i64::from(cfg.min_history_days) * 86_400_000,
            min_gap_ms: i64::try_from(cfg.min_gap_secs).unwrap_or(i64::MAX / 4_000).saturating_mul(1000),
        }
    }

    /// The quiet time, in days, after which a customer with gap rate `mu`
    /// (a day) is overdue.
    pub fn overdue_days(&self, mu: f64) -> f64 {
        (MONTH_DAYS * mu / self.per_month).ln().max(0.0) / mu
    }
}

/// What a silence message says about the customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue {
    /// The last activity before the silence.
    pub last_activity_ms: i64,
    /// The lifetime gap rate, events a day, up to that activity.
    pub rate_per_day: f64,
    /// Quiet days: up to the deadline (opened) or the return (resolved).
    pub days_silent: f64,
}

/// (activity events − 1) ÷ days from first seen to `last_ms`.
fn gap_rate(events: u32, first_ms: i64, last_ms: i64) -> f64 {
    f64::from(events.saturating_sub(1)) / ((last_ms - first_ms).max(1) as f64 / DAY_MS)
}

/// The customer's gap rate a day and the deadline, if they are judged.
pub fn deadline(p: &Params, c: &Customer) -> Option<(f64, i64)> {
    if c.silent_since.is_some() {
        return None;
    }
    deadline_after(p, c.activity_events, c.first_seen_ms, c.last_activity_ms?)
}

/// The deadline after the last of `events` activity events, at `last_ms`.
fn deadline_after(p: &Params, events: u32, first_ms: i64, last_ms: i64) -> Option<(f64, i64)> {
    if events < p.min_events || last_ms - first_ms < p.min_history_ms {
        return None;
    }
    let mu = gap_rate(events, first_ms, last_ms);
    let gap_ms = ((p.overdue_days(mu) * DAY_MS) as i64).max(p.min_gap_ms);
    Some((mu, last_ms.saturating_add(gap_ms)))
}

/// The silence detector.
#[derive(Debug, Clone)]
pub struct Silence(pub Params);

impl Detector for Silence {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::ACTIVITY.and(Hooks::TIMERS).and(Hooks::EPISODES)
    }

    /// A silent customer is not also declining.
    fn supersedes(&self) -> &'static [DetectorId] {
        &[decline::ID]
    }

    /// Resolves an open silence. An event after a deadline whose timer has
    /// not fired yet (it fires once stream time is the lateness past it)
    /// first opens the silence that happened, so the messages do not depend
    /// on which arrived first.
    fn on_activity(&self, c: &mut Customer, at: Moment, ev: ActivityEvent, out: &mut Vec<Signal>) {
        // Never overdue sooner than the minimum gap: most events stop here.
        let gap = ev.previous_ms.filter(|last| ev.ts_ms - last > self.0.min_gap_ms);
        if let (Some(last), None, false) = (gap, c.silent_since, at.superseded) {
            // The deadline as it stood before this event.
            let missed = deadline_after(&self.0, c.activity_events.saturating_sub(1), c.first_seen_ms, last);
            if let Some((mu, due)) = missed.filter(|(_, due)| *due < ev.ts_ms) {
                out.push(opened(c, last, mu, due));
            }
        }
        out.extend(self.resolve(c, ev));
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        out.extend(self.open(c, at));
    }

    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        if at.superseded {
            return None;
        }
        deadline(&self.0, c).map(|(_, due)| due)
    }

    fn is_open(&self, c: &Customer) -> bool {
        c.silent_since.is_some()
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        c.silent_since
    }

    fn supersede(&self, c: &mut Customer) {
        c.silent_since = None;
    }
}

impl Silence {
    fn resolve(&self, c: &mut Customer, ev: ActivityEvent) -> Option<Signal> {
        let since = c.silent_since.take()?;
        let last = ev.previous_ms.unwrap_or(since);
        let days_silent = (ev.ts_ms - last).max(0) as f64 / DAY_MS;
        // The rate as it was when the silence began: without this event.
        let rate_per_day = gap_rate(c.activity_events.saturating_sub(1), c.first_seen_ms, last);
        let overdue = Overdue { last_activity_ms: last, rate_per_day, days_silent };
        Some(Signal::resolved(SILENCE, since, ev.ts_ms, overdue))
    }

    fn open(&self, c: &mut Customer, at: Moment) -> Option<Signal> {
        if at.superseded {
            return None;
        }
        let (mu, due) = deadline(&self.0, c).filter(|(_, due)| *due <= at.now_ms)?;
        let last = c.last_activity_ms.unwrap_or(due);
        Some(opened(c, last, mu, due))
    }
}

/// Opens the episode of a customer overdue at `due` since `last`, at gap
/// rate `mu` a day.
fn opened(c: &mut Customer, last: i64, mu: f64, due: i64) -> Signal {
    c.silent_since = Some(due);
    let overdue = Overdue { last_activity_ms: last, rate_per_day: mu, days_silent: (due - last) as f64 / DAY_MS };
    Signal::opened(SILENCE, due, overdue)
}

/// The `io.care.silence.v1` payload.
#[derive(Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    last_activity_at: String,
    days_silent: f64,
    rate_per_day: f64,
    expected_gap_days: f64,
}

impl Body for Overdue {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, cx.started, self))
    }
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, started: String, o: &Overdue) -> Payload<'a> {
        Payload {
            head,
            episode_started_at: started,
            last_activity_at: rfc3339(o.last_activity_ms),
            days_silent: round(o.days_silent, 3),
            rate_per_day: round(o.rate_per_day, 4),
            expected_gap_days: round(1.0 / o.rate_per_day.max(1e-9), 3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SilenceConfig;
    use crate::detect::Status;
    use crate::time::Buckets;

    const DAY: i64 = 86_400_000;

    fn params() -> Params {
        Params::new(&SilenceConfig::default())
    }

    fn at(ms: i64) -> Moment {
        Moment { now_ms: ms, trigger_ms: ms, sealed_ms: ms, buckets: Buckets { bucket_ms: DAY, offset_ms: 0 }, superseded: false, outage: crate::detect::Outage::NONE }
    }

    /// A customer with `n` activity events spread evenly over `days` days.
    fn customer(n: u32, days: i64) -> Customer {
        let mut c = Customer::new("c".into(), 0, 9);
        (c.activity_events, c.last_activity_ms) = (n, Some(days * DAY));
        c
    }

    #[test]
    fn overdue_time_known_answer() {
        let p = params();
        let target = SilenceConfig::default().false_alerts_per_1000_customer_months / 1000.0;
        // 2 a day: ln(30.4375 × 2 ÷ target) ÷ 2.
        assert!((p.overdue_days(2.0) - (MONTH_DAYS * 2.0 / target).ln() / 2.0).abs() < 1e-12);
        // A steady exponential customer then raises `target` false alerts a month.
        for mu in [0.5, 1.0, 4.0] {
            let per_month = MONTH_DAYS * mu * (-mu * p.overdue_days(mu)).exp();
            assert!((per_month - target).abs() < 1e-12, "{mu}: {per_month}");
        }
    }

    #[test]
    fn opens_at_the_deadline_once_and_any_activity_resolves_it() {
        let p = params();
        let s = Silence(p.clone());
        let mut c = customer(61, 60); // 1 a day over 60 days
        let (mu, due) = deadline(&p, &c).unwrap();
        assert!((mu - 1.0).abs() < 1e-12);
        assert_eq!(due, 60 * DAY + (p.overdue_days(1.0) * DAY as f64) as i64);
        assert!(s.open(&mut c, at(due - 1)).is_none(), "not yet");
        let opened = s.open(&mut c, at(due)).expect("opens at the deadline");
        let overdue = opened.body::<Overdue>().unwrap();
        assert_eq!((opened.status(), opened.episode_ms(), overdue.last_activity_ms), (Status::Opened, due, 60 * DAY));
        assert!(s.open(&mut c, at(due + DAY)).is_none(), "one alert per episode");
        assert_eq!(s.next_deadline(&c, at(due)), None, "no timer while open");
        let ev = ActivityEvent { ts_ms: due + DAY, previous_ms: Some(60 * DAY) };
        c.activity_events += 1; // the engine counts the event first
        let mut out = Vec::new();
        s.on_activity(&mut c, at(due + DAY), ev, &mut out);
        let [resolved] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(resolved.status(), Status::Resolved);
        let (episode_ms, overdue) = (resolved.episode_ms(), resolved.body::<Overdue>().unwrap().clone());
        assert_eq!((episode_ms, overdue.last_activity_ms), (due, 60 * DAY));
        assert!((overdue.days_silent - (due + DAY - 60 * DAY) as f64 / DAY as f64).abs() < 1e-9);
        assert!((overdue.rate_per_day - 1.0).abs() < 1e-12, "the rate before the return");
        assert_eq!(c.silent_since, None);
    }

    #[test]
    fn customers_with_little_history_are_not_judged_and_the_gap_has_a_floor() {
        let p = params();
        assert_eq!(deadline(&p, &customer(5, 60)), None, "too few events");
        assert_eq!(deadline(&p, &customer(100, 10)), None, "too short a history");
        let (_, due) = deadline(&p, &customer(60_000, 60)).unwrap();
        assert_eq!(due, 60 * DAY + p.min_gap_ms, "a thousand a day still waits the minimum gap");
    }
}
