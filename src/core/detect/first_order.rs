//! First order: a customer's first order, with the days from first seen to
//! it (`io.care.first_order.v1`, on the alerts topic). Off by default.
//!
//! One message, `opened`, never resolved: there is no episode to close. It
//! stands beside the activity chain, superseding nothing and superseded by
//! nothing, so a dormant customer's first order is announced along with
//! their reactivation. Decided in `on_event` from the lifetime order count,
//! so it keeps no state of its own: the on-time order that makes the count
//! one is the first. An order that arrives late raises nothing (late events
//! never raise an alert) yet is counted, so a customer whose first order
//! was late gets no message; an on-time order older than one already
//! announced (out of order within the lateness) does not announce again.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::{Event, Kind};
use crate::time::rfc3339;
use crate::state::Customer;

/// The `[detect.first_order]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FirstOrderConfig {
    /// Off by default: a lifecycle message, not a retention alert.
    #[serde(default)]
    pub enabled: bool,
}

impl Default for FirstOrderConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl FirstOrderConfig {
    /// Every value of its one key is valid.
    pub(crate) fn validate(&self) -> Result<(), crate::config::ConfigError> {
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("first_order");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.first_order.enabled.then(|| Box::new(FirstOrder) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[FIRST_ORDER],
    blocks: &[],
};

/// `first_order`, on the alerts topic.
pub const FIRST_ORDER: SignalType =
    SignalType(&SignalDef { name: "first_order", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.first_order.v1")] });

/// The first-order detector: no parameters.
#[derive(Debug, Clone)]
pub struct FirstOrder;

impl Detector for FirstOrder {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::EVENTS
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        if ev.kind == Kind::Order && c.orders.count == 1 {
            out.push(Signal::single(FIRST_ORDER, ev.ts_ms, Order { first_seen_ms: c.first_seen_ms, amount: ev.amount }));
        }
    }
}

/// The first order's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub first_seen_ms: i64,
    /// The order's amount, if it had one.
    pub amount: Option<f64>,
}

impl Body for Order {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, cx.trigger_ms, self.first_seen_ms, self.amount))
    }
}

/// The `io.care.first_order.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    first_seen_at: String,
    /// From first seen to the order, in days, rounded to 3 decimals.
    days_from_first_seen: f64,
    /// The order's amount, if it had one.
    amount: Option<f64>,
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, at_ms: i64, first_seen_ms: i64, amount: Option<f64>) -> Payload<'a> {
        Payload {
            head,
            first_seen_at: rfc3339(first_seen_ms),
            days_from_first_seen: round((at_ms - first_seen_ms).max(0) as f64 / 86_400_000.0, 3),
            amount,
        }
    }
}

#[cfg(test)]
#[path = "first_order_tests.rs"]
mod tests;
