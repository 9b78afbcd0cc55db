//! The JSON payload of each signal: one struct per payload deriving
//! `Serialize`, defined in its detector's file, its fields the schema's
//! (`src/core/schemas/<ce_type>.json`), each starting with the [`Head`]
//! every message shares.
//!
//! A payload is serialised through a `serde_json::Value`, whose objects
//! keep their keys sorted, so the bytes never depend on field order.

use serde::Serialize;
use serde_json::Value;

use super::rfc3339;
use crate::detect::{csat_low, decline, dormancy, first_order, nps_detractor, sequential, silence, Signal, Status};

/// What a payload reads from the config besides the signal.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WindowInfo {
    pub bucket_secs: u32,
    pub recent_buckets: u16,
    pub baseline_buckets: u16,
}

/// The fields every message starts with.
#[derive(Debug, Serialize)]
pub struct Head<'a> {
    customer_id: &'a str,
    status: Status,
    /// The trigger's event time.
    at: String,
}

impl<'a> Head<'a> {
    fn new(customer: &'a str, s: &Signal) -> Head<'a> {
        Head { customer_id: customer, status: s.status(), at: rfc3339(s.trigger_ms()) }
    }
}

/// The payload of `s` about `customer`.
pub(super) fn payload(window: WindowInfo, customer: &str, s: &Signal) -> Value {
    let head = Head::new(customer, s);
    let started = rfc3339(s.episode_ms());
    match s {
        Signal::DeclineOpened { report, .. } | Signal::DeclineResolved { report, .. } => to_value(decline::Payload::new(head, started, window, report)),
        Signal::SequentialOpened { evidence, .. } | Signal::SequentialResolved { evidence, .. } => {
            to_value(sequential::Payload::new(head, started, window, evidence))
        }
        Signal::SilenceOpened { overdue, .. } | Signal::SilenceResolved { overdue, .. } => to_value(silence::Payload::new(head, started, overdue)),
        Signal::Dormant { episode_ms, last_activity_ms, score } => to_value(dormancy::DormantPayload::new(head, *episode_ms, *last_activity_ms, score)),
        Signal::Reactivated { days_away, .. } => to_value(dormancy::ReactivatedPayload::new(head, started, *days_away)),
        Signal::FirstOrder { at_ms, first_seen_ms, amount } => to_value(first_order::Payload::new(head, *at_ms, *first_seen_ms, *amount)),
        Signal::NpsDetractor { evidence, .. } => to_value(nps_detractor::Payload::new(head, evidence)),
        Signal::CsatLowOpened { episode_ms, figures } | Signal::CsatLowResolved { episode_ms, figures, .. } => {
            to_value(csat_low::Payload::new(head, *episode_ms, figures))
        }
    }
}

fn to_value(p: impl Serialize) -> Value {
    serde_json::to_value(p).expect("payloads serialise")
}
