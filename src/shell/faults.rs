//! Named crash points for fault tests: `CARE_FAULT=<point>[:<n>]` makes the
//! n-th (default first) arrival at that point certain instead of lucky.
//!
//! - `after_produce`: the process dies after the batch's outputs and state
//!   were produced, before its offsets are.
//! - `before_commit`: dies with everything produced and the offsets added,
//!   just before the commit.
//! - `mid_restore`: dies halfway through reading a task's changelog.
//! - `abort_batch`: the batch's transaction is aborted instead of committed
//!   (the process lives on and recovers).
//! - `hang_offsets`: adding the batch's offsets to its transaction never
//!   returns, as librdkafka's `send_offsets_to_transaction` can (#5456); the
//!   process replaces its producer and recovers.
//! - `hang_commit`: the batch's commit lands but the call never returns, so
//!   its outcome is unknown; the process replaces its producer and restores
//!   every task from the changelog.
//! - `outlive_txn`: the batch's transaction is held open past
//!   `kafka.transaction_timeout_ms` (plus 3 s) before its offsets are
//!   added, as a broker outage longer than the timeout does; its
//!   coordinator aborts it and fences the producer, which the process
//!   replaces, and it recovers.
//! - `slow_restore`: a restore reads nothing for 3 s halfway through the
//!   changelog (the loop goes on turning), so its progress can be watched
//!   from outside (metrics, log).
//!
//! Dying is `std::process::abort`: no destructor, flush or commit runs, as
//! with kill -9. Unset, every check is one branch on a `None`.

use std::sync::atomic::{AtomicU32, Ordering};

/// A crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    AfterProduce,
    BeforeCommit,
    MidRestore,
    AbortBatch,
    HangOffsets,
    HangCommit,
    OutliveTxn,
    /// The processing loop stops turning (a stuck process, for `/livez`).
    Stall,
    SlowRestore,
}

impl Fault {
    fn parse(s: &str) -> Option<Fault> {
        match s {
            "after_produce" => Some(Fault::AfterProduce),
            "before_commit" => Some(Fault::BeforeCommit),
            "mid_restore" => Some(Fault::MidRestore),
            "abort_batch" => Some(Fault::AbortBatch),
            "hang_offsets" => Some(Fault::HangOffsets),
            "hang_commit" => Some(Fault::HangCommit),
            "outlive_txn" => Some(Fault::OutliveTxn),
            "stall" => Some(Fault::Stall),
            "slow_restore" => Some(Fault::SlowRestore),
            _ => None,
        }
    }
}

/// The configured crash point, if any, and how often it was reached.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Option<(Fault, u32)>,
    reached: AtomicU32,
}

/// The error an injected abort raises.
#[derive(Debug, thiserror::Error)]
#[error("transaction aborted by CARE_FAULT=abort_batch")]
pub struct InjectedAbort;

impl Faults {
    /// Reads `CARE_FAULT`; an unknown value is logged and ignored.
    pub fn from_env() -> Faults {
        let Ok(spec) = std::env::var("CARE_FAULT") else { return Faults::default() };
        let (name, n) = spec.split_once(':').map_or((spec.as_str(), Some(1)), |(a, b)| (a, b.parse().ok()));
        match (Fault::parse(name), n) {
            (Some(f), Some(n)) => {
                tracing::warn!(fault = %spec, "Fault injection armed");
                Faults { armed: Some((f, n)), reached: AtomicU32::new(0) }
            }
            _ => {
                tracing::error!(fault = %spec, "Unknown CARE_FAULT, ignored (after_produce, before_commit, mid_restore, abort_batch, hang_offsets, hang_commit, outlive_txn, stall, slow_restore[:n])");
                Faults::default()
            }
        }
    }

    /// Whether this arrival at `f` is the armed one.
    pub fn hit_soft(&self, f: Fault) -> bool {
        match self.armed {
            Some((armed, n)) if armed == f => self.reached.fetch_add(1, Ordering::Relaxed) + 1 == n,
            _ => false,
        }
    }

    /// Dies here if this arrival at `f` is the armed one.
    pub fn hit(&self, f: Fault) {
        if self.hit_soft(f) {
            eprintln!("care: CARE_FAULT {f:?} reached, dying");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_nth_arrival_at_the_armed_point_fires() {
        let f = Faults { armed: Some((Fault::AbortBatch, 2)), reached: AtomicU32::new(0) };
        assert!(!f.hit_soft(Fault::BeforeCommit));
        assert!(!f.hit_soft(Fault::AbortBatch));
        assert!(f.hit_soft(Fault::AbortBatch));
        assert!(!f.hit_soft(Fault::AbortBatch));
        assert!(!Faults::default().hit_soft(Fault::AbortBatch));
    }
}
