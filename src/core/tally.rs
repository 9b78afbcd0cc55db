//! What the engine did, counted: the core returns these figures instead of
//! touching metrics, and the shell turns them into Prometheus counters when
//! a batch commits (so an aborted batch is never counted).

use crate::decode::{RejectCode, SkipReason};
use crate::detect::registry::MAX_SIGNAL_TYPES;
use crate::event::Kind;

/// Counts of one input source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceTally {
    /// Records handed to the engine.
    pub consumed: u64,
    /// Events folded on time, by kind.
    pub folded: [u64; Kind::COUNT],
    /// Records sent to the DLQ, by code.
    pub rejected: [u64; RejectCode::ALL.len()],
    /// Events behind allowed lateness (lifetime totals only).
    pub late: u64,
    /// Re-sent events skipped by `event_id`.
    pub duplicate: u64,
    /// Records that carry no event for care (unknown or ignored types,
    /// tombstones), by reason.
    pub skipped: [u64; SkipReason::ALL.len()],
}

impl SourceTally {
    /// Events folded on time, all kinds.
    pub fn folded_total(&self) -> u64 {
        self.folded.iter().sum()
    }

    /// Records rejected, all codes.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Records skipped, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// consumed = folded + late + duplicate + skipped + rejected.
    pub fn balances(&self) -> bool {
        self.consumed == self.folded_total() + self.late + self.duplicate + self.skipped_total() + self.rejected_total()
    }

    /// Adds `o`'s counts into these.
    pub fn add(&mut self, o: &SourceTally) {
        self.consumed += o.consumed;
        self.late += o.late;
        self.duplicate += o.duplicate;
        self.folded.iter_mut().zip(o.folded).for_each(|(a, b)| *a += b);
        self.rejected.iter_mut().zip(o.rejected).for_each(|(a, b)| *a += b);
        self.skipped.iter_mut().zip(o.skipped).for_each(|(a, b)| *a += b);
    }
}

/// Distinct unknown type names a tally keeps per source: enough for an
/// operator to see what is dropped, bounded whatever the input.
pub const UNKNOWN_KINDS_KEPT: usize = 5;

/// Everything counted since the tally was last taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Indexed like the engine's sources (the canonical mapping last).
    pub sources: Vec<SourceTally>,
    /// Signals emitted, by type.
    pub emitted: [u64; MAX_SIGNAL_TYPES],
    /// Signals older than `emit_from`: decided, folded, not emitted.
    pub suppressed: [u64; MAX_SIGNAL_TYPES],
    /// Signals the outage guard withheld, by type.
    pub withheld: [u64; MAX_SIGNAL_TYPES],
    /// Source anomaly records (the guard tripping or clearing).
    pub anomalies: u64,
    /// Customer profiles sent.
    pub profiles: u64,
    /// Per-customer timers fired.
    pub timers_fired: u64,
    /// Customers seen for the first time.
    pub customers_created: u64,
    /// Event-id fingerprints dropped while still within the allowed
    /// lateness, to keep the per-customer bound.
    pub dedup_evictions: u64,
    /// The first distinct unknown type names seen, as (source, name), at
    /// most [`UNKNOWN_KINDS_KEPT`] per source.
    pub unknown_kinds: Vec<(usize, String)>,
    /// Set when stream time first reached `emit_from`: the signals
    /// suppressed until then (over tasks: summed).
    pub backfill_suppressed: Option<u64>,
}

impl Tally {
    /// An empty tally for `sources` input sources.
    pub fn new(sources: usize) -> Tally {
        Tally { sources: vec![SourceTally::default(); sources], ..Tally::default() }
    }

