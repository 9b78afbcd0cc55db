//! Dormancy and reactivation: at last activity + `after_days` a customer
//! turns dormant and gets a reactivation trigger with a score; when a dormant
//! customer acts again, a `reactivated` message closes the loop. With a fit
//! loaded (`[value] params`) the score also weighs the customer's P(alive)
//! and predicted CLV.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{decline, invalid, purchase_churn, purchases, silence, yes, ActivityEvent, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::time::rfc3339;
use crate::wire::{put_zigzag, CodecError, Reader};

const DAY_MS: f64 = 86_400_000.0;

/// The changelog block of `Customer::dormant_since`: the deadline the open
/// episode began at, while open.
pub const BLOCK: StateBlock = StateBlock { id: 2, version: 1, name: "dormancy", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    if let Some(since) = c.dormant_since {
        put_zigzag(out, since);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.dormant_since = Some(p.zigzag("dormant_since")?);
    Ok(())
}

/// Dormancy: no activity for a long time → reactivation trigger.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DormancyConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days after the last activity at which a customer turns dormant.
    #[serde(default = "default_after_days")]
    pub after_days: u16,
    /// Lifetime spend at which the score's monetary part reaches 63% (1 − 1/e).
    #[serde(default = "default_monetary_scale")]
    pub monetary_scale: f64,
}

fn default_monetary_scale() -> f64 {
    100.0
}

fn default_after_days() -> u16 {
    60
}

impl Default for DormancyConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}


impl DormancyConfig {
    /// Checks the `[detect.dormancy]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.after_days == 0 {
            return Err(invalid("detect.dormancy.after_days", "must be at least 1"));
        }
        if !(self.monetary_scale > 0.0) {
            return Err(invalid("detect.dormancy.monetary_scale", "must be greater than 0"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("dormancy");

/// The registry's entry: on by default, strongest of the activity chain.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.dormancy.enabled.then(|| Box::new(Dormancy(Params::from_config(cfg))) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[DORMANT, REACTIVATED],
    blocks: &[&BLOCK],
};

/// `dormant`: the reactivation trigger, on the reactivation topic.
pub const DORMANT: SignalType = SignalType(&SignalDef { name: "dormant", destination: Destination::Reactivation, outage_guarded: false, versions: &[(1, "io.care.dormant.v1")] });

/// `reactivated`: a dormant customer acted again; closes the dormancy
/// episode, on the reactivation topic.
pub const REACTIVATED: SignalType =
    SignalType(&SignalDef { name: "reactivated", destination: Destination::Reactivation, outage_guarded: false, versions: &[(1, "io.care.reactivated.v1")] });

/// Thresholds, copied from config once.
#[derive(Debug, Clone)]
pub struct Params {
    pub after_ms: i64,
    pub after_days: f64,
    pub monetary_scale: f64,
    /// The fit the score's value components come from, when one is loaded.
    pub value: Option<purchases::ValueContext>,
}

impl Params {
    pub fn new(cfg: &DormancyConfig) -> Params {
        Params {
            after_ms: i64::from(cfg.after_days) * 86_400_000,
            after_days: f64::from(cfg.after_days),
            monetary_scale: cfg.monetary_scale,
            value: None,
        }
    }

    /// With the score's value components, when `cfg` loads a fit and keeps
    /// purchase days.
    pub fn from_config(cfg: &Config) -> Params {
        Params { value: purchases::ValueContext::from_config(cfg), ..Params::new(&cfg.detect.dormancy) }
    }
}

/// The dormancy detector: opens with a reactivation trigger, resolves with
/// `reactivated`.
#[derive(Debug, Clone)]
pub struct Dormancy(pub Params);

impl Detector for Dormancy {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::ACTIVITY.and(Hooks::TIMERS).and(Hooks::EPISODES)
    }

    /// A dormant customer is not also silent, declining or a lapsing buyer.
    fn supersedes(&self) -> &'static [DetectorId] {
        &[silence::ID, decline::ID, purchase_churn::ID]
    }

    /// Reactivates a dormant customer. An event after the deadline whose
    /// timer has not fired yet first turns the customer dormant as of the
    /// deadline (scored as they were before the event), then reactivates
    /// it, so the messages do not depend on which arrived first.
    fn on_activity(&self, c: &mut Customer, _: Moment, ev: ActivityEvent, out: &mut Vec<Signal>) {
        let overdue = ev.previous_ms.map(|last| (last, last.saturating_add(self.0.after_ms))).filter(|(_, due)| *due < ev.ts_ms);
        if let (None, Some((last, due))) = (c.dormant_since, overdue) {
            let mut before = c.clone();
            (before.last_activity_ms, before.activity_events) = (Some(last), c.activity_events.saturating_sub(1));
            c.dormant_since = Some(due);
            out.push(Signal::opened(DORMANT, due, Dormant { last_activity_ms: last, score: score(&self.0, &before, due) }));
        }
        out.extend(on_activity(c, ev.ts_ms, ev.previous_ms));
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        out.extend(on_time(&self.0, c, at.now_ms));
    }

    fn next_deadline(&self, c: &Customer, _: Moment) -> Option<i64> {
        deadline(&self.0, c)
    }

    fn is_open(&self, c: &Customer) -> bool {
        c.dormant_since.is_some()
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        c.dormant_since
    }

    fn supersede(&self, c: &mut Customer) {
        c.dormant_since = None;
    }
}

