//! What the worker and the Kafka clients tell the HTTP side: task phases
//! (`/readyz`, `/tasks`), whether Kafka is reachable, and whether the
//! processing loop still turns (`/livez`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use care_core::task::{Phase, TaskId};
use dashmap::DashMap;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Shared between the worker, the Kafka client contexts and HTTP: written
/// rarely, read by every `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    pub tasks: DashMap<TaskId, Phase>,
    /// Set when a Kafka client reports every broker down; cleared by the
    /// next record or committed batch.
    pub kafka_unreachable: AtomicBool,
    /// The last assignment held no partition (more instances than
    /// partitions): such an instance is ready with no tasks. Cleared by a
    /// revoke, so a rebalance in progress is not taken for one.
    pub assigned_nothing: AtomicBool,
    /// When the consumer loop last turned (ms on [`clock_ms`]'s clock).
    loop_turned_ms: AtomicU64,
    /// Kafka calls under way on the loop's thread (a poll, a commit, a
    /// restore, a wait for room in the producer's queue): during an outage
    /// they wait, and the loop not turning is not a stall.
    in_kafka_calls: AtomicU32,
    /// The named wait under way on the loop's thread, if any, and since
    /// when (ms on [`clock_ms`]'s clock): [`Health::watch_waits`] logs one
    /// that lasts over a second.
    wait: Mutex<Option<(&'static str, u64)>>,
}

/// Milliseconds since the process first asked.
fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A Kafka call under way; ends when dropped.
pub struct KafkaCall<'a>(&'a Health);

impl Drop for KafkaCall<'_> {
    fn drop(&mut self) {
        self.0.in_kafka_calls.fetch_sub(1, Ordering::Relaxed);
        self.0.turned();
    }
}

/// A named wait under way (see [`Health::waiting`]); ends when dropped.
pub struct Waiting<'a> {
    health: &'a Health,
    outer: Option<(&'static str, u64)>,
    _call: KafkaCall<'a>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut wait = self.health.wait.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((what, since)) = *wait {
            let secs = clock_ms().saturating_sub(since) as f64 / 1000.0;
            if secs >= LONG_WAIT.as_secs_f64() {
                tracing::info!(waited_for = what, secs, "Done waiting");
            }
        }
        *wait = self.outer;
    }
}

/// Whether the wait for `what` under way since `since` is to be logged at
/// `now`, given the last one logged (`told`: what, since, when logged):
/// once it has lasted [`LONG_WAIT`], then every [`LONG_WAIT_REPEAT`].
fn report_due(told: Option<(&'static str, u64, u64)>, what: &'static str, since: u64, now: u64) -> bool {
    match told {
        Some((w, s, at)) if w == what && s == since => now.saturating_sub(at) >= LONG_WAIT_REPEAT.as_millis() as u64,
        _ => now.saturating_sub(since) >= LONG_WAIT.as_millis() as u64,
    }
}

/// A wait longer than this says what it waits for.
const LONG_WAIT: Duration = Duration::from_secs(1);
/// And repeats it this often while it lasts.
const LONG_WAIT_REPEAT: Duration = Duration::from_secs(10);

pub type TaskStatus = Arc<Health>;

impl Health {
    /// A client error callback: all brokers down makes care not ready.
    /// (The producer's callback matters most: its own thread serves it even
    /// while the worker waits on a commit that needs a broker.)
    pub fn client_error(&self, error: &KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            if !self.kafka_unreachable.swap(true, Ordering::Relaxed) {
                tracing::warn!(reason, "Kafka unreachable; not ready until it answers again");
            }
        } else {
            tracing::debug!(error = %error, reason, "Kafka client error (librdkafka retries)");
        }
    }

    /// The consumer loop turned.
    pub fn turned(&self) {
        self.loop_turned_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// Marks a Kafka call under way until the guard drops.
    pub fn kafka_call(&self) -> KafkaCall<'_> {
        self.in_kafka_calls.fetch_add(1, Ordering::Relaxed);
        KafkaCall(self)
    }

    /// Marks a wait on Kafka for `what` (a Kafka call too, so not a stall)
    /// until the guard drops; [`Health::watch_waits`] logs it if it lasts.
    pub fn waiting(&self, what: &'static str) -> Waiting<'_> {
        let call = self.kafka_call();
        let mut wait = self.wait.lock().unwrap_or_else(|p| p.into_inner());
        let outer = wait.replace((what, clock_ms()));
        Waiting { health: self, outer, _call: call }
    }

    /// Logs each named wait that has lasted over a second, then every 10 s
    /// while it lasts, until `stop`: on its own thread, since the loop's
    /// thread is the one waiting.
    pub fn watch_waits(&self, stop: &std::sync::atomic::AtomicBool) {
        let mut told: Option<(&'static str, u64, u64)> = None; // (what, since, when told)
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let Some((what, since)) = *self.wait.lock().unwrap_or_else(|p| p.into_inner()) else { continue };
            let now = clock_ms();
            if report_due(told, what, since, now) {
                tracing::info!(waiting_for = what, secs = (now - since) / 1000, "Waiting on Kafka");
                told = Some((what, since, now));
            }
        }
    }

    /// How long the loop has not turned outside a Kafka call, if longer
    /// than `limit`: the process is stuck and should be restarted.
    pub fn stalled(&self, limit: Duration) -> Option<Duration> {
        if self.in_kafka_calls.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let idle = Duration::from_millis(clock_ms().saturating_sub(self.loop_turned_ms.load(Ordering::Relaxed)));
        (idle > limit).then_some(idle)
    }

    /// Kafka answered (a record arrived or a batch committed).
    pub fn kafka_answered(&self) {
        if self.kafka_unreachable.load(Ordering::Relaxed) {
            self.kafka_unreachable.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_told_after_a_second_then_every_ten_and_the_innermost_is_named() {
        assert!(!report_due(None, "the commit", 5_000, 5_900));
        assert!(report_due(None, "the commit", 5_000, 6_000));
        let told = Some(("the commit", 5_000, 6_000));
        assert!(!report_due(told, "the commit", 5_000, 15_999));
        assert!(report_due(told, "the commit", 5_000, 16_000));
        assert!(!report_due(told, "the commit", 20_000, 20_500), "a new wait of the same kind starts over");
        let h = Health::default();
        {
            let _outer = h.waiting("the transaction to commit");
            {
                let _inner = h.waiting("Kafka to acknowledge the batch's records");
                assert_eq!(h.wait.lock().unwrap().map(|w| w.0), Some("Kafka to acknowledge the batch's records"));
                assert!(h.stalled(Duration::ZERO).is_none(), "a wait on Kafka is not a stall");
            }
            assert_eq!(h.wait.lock().unwrap().map(|w| w.0), Some("the transaction to commit"));
        }
        assert_eq!(*h.wait.lock().unwrap(), None);
    }
}
