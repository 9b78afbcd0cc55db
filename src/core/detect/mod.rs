//! CARE detectors: pure per-customer state machines.
//!
//! Each detector is a [`Detector`]: it moves a customer's episode normal →
//! open → (cooldown) → normal on the customer's own activity or timer, never
//! by a sweep over all customers, names its next deadline, and says what
//! happened as a [`Signal`]; rendering signals to records is
//! [`crate::render`]'s job. The engine knows no detector by name: it runs
//! those the [`registry`] enables, in the registry's order, and applies the
//! supersession each declares ([`Detector::supersedes`]).

pub mod csat_low;
pub mod decline;
pub mod dormancy;
pub mod first_order;
pub mod nps_detractor;
pub mod registry;
pub mod sequential;
pub mod silence;
pub mod stats;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::event::Event;
use crate::render::TopicRole;
use crate::state::Customer;
use crate::time::Buckets;

pub use registry::{enabled, Enabled};

/// A bad key of a detector's config table (`detect.<name>.<key>`).
pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// The default of a detector table's `enabled` when it is on by default.
pub(crate) fn yes() -> bool {
    true
}

/// A detector's name, as supersession declarations and the registry use it.
/// Alternative methods of one signal (the two decline methods) share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DetectorId(pub &'static str);

/// When, and under what rules, a detector is asked to decide.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// Stream time on an event, the logical time on a timer: windows end
    /// in the bucket this falls in.
    pub now_ms: i64,
    /// Every on-time event before this instant is in: stream time minus the
    /// allowed lateness on an event, the logical time on a timer.
    pub sealed_ms: i64,
    /// What triggered the decision: the event's time or the timer's. An
    /// episode opened now is named by it.
    pub trigger_ms: i64,
    pub buckets: Buckets,
    /// An episode of a detector that supersedes this one is open, or was
    /// open at some point of this moment: this one must not open.
    pub superseded: bool,
}

/// An on-time activity event, after it was folded into the customer.
#[derive(Debug, Clone, Copy)]
pub struct ActivityEvent {
    pub ts_ms: i64,
    /// The customer's last activity before this event.
    pub previous_ms: Option<i64>,
}

/// One CARE detector: stateless itself (its parameters only); the per-customer
/// state it moves lives in the customer's state block for it.
pub trait Detector: fmt::Debug + Send + Sync {
    fn id(&self) -> DetectorId;

    /// Stream time moved: called on every on-time event of the customer
    /// before it is folded, and on every timer before `on_timer`, so buckets
    /// that became sealed are decided first. Each method appends what it
    /// decided to `out`, in event-time order: one moment can open and close
    /// an episode.
    fn advance(&self, _c: &mut Customer, _at: Moment, _out: &mut Vec<Signal>) {}

    // The defaults below are those of a detector that reacts to events
    // only, with no episode and no timer (first order, NPS detractor): its
    // file implements `id`, `signal_types`, `wants_events` and `on_event`.

    /// The customer acted (an activity kind, on time).
    fn on_activity(&self, _c: &mut Customer, _at: Moment, _ev: ActivityEvent, _out: &mut Vec<Signal>) {}

    /// The customer's timer fired at `at.now_ms`.
    fn on_timer(&self, _c: &mut Customer, _at: Moment, _out: &mut Vec<Signal>) {}

    /// When this detector next needs to look at the customer if nothing
    /// happens (logical time; the engine adds the allowed lateness).
    fn next_deadline(&self, _c: &Customer, _at: Moment) -> Option<i64> {
        None
    }

    /// Whether the customer has an open episode of this detector.
    fn is_open(&self, _c: &Customer) -> bool {
        false
    }

    /// Closes an open episode without a message: a stronger one opened.
    fn supersede(&self, _c: &mut Customer) {}

