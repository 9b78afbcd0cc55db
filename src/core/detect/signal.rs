//! What a detector decides, as data the engine and the renderer handle
//! without knowing the detector: a [`Signal`] is the envelope every message
//! shares (type, status, episode, trigger time, payload version) around a
//! boxed [`Body`], the detector's own typed figures, which renders its own
//! payload. A signal type is a [`SignalDef`] declared in the detector's file
//! and listed in its registry entry, so a new signal edits no shared enum.
//!
//! Signals are rare next to events (a few per customer-month), so the box
//! per signal costs nothing measurable; the per-event path allocates none.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::rfc3339;

/// Which output topic a signal type goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `outputs.alerts`: something a team should act on.
    Alerts,
    /// `outputs.reactivation`: win-back triggers and their outcomes.
    Reactivation,
}

/// One kind of output, declared in the file of the detector that emits it
/// and listed in its registry entry.
#[derive(Debug)]
pub struct SignalDef {
    /// The name in `ce_type` (`io.care.<name>.vN`), `ce_id` and metric labels.
    pub name: &'static str,
    pub destination: Destination,
    /// An upstream outage looks like this signal (customers going quiet):
    /// the outage guard watches its openings (`engine::guard`).
    pub outage_guarded: bool,
    /// Every payload version and its `ce_type`, each with its schema in
    /// `src/core/schemas/<ce_type>.json`. A payload only ever gains fields
    /// within a version.
    pub versions: &'static [(u8, &'static str)],
}

/// A signal type: its definition, compared by name (names are unique, a
/// registry test checks it).
#[derive(Clone, Copy)]
pub struct SignalType(pub &'static SignalDef);

impl SignalType {
    /// The name in `ce_type` and metric labels.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn destination(self) -> Destination {
        self.0.destination
    }

    /// The `ce_type` of payload version `version`, if there is one.
    pub fn ce_type(self, version: u8) -> Option<&'static str> {
        self.0.versions.iter().find(|(v, _)| *v == version).map(|(_, name)| *name)
    }

    /// Its position in [`crate::detect::registry::signal_types`], for
    /// per-type counters.
    pub fn idx(self) -> usize {
        crate::detect::registry::signal_types().iter().position(|t| *t == self).expect("every emitted signal type is in the registry")
    }
}

impl PartialEq for SignalType {
    fn eq(&self, other: &SignalType) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for SignalType {}

impl Hash for SignalType {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.name.hash(h);
    }
}

impl fmt::Debug for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
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

/// What a body renders its payload with.
pub struct PayloadContext<'a> {
    /// The fields every payload starts with (flatten it first).
    pub head: Head<'a>,
    /// The episode's start (the trigger that opened it), RFC 3339.
    pub started: String,
    pub episode_ms: i64,
    pub trigger_ms: i64,
    pub window: WindowInfo,
}

/// A detector's own figures in a signal; renders the signal's payload.
///
/// [`AsAny`] (every type has it) lets a detector's tests take their
/// figures back out ([`Signal::body`]).
pub trait Body: fmt::Debug + Send + Sync + Any + AsAny {
    /// The JSON payload, its fields the schema's: the head's first.
    fn payload(&self, cx: PayloadContext<'_>) -> Value;
}

/// A value as `dyn Any`, for any sized `'static` type: a body need not
/// write it.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Serialises a payload struct. A payload goes through a
/// `serde_json::Value`, whose objects keep their keys sorted, so the bytes
/// never depend on field order.
pub fn to_value(p: impl Serialize) -> Value {
    serde_json::to_value(p).expect("payloads serialise")
}

/// `x` rounded to `places` decimals, for payload figures.
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Something a detector decided about one customer.
#[derive(Debug)]
pub struct Signal {
    signal_type: SignalType,
    version: u8,
    status: Status,
    episode_ms: i64,
    trigger_ms: i64,
    body: Box<dyn Body>,
}

impl Signal {
    /// Opens an episode, named by its trigger's time.
    pub fn opened(t: SignalType, episode_ms: i64, body: impl Body) -> Signal {
        Signal { signal_type: t, version: 1, status: Status::Opened, episode_ms, trigger_ms: episode_ms, body: Box::new(body) }
    }

    /// Closes the episode opened at `episode_ms`, triggered at `at_ms`.
    pub fn resolved(t: SignalType, episode_ms: i64, at_ms: i64, body: impl Body) -> Signal {
        Signal { signal_type: t, version: 1, status: Status::Resolved, episode_ms, trigger_ms: at_ms, body: Box::new(body) }
    }

    /// One message with no episode to close (a first order, a detractor
    /// answer): `opened`, named by its trigger.
    pub fn single(t: SignalType, at_ms: i64, body: impl Body) -> Signal {
        Signal::opened(t, at_ms, body)
    }

    /// The same signal with payload version `version` (1 unless said).
    pub fn with_version(mut self, version: u8) -> Signal {
        self.version = version;
        self
    }

    /// Which output type this signal becomes.
    pub fn signal_type(&self) -> SignalType {
        self.signal_type
    }

    /// Event time of the trigger: the event or the timer deadline.
    pub fn trigger_ms(&self) -> i64 {
        self.trigger_ms
    }

    /// The episode this signal belongs to (the time of the trigger that
    /// opened it).
    pub fn episode_ms(&self) -> i64 {
        self.episode_ms
    }

    /// Distinguishes the messages of one episode.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Whether this signal opens an episode (and so supersedes weaker ones).
    pub fn opens(&self) -> bool {
        self.status == Status::Opened
    }

    /// The payload's version: with the signal type, its `ce_type`.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The detector's figures, if they are a `T`.
    pub fn body<T: Body>(&self) -> Option<&T> {
        // Through `dyn Body`'s vtable: the box itself is `AsAny` too.
        self.body.as_ref().as_any().downcast_ref()
    }

    /// The JSON payload about `customer`.
    pub fn payload(&self, customer: &str, window: WindowInfo) -> Value {
        let head = Head { customer_id: customer, status: self.status, at: rfc3339(self.trigger_ms) };
        let cx = PayloadContext { head, started: rfc3339(self.episode_ms), episode_ms: self.episode_ms, trigger_ms: self.trigger_ms, window };
        self.body.payload(cx)
    }
}
