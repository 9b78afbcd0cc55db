//! What the worker and the Kafka clients tell the HTTP side: task phases
//! (`/readyz`, `/tasks`) and whether Kafka is reachable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

    /// Kafka answered (a record arrived or a batch committed).
    pub fn kafka_answered(&self) {
        if self.kafka_unreachable.load(Ordering::Relaxed) {
            self.kafka_unreachable.store(false, Ordering::Relaxed);
        }
    }
}
