//! Purchase-churn risk (`io.care.purchase_churn_risk.v1`, alerts topic): a
//! repeat buyer worth keeping whose BG/NBD probability of still being a
//! buyer fell below `p_alive_threshold`, at the moment it falls, and
//! `resolved` at their next order. Needs a fit (`[value] params`); without
//! one it does not run.
//!
//! P(alive) falls with time alone (T grows), so the crossing has a closed
//! form: P(alive) < θ ⇔ T > T* =
//! (α + t_x)·[((1 − θ)/θ)·(b + x − 1)/a]^(1/(r + x)) − α.
//! The customer's timer is set for the first whole day whose T exceeds T*,
//! as the summary counts days. It also waits for the
//! customer's own usual gap between purchase days (t_x ÷ x) to have passed
//! since the last one: for a customer whose history says they rarely
//! return, P(alive) is below θ right after every order, and without this
//! rule the alert would open on every order; with it, it opens once they
//! are late by their own rhythm.
//!
//! It stands beside the activity chain (a customer can keep browsing and
//! stop buying); dormancy supersedes it. A crossing that passes while the
//! customer is dormant, or below the value floor, raises nothing until
//! their next order re-arms it.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::purchases::{self, PurchaseHistory};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{invalid, yes, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::{Event, Kind};
use crate::model::value::{figures, Figures};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_zigzag, CodecError, Reader};

/// The `[detect.purchase_churn]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseChurnConfig {
    /// On by default; runs only with a fit loaded (`[value] params`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Repeat purchase days (x) a buyer needs before they are judged.
    #[serde(default = "default_min_repeat_purchases")]
    pub min_repeat_purchases: u32,
    /// Predicted CLV at or above which a buyer is worth an alert.
    #[serde(default)]
    pub min_predicted_clv: f64,
    /// θ: the alert opens when P(alive) falls below it.
    #[serde(default = "default_p_alive_threshold")]
    pub p_alive_threshold: f64,
}

fn default_min_repeat_purchases() -> u32 {
    2
}

fn default_p_alive_threshold() -> f64 {
    0.3
}

impl Default for PurchaseChurnConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl PurchaseChurnConfig {
    /// Checks the `[detect.purchase_churn]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.p_alive_threshold > 0.0 && self.p_alive_threshold < 1.0) {
            return Err(invalid("detect.purchase_churn.p_alive_threshold", "must be between 0 and 1"));
        }
        if !(self.min_predicted_clv >= 0.0 && self.min_predicted_clv.is_finite()) {
            return Err(invalid("detect.purchase_churn.min_predicted_clv", "must be a number at least 0"));
        }
        if self.min_repeat_purchases == 0 {
            return Err(invalid("detect.purchase_churn.min_repeat_purchases", "must be at least 1 (P(alive) is 1 without a repeat purchase)"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("purchase_churn");

/// The registry's entry: on when a fit is loaded; dormancy supersedes it.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| {
        let value = purchases::ValueContext::from_config(cfg).filter(|_| cfg.detect.purchase_churn.enabled)?;
        Some(Box::new(PurchaseChurn::new(cfg, value)) as Box<dyn Detector>)
    },
    window_width: |_| 0,
    signals: &[PURCHASE_CHURN_RISK],
    blocks: &[&BLOCK],
};

/// `purchase_churn_risk`, on the alerts topic.
pub const PURCHASE_CHURN_RISK: SignalType = SignalType(&SignalDef {
    name: "purchase_churn_risk",
    destination: Destination::Alerts,
    outage_guarded: false,
    versions: &[(1, "io.care.purchase_churn_risk.v1")],
});

/// The open episode, kept in `Customer::detectors` under [`ID`] while open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Open {
    pub since_ms: i64,
}

/// The detector, with the fit and thresholds.
#[derive(Debug, Clone)]
pub struct PurchaseChurn {
    value: purchases::ValueContext,
    min_repeat: u32,
    min_clv: f64,
    theta: f64,
}

impl PurchaseChurn {
    pub fn new(cfg: &Config, value: purchases::ValueContext) -> PurchaseChurn {
        let c = &cfg.detect.purchase_churn;
        PurchaseChurn {
            value,
            min_repeat: c.min_repeat_purchases,
            min_clv: c.min_predicted_clv,
            theta: c.p_alive_threshold,
        }
    }

    /// The first day P(alive) is below θ and the usual gap has passed, for
    /// a buyer with enough repeat purchases.
    pub fn due_day(&self, h: &PurchaseHistory) -> Option<i64> {
        let d = &h.days;
        let x = d.days.checked_sub(1).filter(|x| *x >= self.min_repeat.max(1))?;
        let crossing = self.value.p_alive_below_day(h, self.theta)?;
        let gap_days = (d.last_day - d.first_day) as f64 / f64::from(x);
        let late_by_rhythm = d.last_day as f64 + gap_days.ceil();
        let day = crossing.max(late_by_rhythm).max(d.last_day as f64 + 1.0);
        (day.is_finite() && day < 1e12).then_some(day as i64)
    }

