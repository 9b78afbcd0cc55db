//! What the worker and the Kafka clients tell the HTTP side: task phases
//! (`/readyz`, `/tasks`), whether Kafka is reachable, and whether the
//! processing loop still turns (`/livez`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
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