/// Reactivation potential in [0, 1] and the components it averages, each in
/// [0, 1]: four, and with a fit loaded six. Documented in the README.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub score: f64,
    /// Length of the relationship against the absence: span / (span + after_days).
    pub recency: f64,
    /// 1 − e^(−activity events / 50).
    pub frequency: f64,
    /// 1 − e^(−lifetime spend / monetary_scale).
    pub monetary: f64,
    /// Satisfied CSAT share with a uniform prior: (satisfied + 1) / (responses + 2).
    pub satisfaction: f64,
    /// With a fit: BG/NBD P(alive) at the score's day for a repeat buyer;
    /// for anyone else (P(alive) is 1 by the model's construction without
    /// a repeat purchase) the recency component instead.
    pub p_alive: Option<f64>,
    /// With a fit: 1 − e^(−predicted CLV / monetary_scale); 0 without orders.
    pub predicted_value: Option<f64>,
    /// With a fit: the predicted CLV itself, over `value.horizon_days`.
    pub predicted_clv: Option<f64>,
}

/// A reactivation trigger's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Dormant {
    pub last_activity_ms: i64,
    pub score: Score,
}

/// A reactivation's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Reactivated {
    /// From the last activity before the episode to the return.
    pub days_away: f64,
}

impl Body for Dormant {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(DormantPayload::new(cx.head, cx.episode_ms, self.last_activity_ms, &self.score))
    }
}

impl Body for Reactivated {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(ReactivatedPayload::new(cx.head, cx.started, self.days_away))
    }
}

/// When the customer turns dormant if nothing happens, if they can.
pub fn deadline(p: &Params, c: &Customer) -> Option<i64> {
    match (c.dormant_since, c.last_activity_ms) {
        (None, Some(last)) => Some(last.saturating_add(p.after_ms)),
        _ => None,
    }
}

/// Called when the stream time reaches `now_ms`.
pub fn on_time(p: &Params, c: &mut Customer, now_ms: i64) -> Option<Signal> {
    let due = deadline(p, c).filter(|d| *d <= now_ms)?;
    c.dormant_since = Some(due);
    Some(Signal::opened(DORMANT, due, Dormant { last_activity_ms: c.last_activity_ms.unwrap_or(due), score: score(p, c, due) }))
}

