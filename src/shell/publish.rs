//! Output and state records → Kafka.
//!
//! One producer sends outputs keyed by customer id with their CloudEvents
//! headers, partitioned by murmur2 like the Java clients, and state records
//! to a task's own changelog partition. Exactly-once: they belong to the
//! open transaction. At-least-once: [`Publisher::flush`] waits until every
//! record sent is acknowledged and reports any that failed, before offsets
//! are committed. Every delivery report is counted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use prometheus::IntCounter;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use care_core::config::{Config, Delivery};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::TopicPartitionList;
use care_core::render::{OutputRecord, TopicRole};

use crate::shell::health::TaskStatus;
use crate::shell::metrics::Metrics;
use crate::shell::txn::{TxnCaller, TxnError};

/// Room for a dead letter's headers on top of `max_record_bytes` of value.
const DLQ_HEADROOM_BYTES: usize = 64 * 1024;

/// librdkafka's and the broker's default record size limits.
const PRODUCER_DEFAULT_MAX_BYTES: usize = 1_000_000;
pub const TOPIC_DEFAULT_MAX_BYTES: usize = 1_048_588;

/// The largest record care may produce: a dead letter carries at most
/// `max_record_bytes` of its original value (oversized ones are cut), plus
/// headers. The producer and the DLQ topic are both sized to take it, so no
/// input record can produce an output Kafka refuses.
pub fn max_output_bytes(cfg: &Config) -> usize {
    cfg.engine.max_record_bytes + DLQ_HEADROOM_BYTES
}

/// Why outputs could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot create Kafka producer: {0}")]
    Create(KafkaError),
    #[error("Kafka rejected an output record: {0}")]
    Send(KafkaError),
    #[error("{failed} output record(s) were not delivered: {first}")]
    Delivery { failed: u64, first: String },
    #[error("outputs not acknowledged within {0:?}")]
    FlushTimeout(Duration),
    #[error("cannot start the transactional caller thread: {0}")]
    Thread(std::io::Error),
}

/// Delivery accounting shared with librdkafka's callback thread.
#[derive(Default)]
pub struct Deliveries {
    inflight: AtomicUsize,
    /// Signalled when `inflight` drops to zero, so a flush wakes at once.
    /// (rust-rdkafka's own flush polls in 100 ms steps beside the threaded
    /// producer's thread, which takes the events: every flush cost 100 ms.)
    drained: (Mutex<()>, Condvar),
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    metrics: Option<Arc<Metrics>>,
    /// `care_records_produced_total` per topic role, resolved once.
    produced: Vec<IntCounter>,
    health: Option<TaskStatus>,
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(m) = &self.metrics {
            m.producer_errors.with_label_values(&[crate::shell::error_code::ErrorCode::of_kafka(&error).as_str()]).inc();
        }
        match &self.health {
            Some(h) => h.client_error(&error, reason),
            None => tracing::error!(error = %error, reason, "Kafka producer error"),
        }
    }
}

