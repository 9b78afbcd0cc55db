//! What the engine did, counted: the core returns these figures instead of
//! touching metrics, and the shell turns them into Prometheus counters when
//! a batch commits (so an aborted batch is never counted).

use crate::decode::RejectCode;
use crate::detect::SignalType;
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

    /// consumed = folded + late + duplicate + rejected.
    pub fn balances(&self) -> bool {
        self.consumed == self.folded_total() + self.late + self.duplicate + self.rejected_total()
    }

    fn add(&mut self, o: &SourceTally) {
        self.consumed += o.consumed;
        self.late += o.late;
        self.duplicate += o.duplicate;
        self.folded.iter_mut().zip(o.folded).for_each(|(a, b)| *a += b);
        self.rejected.iter_mut().zip(o.rejected).for_each(|(a, b)| *a += b);
    }
}

/// Everything counted since the tally was last taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Indexed like the engine's sources (the canonical mapping last).
    pub sources: Vec<SourceTally>,
    /// Signals emitted, by type.
    pub emitted: [u64; SignalType::ALL.len()],
    /// Signals older than `emit_from`: decided, folded, not emitted.
    pub suppressed: [u64; SignalType::ALL.len()],
    /// Per-customer timers fired.
    pub timers_fired: u64,
    /// Customers seen for the first time.
    pub customers_created: u64,
    /// Event-id fingerprints dropped while still within the allowed
    /// lateness, to keep the per-customer bound.
    pub dedup_evictions: u64,
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
        self.timers_fired += o.timers_fired;
        self.customers_created += o.customers_created;
        self.dedup_evictions += o.dedup_evictions;
    }

    /// Zeroes every count, keeping the allocation.
    pub fn clear(&mut self) {
        self.sources.fill(SourceTally::default());
        self.emitted = [0; SignalType::ALL.len()];
        self.suppressed = [0; SignalType::ALL.len()];
        self.timers_fired = 0;
        self.customers_created = 0;
        self.dedup_evictions = 0;
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.sources.iter().all(|s| *s == SourceTally::default())
            && self.emitted.iter().chain(&self.suppressed).all(|n| *n == 0)
            && self.timers_fired == 0
            && self.customers_created == 0
            && self.dedup_evictions == 0
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
}