/// Called on an activity event at `ts_ms`; `previous_ms` is the last
/// activity before it.
pub fn on_activity(c: &mut Customer, ts_ms: i64, previous_ms: Option<i64>) -> Option<Signal> {
    let since = c.dormant_since.take()?;
    let last = previous_ms.unwrap_or(since);
    let days_away = ((ts_ms - last) as f64 / DAY_MS).max(0.0);
    Some(Signal::resolved(REACTIVATED, since, ts_ms, Reactivated { days_away }))
}

/// The reactivation-potential score of a customer at `at_ms` (turning
/// dormant, or read).
pub fn score(p: &Params, c: &Customer, at_ms: i64) -> Score {
    let span_days = c.last_activity_ms.map_or(0.0, |l| (l - c.first_seen_ms).max(0) as f64 / DAY_MS);
    let recency = span_days / (span_days + p.after_days);
    let frequency = 1.0 - (-f64::from(c.activity_events) / 50.0).exp();
    let monetary = 1.0 - (-c.orders.total_amount / p.monetary_scale).exp();
    let satisfaction = (f64::from(c.csat.satisfied) + 1.0) / (f64::from(c.csat.responses) + 2.0);
    let mut s = Score { score: 0.0, recency, frequency, monetary, satisfaction, p_alive: None, predicted_value: None, predicted_clv: None };
    let Some(v) = &p.value else {
        s.score = (recency + frequency + monetary + satisfaction) / 4.0;
        return s;
    };
    let figures = v.figures(c, at_ms).map(|(h, f)| (h.days.days, f));
    let repeat_p_alive = figures.and_then(|(days, f)| f.p_alive.filter(|_| days > 1));
    s.predicted_clv = figures.and_then(|(_, f)| f.predicted_clv);
    let (alive, value) = (repeat_p_alive.unwrap_or(recency), 1.0 - (-s.predicted_clv.unwrap_or(0.0) / p.monetary_scale).exp());
    (s.p_alive, s.predicted_value) = (Some(alive), Some(value));
    s.score = (recency + frequency + monetary + satisfaction + alive + value) / 6.0;
    s
}

/// The `io.care.dormant.v1` payload: the reactivation trigger.
#[derive(Serialize)]
pub struct DormantPayload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    last_activity_at: String,
    days_inactive: f64,
    reactivation_score: f64,
    score_components: ScoreComponents,
}

#[derive(Serialize)]
struct ScoreComponents {
    recency: f64,
    frequency: f64,
    monetary: f64,
    satisfaction: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p_alive: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_value: Option<f64>,
}

impl<'a> DormantPayload<'a> {
    pub fn new(head: Head<'a>, episode_ms: i64, last_activity_ms: i64, score: &Score) -> DormantPayload<'a> {
        DormantPayload {
            head,
            last_activity_at: rfc3339(last_activity_ms),
            days_inactive: round((episode_ms - last_activity_ms) as f64 / DAY_MS, 3),
            reactivation_score: round(score.score, 4),
            score_components: ScoreComponents {
                recency: round(score.recency, 4),
                frequency: round(score.frequency, 4),
                monetary: round(score.monetary, 4),
                satisfaction: round(score.satisfaction, 4),
                p_alive: score.p_alive.map(|v| round(v, 4)),
                predicted_value: score.predicted_value.map(|v| round(v, 4)),
            },
        }
    }
}

/// The `io.care.reactivated.v1` payload.
#[derive(Serialize)]
pub struct ReactivatedPayload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    dormant_since: String,
    days_away: f64,
}