    /// The detectors whose episodes this one's supersede: while one of its
    /// episodes is open they do not open, and opening one closes theirs
    /// without a message (a dormant customer is not also "declining").
    /// Detectors that declare nothing stand beside all others. The registry
    /// lists each detector after every one that supersedes it.
    fn supersedes(&self) -> &'static [DetectorId] {
        &[]
    }

    /// Any on-time event of the customer, of any kind (surveys and tickets
    /// too), after it was folded into the customer's lifetime figures and
    /// window and the activity detectors ran on it.
    ///
    /// Late events (older than stream time minus the allowed lateness) never
    /// come here: they fold into lifetime figures only and never raise or
    /// retract an alert (SPEC, "Time"). A detector sees what they changed
    /// in those figures at the customer's next on-time event or timer.
    fn on_event(&self, _c: &mut Customer, _at: Moment, _ev: &Event, _out: &mut Vec<Signal>) {}

    /// Whether it implements `on_event`. The engine skips that pass when no
    /// enabled detector does, so the default config's hot path pays nothing
    /// for it (an empty pass on every event measured about 5 % more CPU in
    /// a debug `care demo`, on a noisy machine).
    fn wants_events(&self) -> bool {
        false
    }

    /// The signal types it emits (for summaries of what is enabled).
    fn signal_types(&self) -> &'static [SignalType];
}

/// Something a detector decided about one customer.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// Activity fell significantly below the customer's baseline.
    DeclineOpened { episode_ms: i64, report: decline::Report },
    /// Activity recovered; closes the episode opened at `episode_ms`.
    DeclineResolved { episode_ms: i64, at_ms: i64, report: decline::Report },
    /// The sequential statistic crossed its threshold (v2 payload).
    SequentialOpened { episode_ms: i64, evidence: sequential::Evidence },
    /// The sequential statistic of recovery crossed it.
    SequentialResolved { episode_ms: i64, at_ms: i64, evidence: sequential::Evidence },
    /// Quiet for longer than the customer's rate makes plausible.
    SilenceOpened { episode_ms: i64, overdue: silence::Overdue },
    /// The silent customer acted again.
    SilenceResolved { episode_ms: i64, at_ms: i64, overdue: silence::Overdue },
    /// No activity for `after_days`: a reactivation trigger.
    Dormant { episode_ms: i64, last_activity_ms: i64, score: dormancy::Score },
    /// A dormant customer acted again.
    Reactivated { episode_ms: i64, at_ms: i64, days_away: f64 },
    /// The customer's first order, at `at_ms`.
    FirstOrder { at_ms: i64, first_seen_ms: i64, amount: Option<f64> },
    /// A detractor answer (NPS 0–6), at `at_ms`.
    NpsDetractor { at_ms: i64, evidence: nps_detractor::Evidence },
    /// The window's CSAT fell to the open level with enough answers.
    CsatLowOpened { episode_ms: i64, figures: csat_low::Figures },
    /// An answer lifted it above the exit level.
    CsatLowResolved { episode_ms: i64, at_ms: i64, figures: csat_low::Figures },
}

/// The kinds of output, for metric labels and `replay --report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalType {
    ActivityDecline,
    Silence,
    Dormant,
    Reactivated,
    FirstOrder,
    NpsDetractor,
    CsatLow,
}

impl SignalType {
    pub const ALL: [SignalType; 7] = [
        SignalType::ActivityDecline,
        SignalType::Silence,
        SignalType::Dormant,
        SignalType::Reactivated,
        SignalType::FirstOrder,
        SignalType::NpsDetractor,
        SignalType::CsatLow,
    ];

    /// The name in `ce_type` (`io.care.<name>.v1`) and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::ActivityDecline => "activity_decline",
            SignalType::Silence => "silence",
            SignalType::Dormant => "dormant",
            SignalType::Reactivated => "reactivated",
            SignalType::FirstOrder => "first_order",
            SignalType::NpsDetractor => "nps_detractor",
            SignalType::CsatLow => "csat_low",
        }
    }

    pub fn idx(self) -> usize {
        self as usize
    }

    /// The topic its messages go to.
    pub fn role(self) -> TopicRole {
        match self {
            SignalType::ActivityDecline | SignalType::Silence | SignalType::FirstOrder | SignalType::NpsDetractor | SignalType::CsatLow => TopicRole::Alerts,
            SignalType::Dormant | SignalType::Reactivated => TopicRole::Reactivation,
        }
    }
}

