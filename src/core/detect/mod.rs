//! CARE detectors: pure per-customer state machines.
//!
//! Each detector moves a customer's episode normal → open → cooldown and says
//! what happened as a [`Signal`]; rendering signals to records is
//! [`crate::render`]'s job. Decisions happen only on the customer's own event
//! or the customer's own timer, never by a sweep over all customers.

pub mod decline;
pub mod dormancy;
pub mod stats;

/// Something a detector decided about one customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Activity fell significantly below the customer's baseline.
    DeclineOpened { episode_ms: i64, report: decline::Report },
    /// Activity recovered; closes the episode opened at `episode_ms`.
    DeclineResolved { episode_ms: i64, at_ms: i64, report: decline::Report },
    /// No activity for `after_days`: a reactivation trigger.
    Dormant { episode_ms: i64, last_activity_ms: i64, score: dormancy::Score },
    /// A dormant customer acted again.
    Reactivated { episode_ms: i64, at_ms: i64, days_away: f64 },
}

/// The kinds of output, for metric labels and `replay --report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalType {
    ActivityDecline,
    Dormant,
    Reactivated,
}

impl SignalType {
    pub const ALL: [SignalType; 3] = [SignalType::ActivityDecline, SignalType::Dormant, SignalType::Reactivated];

    /// The name in `ce_type` (`io.care.<name>.v1`) and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::ActivityDecline => "activity_decline",
            SignalType::Dormant => "dormant",
            SignalType::Reactivated => "reactivated",
        }
    }

    pub fn idx(self) -> usize {
        self as usize
    }
}

impl Signal {
    /// Which output type this signal becomes.
    pub fn signal_type(&self) -> SignalType {
        match self {
            Signal::DeclineOpened { .. } | Signal::DeclineResolved { .. } => SignalType::ActivityDecline,
            Signal::Dormant { .. } => SignalType::Dormant,
            Signal::Reactivated { .. } => SignalType::Reactivated,
        }
    }

    /// Event time of the trigger: the event or the timer deadline.
    pub fn trigger_ms(&self) -> i64 {
        match self {
            Signal::DeclineOpened { episode_ms, .. } | Signal::Dormant { episode_ms, .. } => *episode_ms,
            Signal::DeclineResolved { at_ms, .. } | Signal::Reactivated { at_ms, .. } => *at_ms,
        }
    }

    /// The episode this signal belongs to (the time of the trigger that opened it).
    pub fn episode_ms(&self) -> i64 {
        match self {
            Signal::DeclineOpened { episode_ms, .. }
            | Signal::DeclineResolved { episode_ms, .. }
            | Signal::Dormant { episode_ms, .. }
            | Signal::Reactivated { episode_ms, .. } => *episode_ms,
        }
    }

    /// `opened`, `resolved`, ...: distinguishes messages of one episode.
    pub fn status(&self) -> &'static str {
        match self {
            Signal::DeclineOpened { .. } | Signal::Dormant { .. } => "opened",
            Signal::DeclineResolved { .. } | Signal::Reactivated { .. } => "resolved",
        }
    }
}
