//! A customer's raw state as JSON, for operators (`care state`) and for
//! tests that compare restored state with replayed state field by field.
//! Unlike the scorecard it derives nothing: every field of the state is
//! here, times as epoch milliseconds.

use serde::Serialize;

use crate::state::{Customer, CsatTally, Episode, NpsTally, OrderStats};

/// Every field of one customer's state.
#[derive(Debug, Serialize)]
pub struct CustomerDump<'a> {
    pub customer_id: &'a str,
    pub first_seen_ms: i64,
    pub last_activity_ms: Option<i64>,
    /// Per kind, in kind order (click, login, chat, ticket, order).
    pub last_seen_ms: [Option<i64>; 5],
    pub activity_events: u32,
    pub orders: &'a OrderStats,
    pub csat: &'a CsatTally,
    pub nps: &'a NpsTally,
    pub decline: EpisodeDump,
    pub silent_since_ms: Option<i64>,
    pub dormant_since_ms: Option<i64>,
    /// The customer's pending timer (deadline plus allowed lateness).
    pub timer_at_ms: Option<i64>,
    /// Recent `event_id` fingerprints, oldest first.
    pub event_ids: Vec<u32>,
    /// Nonzero activity counts held: (bucket, kind, count), newest first.
    pub activity: Vec<(i64, &'static str, u16)>,
}

/// A detector episode.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EpisodeDump {
    Normal,
    Open { episode_ms: i64, expected: f32 },
    Cooldown { until_bucket: i64 },
}

impl<'a> CustomerDump<'a> {
    pub fn new(c: &'a Customer) -> CustomerDump<'a> {
        CustomerDump {
            customer_id: &c.id,
            first_seen_ms: c.first_seen_ms,
            last_activity_ms: c.last_activity_ms,
            last_seen_ms: c.last_seen_ms,
            activity_events: c.activity_events,
            orders: &c.orders,
            csat: &c.csat,
            nps: &c.nps,
            decline: match c.decline {
                Episode::Normal => EpisodeDump::Normal,
                Episode::Open { episode_ms, expected } => EpisodeDump::Open { episode_ms, expected },
                Episode::Cooldown { until } => EpisodeDump::Cooldown { until_bucket: until },
            },
            silent_since_ms: c.silent_since,
            dormant_since_ms: c.dormant_since,
            timer_at_ms: c.timer_at(),
            event_ids: c.recent_event_ids().collect(),
            activity: c.activity.nonzero().map(|(b, k, n)| (b, k.as_str(), n)).collect(),
        }
    }
}
