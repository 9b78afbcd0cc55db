//! NPS detractor: a likelihood-to-recommend answer of 0 to 6 is an alert
//! (`io.care.nps_detractor.v1`, on the alerts topic), so a support or
//! success team can call the customer while the answer is fresh. On by
//! default (SPEC, "CARE signals": a detractor answer is an alert).
//!
//! One message per alerting answer, `opened`, never resolved: a detractor
//! answer is a fact, not an episode. At most one per customer per
//! `min_days_between` (default 30): a customer answering every ticket's
//! survey with a 3 is called once a month, not at every ticket; answers in
//! between fold into the figures the next alert carries. It stands beside
//! the activity chain, superseding nothing and superseded by nothing: a
//! detractor who is also going quiet gets both messages. Decided in
//! `on_event`, so an answer on any kind counts (a `survey` record, or a
//! chat or ticket carrying one); a late answer folds into the tallies but
//! raises nothing (late events never raise an alert).
//!
//! Population NPS (% promoters − % detractors over all customers) is a
//! loyalty metric, not an alert; the payload carries the customer's own.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{invalid, yes, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::Event;
use crate::state::codec::StateBlock;
use crate::state::{Customer, NpsTally};
use crate::wire::{put_zigzag, CodecError, Reader};

const DAY_MS: i64 = 86_400_000;

/// Answers of this or lower are detractors (NPS: 0–6).
pub const DETRACTOR_MAX: u8 = 6;

/// The `[detect.nps_detractor]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NpsDetractorConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At most one alert per customer in this many days; 0 alerts on every
    /// detractor answer. Default 30.
    #[serde(default = "default_min_days_between")]
    pub min_days_between: u32,
}

fn default_min_days_between() -> u32 {
    30
}

impl Default for NpsDetractorConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl NpsDetractorConfig {
    /// # Errors
    /// `min_days_between` is beyond ten years (a typo, not a policy).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_days_between > 3653 {
            return Err(invalid("detect.nps_detractor.min_days_between", "must be at most 3653 (ten years)"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("nps_detractor");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| {
        let c = &cfg.detect.nps_detractor;
        let value = crate::detect::purchases::ValueContext::from_config(cfg);
        c.enabled.then(|| Box::new(NpsDetractor { min_gap_ms: i64::from(c.min_days_between) * DAY_MS, value }) as Box<dyn Detector>)
    },
    window_width: |_| 0,
    signals: &[NPS_DETRACTOR],
    blocks: &[&BLOCK],
};

/// `nps_detractor`, on the alerts topic.
pub const NPS_DETRACTOR: SignalType =
    SignalType(&SignalDef { name: "nps_detractor", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.nps_detractor.v1")] });

/// What the detector remembers of a customer once it alerted: the answer
/// the last alert was about. Kept in `Customer::detectors` under [`ID`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Alerted {
    pub last_alert_ms: i64,
}

/// The answer the customer's last alert was about, if any.
pub fn last_alert_ms(c: &Customer) -> Option<i64> {
    c.detectors.get::<Alerted>(ID.0).map(|a| a.last_alert_ms)
}

/// The changelog block of [`Alerted`], once there is one.
pub const BLOCK: StateBlock = StateBlock { id: 6, version: 1, name: "nps detractor", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    if let Some(at) = last_alert_ms(c) {
        put_zigzag(out, at);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.detectors.insert(ID.0, Alerted { last_alert_ms: p.zigzag("nps_alerted_ms")? });
    Ok(())
}

/// The detector: alerts on detractor answers, at most one per `min_gap_ms`.
#[derive(Debug, Clone)]
pub struct NpsDetractor {
    min_gap_ms: i64,
    /// With a fit loaded: the customer's value figures go in the alert.
    value: Option<crate::detect::purchases::ValueContext>,
}

/// What an alert carries besides the answer: the customer's figures after
/// folding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub score: u8,
    pub nps: NpsTally,
    /// Lifetime orders and spend: the value figures a team sorts its calls
    /// by, until predicted value is in the stream.
    pub orders: u32,
    pub total_spent: f64,
    /// The answer the previous alert was about, if any.
    pub previous_alert_ms: Option<i64>,
    /// With a fit loaded and for a customer who ordered: P(alive) and
    /// predicted CLV at the answer's day, so a team calls its most
    /// valuable detractors first.
    pub p_alive: Option<f64>,
    pub predicted_clv: Option<f64>,
}

impl Detector for NpsDetractor {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::EVENTS
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        let Some(score) = ev.nps.filter(|s| *s <= DETRACTOR_MAX) else { return };
        // An on-time answer older than the last alert's (out of order within
        // the lateness) is measured from it too: never two alerts closer
        // than the gap.
        let previous = last_alert_ms(c);
        if previous.is_some_and(|p| (ev.ts_ms - p).abs() < self.min_gap_ms) {
            return;
        }
        c.detectors.insert(ID.0, Alerted { last_alert_ms: previous.map_or(ev.ts_ms, |p| p.max(ev.ts_ms)) });
        let value = self.value.as_ref().and_then(|v| v.figures(c, ev.ts_ms)).map(|(_, f)| f);
        let evidence = Evidence {
            score,
            nps: c.nps.clone(),
            orders: c.orders.count,
            total_spent: c.orders.total_amount,
            previous_alert_ms: previous,
            p_alive: value.and_then(|f| f.p_alive),
            predicted_clv: value.and_then(|f| f.predicted_clv),
        };
        out.push(Signal::single(NPS_DETRACTOR, ev.ts_ms, evidence));
    }
}

/// The customer's own NPS in percent: % promoters − % detractors, from
/// −100 to 100; `None` before any answer.
pub fn nps_percent(t: &NpsTally) -> Option<f64> {
    (t.responses > 0).then(|| (f64::from(t.promoters) - f64::from(t.detractors)) / f64::from(t.responses) * 100.0)
}

impl Body for Evidence {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, self))
    }
}

/// The `io.care.nps_detractor.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    /// The answer, 0–6.
    score: u8,
    /// The customer's lifetime answers, this one included.
    nps_responses: u32,
    promoters: u32,
    detractors: u32,
    /// The customer's own NPS, rounded to 1 decimal.
    customer_nps: f64,
    orders: u32,
    total_spent: f64,
    previous_alert_at: Option<String>,
    p_alive: Option<f64>,
    predicted_clv: Option<f64>,
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, e: &Evidence) -> Payload<'a> {
        Payload {
            head,
            score: e.score,
            nps_responses: e.nps.responses,
            promoters: e.nps.promoters,
            detractors: e.nps.detractors,
            customer_nps: round(nps_percent(&e.nps).unwrap_or(-100.0), 1),
            orders: e.orders,
            total_spent: round(e.total_spent, 2),
            previous_alert_at: e.previous_alert_ms.map(crate::time::rfc3339),
            p_alive: e.p_alive.map(|p| round(p, 4)),
            predicted_clv: e.predicted_clv.map(|v| round(v, 2)),
        }
    }
}

#[cfg(test)]
#[path = "nps_detractor_tests.rs"]
mod tests;