impl<'a> ReactivatedPayload<'a> {
    pub fn new(head: Head<'a>, dormant_since: String, days_away: f64) -> ReactivatedPayload<'a> {
        ReactivatedPayload { head, dormant_since, days_away: round(days_away, 3) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params::new(&DormancyConfig::default())
    }

    #[test]
    fn turns_dormant_exactly_at_the_deadline_once() {
        let p = params();
        let mut c = Customer::new("c".into(), 0, 3);
        c.last_activity_ms = Some(1_000);
        let due = 1_000 + 60 * 86_400_000;
        assert_eq!(deadline(&p, &c), Some(due));
        assert!(on_time(&p, &mut c, due - 1).is_none());
        let s = on_time(&p, &mut c, due).expect("dormant");
        assert_eq!((s.signal_type(), s.episode_ms(), s.body::<Dormant>().unwrap().last_activity_ms), (DORMANT, due, 1_000));
        assert!(on_time(&p, &mut c, due + 10).is_none(), "one trigger per episode");
        assert_eq!(deadline(&p, &c), None);
        let back = on_activity(&mut c, 1_000 + 90 * 86_400_000, Some(1_000)).expect("reactivated");
        assert_eq!((back.signal_type(), back.episode_ms()), (REACTIVATED, due));
        assert!((back.body::<Reactivated>().unwrap().days_away - 90.0).abs() < 1e-9);
        assert!(on_activity(&mut c, 0, Some(1_000)).is_none());
    }

    #[test]
    fn with_a_fit_the_score_weighs_p_alive_and_predicted_value() {
        let cfg = crate::test_support::with_fit("");
        let p = Params::from_config(&cfg);
        let v = p.value.clone().expect("a fit is loaded");
        let mut c = Customer::new("c".into(), 0, 3);
        c.last_activity_ms = Some(100 * 86_400_000);
        let mut h = purchases::PurchaseHistory::new(0, 50.0);
        h.add(40, 50.0);
        h.add(100, 50.0);
        c.detectors.insert(purchases::ID.0, h);
        c.orders.total_amount = 150.0;
        let at = 160 * 86_400_000;
        let s = score(&p, &c, at);
        let f = crate::model::value::figures(&v.fit, &v.horizon, &h.days, 160);
        assert_eq!((s.p_alive, s.predicted_clv), (f.p_alive, f.predicted_clv));
        assert!((s.predicted_value.unwrap() - (1.0 - (-f.predicted_clv.unwrap() / 100.0).exp())).abs() < 1e-12);
        let mean = (s.recency + s.frequency + s.monetary + s.satisfaction + s.p_alive.unwrap() + s.predicted_value.unwrap()) / 6.0;
        assert!((s.score - mean).abs() < 1e-12);
        // One purchase day: P(alive) is 1 by construction, recency stands in.
        c.detectors.insert(purchases::ID.0, purchases::PurchaseHistory::new(0, 50.0));
        let once = score(&p, &c, at);
        assert_eq!(once.p_alive, Some(once.recency));
        // Never ordered: no predicted value.
        let mut never = Customer::new("n".into(), 0, 3);
        never.last_activity_ms = Some(86_400_000);
        let s = score(&p, &never, at);
        assert_eq!((s.p_alive, s.predicted_value, s.predicted_clv), (Some(s.recency), Some(0.0), None));
        assert!(score(&Params::new(&DormancyConfig::default()), &never, at).p_alive.is_none(), "no fit, four components");
    }

    #[test]
    fn score_known_answer() {
        let p = params();
        let mut c = Customer::new("c".into(), 0, 3);
        c.last_activity_ms = Some(60 * 86_400_000); // 60-day relationship, 60 days away
        c.activity_events = 50;
        c.orders.total_amount = 100.0;
        c.csat.responses = 2;
        c.csat.satisfied = 2;
        let s = score(&p, &c, 60 * 86_400_000);
        let e1 = 1.0 - (-1.0f64).exp();
        assert!((s.recency - 0.5).abs() < 1e-12);
        assert!((s.frequency - e1).abs() < 1e-12 && (s.monetary - e1).abs() < 1e-12);
        assert!((s.satisfaction - 0.75).abs() < 1e-12);
        assert!((s.score - (0.5 + 2.0 * e1 + 0.75) / 4.0).abs() < 1e-12);
    }
}