    /// Adds `o` into this tally.
    pub fn add(&mut self, o: &Tally) {
        if self.sources.len() < o.sources.len() {
            self.sources.resize(o.sources.len(), SourceTally::default());
        }
        self.sources.iter_mut().zip(&o.sources).for_each(|(a, b)| a.add(b));
        self.emitted.iter_mut().zip(o.emitted).for_each(|(a, b)| *a += b);
        self.suppressed.iter_mut().zip(o.suppressed).for_each(|(a, b)| *a += b);
        self.withheld.iter_mut().zip(o.withheld).for_each(|(a, b)| *a += b);
        self.anomalies += o.anomalies;
        self.profiles += o.profiles;
        self.timers_fired += o.timers_fired;
        self.customers_created += o.customers_created;
        self.dedup_evictions += o.dedup_evictions;
        self.backfill_suppressed = match (self.backfill_suppressed, o.backfill_suppressed) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        for (source, name) in &o.unknown_kinds {
            self.note_unknown_kind(*source, name);
        }
    }

    /// Keeps `name` among the unknown types of `source`, unless already
    /// kept or the source has its share.
    pub fn note_unknown_kind(&mut self, source: usize, name: &str) {
        let mut kept = 0;
        for (s, n) in &self.unknown_kinds {
            if *s == source {
                if n == name {
                    return;
                }
                kept += 1;
            }
        }
        if kept < UNKNOWN_KINDS_KEPT {
            self.unknown_kinds.push((source, name.to_string()));
        }
    }

    /// Zeroes every count, keeping the allocation.
    pub fn clear(&mut self) {
        self.sources.fill(SourceTally::default());
        self.emitted = [0; MAX_SIGNAL_TYPES];
        self.suppressed = [0; MAX_SIGNAL_TYPES];
        self.withheld = [0; MAX_SIGNAL_TYPES];
        self.anomalies = 0;
        self.profiles = 0;
        self.timers_fired = 0;
        self.customers_created = 0;
        self.dedup_evictions = 0;
        self.unknown_kinds.clear();
        self.backfill_suppressed = None;
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.sources.iter().all(|s| *s == SourceTally::default())
            && self.emitted.iter().chain(&self.suppressed).chain(&self.withheld).all(|n| *n == 0)
            && self.anomalies == 0
            && self.profiles == 0
            && self.timers_fired == 0
            && self.customers_created == 0
            && self.dedup_evictions == 0
            && self.unknown_kinds.is_empty()
            && self.backfill_suppressed.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_and_clearing_keeps_the_accounting_identity() {
        let mut a = Tally::new(2);
        a.sources[1].consumed = 3;
        a.sources[1].folded[Kind::Click.idx()] = 2;
        a.sources[1].rejected[RejectCode::InvalidJson.idx()] = 1;
        a.emitted[0] = 4;
        let mut total = Tally::new(2);
        total.add(&a);
        total.add(&a);
        assert_eq!(total.sources[1].consumed, 6);
        assert!(total.sources[1].balances());
        assert_eq!(total.emitted[0], 8);
        assert!(!total.is_empty());
        total.clear();
        assert!(total.is_empty());
        assert_eq!(total.sources.len(), 2);
    }

    #[test]
    fn skipped_records_are_a_term_of_the_identity() {
        let mut t = SourceTally { consumed: 3, late: 1, ..SourceTally::default() };
        t.skipped[SkipReason::Tombstone.idx()] = 1;
        assert!(!t.balances());
        t.skipped[SkipReason::UnknownKind.idx()] = 1;
        assert!(t.balances());
    }

    #[test]
    fn unknown_type_names_are_kept_distinct_and_bounded_per_source() {
        let mut t = Tally::new(2);
        for i in 0..20 {
            t.note_unknown_kind(0, &format!("type-{}", i % 7));
            t.note_unknown_kind(1, "scroll");
        }
        let of = |t: &Tally, s: usize| t.unknown_kinds.iter().filter(|(src, _)| *src == s).map(|(_, n)| n.clone()).collect::<Vec<_>>();
        assert_eq!(of(&t, 0), ["type-0", "type-1", "type-2", "type-3", "type-4"]);
        assert_eq!(of(&t, 1), ["scroll"]);
        let mut total = Tally::new(2);
        total.add(&t);
        total.add(&t);
        assert_eq!(total.unknown_kinds, t.unknown_kinds, "adding keeps them distinct");
    }
}
