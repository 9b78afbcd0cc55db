//! The canonical event every source record is decoded into.

use serde::{Deserialize, Serialize};

/// What a customer did. The numeric value indexes per-kind arrays in state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Click = 0,
    Login = 1,
    Chat = 2,
    Ticket = 3,
    Order = 4,
    /// A survey answer on its own: folds into the CSAT and NPS tallies and
    /// reaches detectors, but is never activity (SPEC, "Canonical event").
    Survey = 5,
}

impl Kind {
    /// Number of kinds; sizes per-kind counters (tallies, metrics).
    pub const COUNT: usize = 6;
    /// Every kind, in index order.
    pub const ALL: [Kind; Kind::COUNT] = [Kind::Click, Kind::Login, Kind::Chat, Kind::Ticket, Kind::Order, Kind::Survey];
    /// Number of kinds whose last time and per-bucket counts each customer
    /// keeps: all but `survey`, which comes last so that these keep their
    /// indexes. Keeping surveys out left the changelog layout (a presence
    /// bit per kind in one byte) and the window's size as they were.
    pub const TRACKED: usize = 5;
    /// The tracked kinds, in index order.
    pub const TRACKED_ALL: [Kind; Kind::TRACKED] = [Kind::Click, Kind::Login, Kind::Chat, Kind::Ticket, Kind::Order];

    /// The lowercase name used in JSON, config and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Click => "click",
            Kind::Login => "login",
            Kind::Chat => "chat",
            Kind::Ticket => "ticket",
            Kind::Order => "order",
            Kind::Survey => "survey",
        }
    }

    /// Parses a canonical kind name (exact, lowercase).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Parses a canonical kind name in any ASCII letter case (`Order`,
    /// `LOGIN`), without allocating.
    pub fn parse_any_case(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// Index into per-kind arrays.
    pub fn idx(self) -> usize {
        self as usize
    }

    /// Whether customers keep its last time and bucket counts (see
    /// [`Kind::TRACKED`]).
    pub fn is_tracked(self) -> bool {
        self.idx() < Kind::TRACKED
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of kinds as a bit mask (e.g. the kinds that count as activity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindSet(u8);

impl KindSet {
    /// Every tracked kind: all but `survey`, which is never activity.
    pub const ALL: KindSet = KindSet(0b1_1111);

    /// Builds a set from kinds.
    pub fn of(kinds: &[Kind]) -> KindSet {
        KindSet(kinds.iter().fold(0, |m, k| m | 1 << k.idx()))
    }

    /// Whether `k` is in the set.
    pub fn contains(self, k: Kind) -> bool {
        self.0 & (1 << k.idx()) != 0
    }

    /// The kinds in the set, in index order.
    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// One decoded customer event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1–128 bytes; the key of every output about this customer.
    pub customer_id: String,
    pub kind: Kind,
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// Order value, ≥ 0.
    pub amount: Option<f64>,
    /// Survey answer on 1–5.
    pub csat: Option<u8>,
    /// Likelihood to recommend, 0–10.
    pub nps: Option<u8>,
    /// Source-assigned id, for de-duplication of re-sent records.
    pub event_id: Option<String>,
}

/// Longest customer id accepted, in bytes.
pub const MAX_CUSTOMER_ID_BYTES: usize = 128;