impl ProducerContext for Deliveries {
    /// Index into `TopicRole::ALL`, for the per-topic counter.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, role: usize) {
        if self.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = self.drained.0.lock().unwrap_or_else(|p| p.into_inner());
            self.drained.1.notify_all();
        }
        let Some(m) = &self.metrics else { return };
        m.inflight.dec();
        match result {
            Ok(_) => self.produced[role].inc(),
            Err((e, _)) => {
                // Logged with the batch it fails (a rolled-back transaction,
                // or care stopping), counted here by what it was.
                m.produce_errors.with_label_values(&[crate::shell::error_code::ErrorCode::of_kafka(e).as_str()]).inc();
                self.failed.fetch_add(1, Ordering::AcqRel);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// The producer of outputs and state, and its topic names.
pub struct Publisher {
    producer: Arc<ThreadedProducer<Deliveries>>,
    /// Runs the transactional calls, bounded (see `shell::txn`).
    txn: TxnCaller<ThreadedProducer<Deliveries>>,
    /// Output topics, indexed like `TopicRole::ALL`.
    topics: [String; TopicRole::ALL.len()],
    changelog: String,
    /// Bound of a commit or abort call (`kafka.transaction_timeout_ms`).
    txn_timeout: Duration,
}

/// Delivery-report index of changelog records (after the output roles).
const CHANGELOG: usize = TopicRole::ALL.len();

impl Publisher {
    /// Creates the producer from the config's brokers and pass-through options.
    ///
    /// # Errors
    /// Invalid client configuration.
    pub fn new(cfg: &Config, metrics: Arc<Metrics>, health: TaskStatus) -> Result<Publisher, PublishError> {
        let defaults = [
            // librdkafka requires it ≤ transaction.timeout.ms.
            ("message.timeout.ms", cfg.kafka.transaction_timeout_ms.min(30_000).to_string()),
            // State records compress well (ids, small varints); lz4 is cheap.
            ("compression.type", "lz4".to_string()),
        ];
        let mut owns = vec![
            ("linger.ms", cfg.kafka.linger_ms.to_string()),
            ("enable.idempotence", "true".to_string()),
            ("acks", "all".to_string()),
            // murmur2 for keyed records, like the Java clients' default.
            ("partitioner", "murmur2_random".to_string()),
            ("message.max.bytes", max_output_bytes(cfg).max(PRODUCER_DEFAULT_MAX_BYTES).to_string()),
        ];
        if cfg.kafka.delivery == Delivery::ExactlyOnce {
            owns.push(("transactional.id", transactional_id(cfg)));
            owns.push(("transaction.timeout.ms", cfg.kafka.transaction_timeout_ms.to_string()));
        }
        let cc = crate::shell::admin::client_config_with(cfg, &defaults, &owns);
        let labels = TopicRole::ALL.iter().map(|t| t.as_str()).chain(["changelog"]);
        let produced = labels.map(|l| metrics.produced.with_label_values(&[l])).collect();
        let ctx = Deliveries { metrics: Some(metrics), produced, health: Some(health), ..Deliveries::default() };
        let producer = Arc::new(cc.create_with_context(ctx).map_err(PublishError::Create)?);
        let txn_timeout = Duration::from_millis(u64::from(cfg.kafka.transaction_timeout_ms));
        // How long past its own timeout a transactional call may take before
        // the producer counts as stuck and is replaced (10 s by default).
        let grace = (txn_timeout / 6).max(Duration::from_secs(5));
        let txn = TxnCaller::start(Arc::clone(&producer), grace).map_err(PublishError::Thread)?;
        let o = &cfg.outputs;
        Ok(Publisher { producer, txn, topics: TopicRole::ALL.map(|r| r.topic(o).to_string()), changelog: cfg.kafka.changelog(), txn_timeout })
    }

    /// Registers the transactional id with its coordinator, aborting what a
    /// previous process with the same id left open and fencing it.
    ///
    /// # Errors
    /// The coordinator could not be reached in time, or the id is fenced.
    pub fn init_transactions(&mut self, timeout: Duration) -> Result<(), TxnError> {
        self.txn.call("init_transactions", timeout, move |p| p.init_transactions(timeout))
    }

    pub fn begin_transaction(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction()
    }

    /// Adds the consumed offsets to the open transaction (KIP-447: the
    /// group metadata fences zombies of this consumer).
    ///
    /// # Errors
    /// Kafka's answer, or [`TxnError::Stuck`].
    pub fn send_offsets(&mut self, offsets: &TopicPartitionList, group: &Arc<ConsumerGroupMetadata>) -> Result<(), TxnError> {
        let (offsets, group) = (offsets.clone(), Arc::clone(group));
        let t = self.txn_timeout / 2; // 30 s by default
        self.txn.call("send_offsets_to_transaction", t, move |p| p.send_offsets_to_transaction(&offsets, &group, t))
    }

    /// Fault injection (`CARE_FAULT=hang_offsets|hang_commit`): a
    /// transactional call that never returns, as `send_offsets_to_transaction`
    /// can. `hang_commit` commits first, so the commit lands but its outcome
    /// is never reported: the worst case.
    ///
    /// # Errors
    /// Always [`TxnError::Stuck`].
    pub fn hang(&mut self, commit_first: bool) -> Result<(), TxnError> {
        let t = self.txn_timeout;
        if commit_first {
            return self.txn.call("commit_transaction", t, move |p| {
                let _ = p.commit_transaction(t);
                loop {
                    std::thread::park();
                }
            });
        }
        self.txn.call("send_offsets_to_transaction", t / 2, |_| loop {
            std::thread::park();
        })
    }

    /// Commits the open transaction; librdkafka flushes it first. Bounded
    /// by the transaction timeout: a call that cannot complete (no broker)
    /// comes back as a retriable error rather than blocking the loop for ever.
    ///
    /// # Errors
    /// Kafka's answer, or [`TxnError::Stuck`].
    pub fn commit_transaction(&mut self) -> Result<(), TxnError> {
        let t = self.txn_timeout;
        self.txn.call("commit_transaction", t, move |p| p.commit_transaction(t))
    }

    /// Aborts the open transaction. Waits for the deliveries in flight
    /// first: aborting while a transaction's first record is still in
    /// flight can fail fatally (librdkafka #4849).
    ///
    /// # Errors
    /// Kafka's answer, or [`TxnError::Stuck`].
    pub fn abort_transaction(&mut self) -> Result<(), TxnError> {
        let _ = self.flush(Duration::from_secs(30)); // failures are what we abort
        let t = self.txn_timeout;
        let r = self.txn.call("abort_transaction", t, move |p| p.abort_transaction(t));
        let ctx = self.producer.context();
        ctx.failed.swap(0, Ordering::AcqRel);
        ctx.first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        r
    }

    /// The producer's fatal error, if it had one (e.g. fenced): it can make
    /// no more calls, a new one must take its transactional id.
    pub fn fatal_error(&self) -> Option<(rdkafka::types::RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    /// Whether a transactional call never came back: this producer is done
    /// for, a new one must take its transactional id.
    pub fn is_stuck(&self) -> bool {
        self.txn.is_stuck()
    }

    /// The transactional call that never came back, if one did not.
    pub fn stuck_in(&self) -> Option<&'static str> {
        self.txn.stuck_in()
    }

    /// Records sent and not yet acknowledged.
    pub fn inflight(&self) -> usize {
        self.producer.context().inflight.load(Ordering::Acquire)
    }

    /// Queues one output record, keyed (murmur2) to its topic. A dead
    /// letter carries its source record's headers first, then care's, and
    /// its source record's timestamp.
    ///
    /// # Errors
    /// A record Kafka can never take (e.g. larger than the broker allows).
    pub fn send(&self, r: &OutputRecord) -> Result<(), PublishError> {
        let role = TopicRole::ALL.iter().position(|t| *t == r.role).unwrap_or(0);
        let original = r.original.as_deref();
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len() + original.map_or(0, |o| o.headers.len()));
        for (k, v) in original.iter().flat_map(|o| &o.headers) {
            headers = headers.insert(Header { key: k, value: v.as_deref() });
        }
        for (k, v) in r.headers.iter() {
            headers = headers.insert(Header { key: k, value: Some(&v[..]) });
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topics[role], role).payload(&r.value[..]).headers(headers);
        if let Some(key) = &r.key {
            record = record.key(&key[..]);
        }
        if let Some(ts) = original.and_then(|o| o.timestamp_ms) {
            record = record.timestamp(ts);
        }
        self.send_record(record)
    }

    /// Queues one state record to the task's own changelog partition;
    /// `None` is a tombstone.
    ///
    /// # Errors
    /// A record Kafka can never take.
    pub fn send_state(&self, partition: i32, key: &[u8], value: Option<&[u8]>) -> Result<(), PublishError> {
        let mut record: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(&self.changelog, CHANGELOG).key(key).partition(partition);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.send_record(record)
    }

    /// Sends, counting the record in flight; waits for room when
    /// librdkafka's queue is full: backpressure, never a drop.
    fn send_record(&self, mut record: BaseRecord<'_, [u8], [u8], usize>) -> Result<(), PublishError> {
        let ctx = self.producer.context();
        ctx.inflight.fetch_add(1, Ordering::AcqRel);
        if let Some(m) = &ctx.metrics {
            m.inflight.inc();
        }
        // Waiting for room is waiting on Kafka (during an outage, for as
        // long as it lasts): not a stall for `/livez`.
        let mut waiting = None;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if waiting.is_none() {
                        waiting = ctx.health.as_ref().map(|h| h.waiting("room in the producer's queue (too many records in flight)"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    ctx.inflight.fetch_sub(1, Ordering::AcqRel);
                    if let Some(m) = &ctx.metrics {
                        m.inflight.dec();
                    }
                    return Err(PublishError::Send(e));
                }
            }
        }
    }

    /// Waits until every record sent so far is acknowledged.
    ///
    /// # Errors
    /// A record failed for good (the batch must not be committed), or the
    /// wait exceeded `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let ctx = self.producer.context();
        let deadline = Instant::now() + timeout;
        let mut guard = ctx.drained.0.lock().unwrap_or_else(|p| p.into_inner());
        while ctx.inflight.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PublishError::FlushTimeout(timeout));
            }
            guard = ctx.drained.1.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(guard);
        let failed = ctx.failed.swap(0, Ordering::AcqRel);
        if failed > 0 {
            let first = ctx.first_error.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
            return Err(PublishError::Delivery { failed, first });
        }
        Ok(())
    }
}

/// `<group_id>-<instance_id>`: stable across restarts of one instance, so a
/// restart fences its dead predecessor and aborts its open transaction at
/// once; distinct per instance, so instances never fence each other; and
/// per group, so two deployments on one host do not collide.
pub fn transactional_id(cfg: &Config) -> String {
    format!("{}-{}", cfg.kafka.group_id, cfg.kafka.instance_id.as_deref().unwrap_or("care"))
}
