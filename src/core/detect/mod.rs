//! CARE detectors: pure per-customer state machines.
//!
//! Each detector is a [`Detector`]: it moves a customer's episode normal →
//! open → (cooldown) → normal on the customer's own activity or timer, never
//! by a sweep over all customers, names its next deadline, and says what
//! happened as a [`Signal`] whose typed body renders its own payload
//! ([`signal`]); the signal types are declared in the detectors' files. The engine knows no detector by name: it runs
//! those the [`registry`] enables, in the registry's order, and applies the
//! supersession each declares ([`Detector::supersedes`]).

pub mod csat_low;
pub mod decline;
pub mod dormancy;
pub mod falling_csat;
pub mod first_order;
pub mod nps_detractor;
pub mod purchase_churn;
pub mod purchases;
pub mod retention;
pub mod registry;
pub mod sequential;
pub mod signal;
pub mod silence;
pub mod stats;
pub mod ticket_surge;
pub mod tiers;

use std::fmt;

use crate::config::ConfigError;
use crate::event::Event;
use crate::state::Customer;
use crate::time::Buckets;

pub use registry::{enabled, Enabled};
pub use signal::{Body, Destination, Signal, SignalDef, SignalType, Status};

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
    /// The task's last upstream outage: its empty buckets say nothing of
    /// any customer, so baselines do not learn them.
    pub outage: Outage,
}

/// The days of event time of a task's last upstream outage, as the outage
/// guard found them (`engine::guard`): from a day before the first short
/// day to the end of the day that cleared it (`i64::MAX` while tripped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub from_ms: i64,
    pub until_ms: i64,
}

impl Outage {
    /// No outage seen.
    pub const NONE: Outage = Outage { from_ms: i64::MAX, until_ms: i64::MAX };

    /// Whether any instant of `[start_ms, end_ms)` falls in the outage.
    pub fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        start_ms < self.until_ms && self.from_ms < end_ms
    }
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
    // file implements `id`, `hooks` (`Hooks::EVENTS`) and `on_event`.

    /// The customer acted (an activity kind, on time).
    fn on_activity(&self, _c: &mut Customer, _at: Moment, _ev: ActivityEvent, _out: &mut Vec<Signal>) {}

    /// The customer's timer fired at `at.now_ms`.
    fn on_timer(&self, _c: &mut Customer, _at: Moment, _out: &mut Vec<Signal>) {}

    /// When this detector next needs to look at the customer if nothing
    /// happens (logical time; the engine adds the allowed lateness). A
    /// deadline up to `at.sealed_ms` has had its timer; one after it has
    /// not, even when it is before `at.now_ms`.
    fn next_deadline(&self, _c: &Customer, _at: Moment) -> Option<i64> {
        None
    }

    /// Whether the customer has an open episode of this detector.
    fn is_open(&self, _c: &Customer) -> bool {
        false
    }

    /// When the customer's open episode began (its episode id, the
    /// trigger time of its `opened`), if one is open: for profiles.
    fn open_since(&self, _c: &Customer) -> Option<i64> {
        None
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

    /// An event older than stream time minus the allowed lateness, after
    /// it was folded into the customer's lifetime figures: a detector that
    /// keeps lifetime figures of its own (purchase days) folds it too. It
    /// decides nothing here: late events never raise or retract an alert.
    /// Called only on detectors whose hooks have `Hooks::EVENTS`.
    fn on_late_event(&self, _c: &mut Customer, _ev: &Event) {}

    /// Which of the hooks above it implements: the engine calls only
    /// those, so a detector costs the hot path what it does and no more (a
    /// call that does nothing is still a virtual call, an emptied signal
    /// buffer and the episode bookkeeping, about 45 instructions, several
    /// times an event). The default is every hook but the events: a
    /// detector that declares nothing is called as it always was. Declaring
    /// a hook it does not implement costs only time; leaving out one it
    /// implements loses its decisions, which the engine's test of every
    /// registry detector with and without its declaration catches.
    fn hooks(&self) -> Hooks {
        Hooks::ADVANCE.and(Hooks::ACTIVITY).and(Hooks::TIMERS).and(Hooks::EPISODES)
    }
}

/// A set of [`Detector`] hooks, by what the engine asks of a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hooks(u8);

impl Hooks {
    /// `advance`.
    pub const ADVANCE: Hooks = Hooks(1);
    /// `on_activity`.
    pub const ACTIVITY: Hooks = Hooks(2);
    /// `on_timer` and `next_deadline`.
    pub const TIMERS: Hooks = Hooks(4);
    /// `is_open`, `open_since` and `supersede`: it has episodes.
    pub const EPISODES: Hooks = Hooks(8);
    /// `on_event` and `on_late_event`.
    pub const EVENTS: Hooks = Hooks(16);

    /// Both sets.
    pub const fn and(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    /// Whether every hook of `other` is in this set.
    pub const fn has(self, other: Hooks) -> bool {
        self.0 & other.0 == other.0
    }

    /// The hook of bit `b`.
    pub(crate) const fn bit(b: usize) -> Hooks {
        Hooks(1 << b)
    }
}