    fn figures(&self, h: &PurchaseHistory, day: i64) -> Figures {
        figures(&self.value.fit, &self.value.horizon, &h.days, day)
    }

    fn risk(&self, h: &PurchaseHistory, day: i64) -> Risk {
        let f = self.figures(h, day);
        let x = f.frequency.max(1);
        Risk {
            figures: f,
            days_since_last_order: (day - h.days.last_day).max(0),
            usual_gap_days: (h.days.last_day - h.days.first_day) as f64 / f64::from(x),
            threshold: self.theta,
            fit_calibration_end: self.value.fit.calibration_end.clone(),
        }
    }
}

impl Detector for PurchaseChurn {
    fn id(&self) -> DetectorId {
        ID
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        if at.superseded || self.is_open(c) {
            return;
        }
        let Some(h) = purchases::history(c, self.value.days) else { return };
        // Only the due day's own timer opens it: a crossing that passed
        // while the customer was dormant or worth less than the floor
        // raises nothing until an order sets a new one, whichever other
        // timer (a profile's, a tier's) wakes the customer later.
        let day = self.value.days.of(at.now_ms);
        if self.due_day(&h) != Some(day) {
            return;
        }
        let risk = self.risk(&h, day);
        let (p_alive, clv) = (risk.figures.p_alive.unwrap_or(1.0), risk.figures.predicted_clv.unwrap_or(0.0));
        if p_alive < self.theta && clv >= self.min_clv {
            c.detectors.insert(ID.0, Open { since_ms: at.trigger_ms });
            out.push(Signal::opened(PURCHASE_CHURN_RISK, at.trigger_ms, risk));
        }
    }

    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        if at.superseded || self.is_open(c) {
            return None;
        }
        let due = self.due_day(&purchases::history(c, self.value.days)?)?;
        Some(self.value.days.start_ms(due)).filter(|t| *t > at.sealed_ms)
    }

    fn is_open(&self, c: &Customer) -> bool {
        c.detectors.get::<Open>(ID.0).is_some()
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        c.detectors.get::<Open>(ID.0).map(|o| o.since_ms)
    }

    fn supersede(&self, c: &mut Customer) {
        c.detectors.remove(ID.0);
    }

    fn hooks(&self) -> Hooks {
        Hooks::TIMERS.and(Hooks::EPISODES).and(Hooks::EVENTS)
    }

    /// An on-time order resolves the episode; the purchase days already
    /// hold it (the purchases detector runs first).
    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        let Some(open) = c.detectors.get::<Open>(ID.0).copied() else { return };
        if ev.kind != Kind::Order {
            return;
        }
        c.detectors.remove(ID.0);
        let Some(h) = purchases::history(c, self.value.days) else { return };
        out.push(Signal::resolved(PURCHASE_CHURN_RISK, open.since_ms, ev.ts_ms, self.risk(&h, self.value.days.of(ev.ts_ms))));
    }
}

/// What an alert carries: the figures at its moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Risk {
    pub figures: Figures,
    pub days_since_last_order: i64,
    pub usual_gap_days: f64,
    pub threshold: f64,
    pub fit_calibration_end: String,
}

/// The `io.care.purchase_churn_risk.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    p_alive: f64,
    p_alive_threshold: f64,
    repeat_purchases: u32,
    days_since_last_order: i64,
    usual_gap_days: f64,
    predicted_clv: Option<f64>,
    expected_avg_value: Option<f64>,
    fit_calibration_end: String,
}

impl Body for Risk {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        let f = &self.figures;
        to_value(Payload {
            head: cx.head,
            episode_started_at: cx.started,
            p_alive: round(f.p_alive.unwrap_or(1.0), 4),
            p_alive_threshold: self.threshold,
            repeat_purchases: f.frequency,
            days_since_last_order: self.days_since_last_order,
            usual_gap_days: round(self.usual_gap_days, 2),
            predicted_clv: f.predicted_clv.map(|v| round(v, 2)),
            expected_avg_value: f.expected_avg_value.map(|v| round(v, 2)),
            fit_calibration_end: self.fit_calibration_end.clone(),
        })
    }
}

/// The changelog block of [`Open`], while an episode is open.
pub const BLOCK: StateBlock = StateBlock { id: 9, version: 1, name: "purchase churn", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    if let Some(open) = c.detectors.get::<Open>(ID.0) {
        put_zigzag(out, open.since_ms);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.detectors.insert(ID.0, Open { since_ms: p.zigzag("purchase_churn.since_ms")? });
    Ok(())
}

#[cfg(test)]
#[path = "purchase_churn_tests.rs"]
mod tests;