/// Which message of an episode a signal is; in `ce_id` and the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Opened,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Opened => "opened",
            Status::Resolved => "resolved",
        }
    }
}

impl Signal {
    /// Which output type this signal becomes.
    pub fn signal_type(&self) -> SignalType {
        match self {
            Signal::DeclineOpened { .. }
            | Signal::DeclineResolved { .. }
            | Signal::SequentialOpened { .. }
            | Signal::SequentialResolved { .. } => SignalType::ActivityDecline,
            Signal::SilenceOpened { .. } | Signal::SilenceResolved { .. } => SignalType::Silence,
            Signal::Dormant { .. } => SignalType::Dormant,
            Signal::Reactivated { .. } => SignalType::Reactivated,
            Signal::FirstOrder { .. } => SignalType::FirstOrder,
            Signal::NpsDetractor { .. } => SignalType::NpsDetractor,
            Signal::CsatLowOpened { .. } | Signal::CsatLowResolved { .. } => SignalType::CsatLow,
        }
    }

    /// Event time of the trigger: the event or the timer deadline.
    pub fn trigger_ms(&self) -> i64 {
        match self {
            Signal::DeclineOpened { episode_ms, .. }
            | Signal::SequentialOpened { episode_ms, .. }
            | Signal::SilenceOpened { episode_ms, .. }
            | Signal::Dormant { episode_ms, .. }
            | Signal::CsatLowOpened { episode_ms, .. } => *episode_ms,
            Signal::DeclineResolved { at_ms, .. }
            | Signal::CsatLowResolved { at_ms, .. }
            | Signal::SequentialResolved { at_ms, .. }
            | Signal::SilenceResolved { at_ms, .. }
            | Signal::Reactivated { at_ms, .. }
            | Signal::FirstOrder { at_ms, .. }
            | Signal::NpsDetractor { at_ms, .. } => *at_ms,
        }
    }

    /// The episode this signal belongs to (the time of the trigger that opened it).
    pub fn episode_ms(&self) -> i64 {
        match self {
            Signal::DeclineOpened { episode_ms, .. }
            | Signal::DeclineResolved { episode_ms, .. }
            | Signal::SequentialOpened { episode_ms, .. }
            | Signal::SequentialResolved { episode_ms, .. }
            | Signal::SilenceOpened { episode_ms, .. }
            | Signal::SilenceResolved { episode_ms, .. }
            | Signal::Dormant { episode_ms, .. }
            | Signal::Reactivated { episode_ms, .. }
            | Signal::CsatLowOpened { episode_ms, .. }
            | Signal::CsatLowResolved { episode_ms, .. } => *episode_ms,
            Signal::FirstOrder { at_ms, .. } | Signal::NpsDetractor { at_ms, .. } => *at_ms,
        }
    }

    /// Whether this signal opens an episode (and so supersedes weaker ones).
    pub fn opens(&self) -> bool {
        self.status() == Status::Opened
    }

    /// Distinguishes the messages of one episode.
    pub fn status(&self) -> Status {
        match self {
            Signal::DeclineOpened { .. }
            | Signal::SequentialOpened { .. }
            | Signal::SilenceOpened { .. }
            | Signal::Dormant { .. }
            | Signal::FirstOrder { .. }
            | Signal::NpsDetractor { .. }
            | Signal::CsatLowOpened { .. } => Status::Opened,
            Signal::DeclineResolved { .. }
            | Signal::SequentialResolved { .. }
            | Signal::SilenceResolved { .. }
            | Signal::Reactivated { .. }
            | Signal::CsatLowResolved { .. } => Status::Resolved,
        }
    }

    /// The payload's version: with the signal type, its `ce_type`
    /// (`render::CE_TYPES`).
    pub fn version(&self) -> u8 {
        match self {
            Signal::SequentialOpened { .. } | Signal::SequentialResolved { .. } => 2,
            _ => 1,
        }
    }
}
