//! Durability: a task's state goes to its changelog partition at every
//! commit, and comes back from it when the task is assigned.
//!
//! The changelog is a compacted topic with one partition per task, keyed by
//! customer id, plus one meta record per task (stream time, `emit_from`,
//! next input offsets). **The meta record's offsets are the truth**: a
//! restored task seeks its inputs to them; the consumer group's committed
//! offsets only feed lag dashboards (Arroyo's model). A task with no meta
//! record yet (a first start) starts from the group's committed offsets,
//! else from `auto_offset_reset`.
//!
//! A restore reads the partition from the beginning with its own
//! read_committed consumer, in slices between polls of the main consumer,
//! so rebalances and heartbeats go on; the task's input stays paused until
//! the restore reached the partition's end (its last stable offset). The
//! group's committed offsets are read first, which waits until the previous
//! owner's last transaction is complete; a restore whose meta record is
//! still behind them read too early and reads again.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use care_core::changelog::{decode_record, Record};
use care_core::engine::Engine;
use care_core::task::TaskId;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use care_core::config::Config;

use crate::shell::error_code::ErrorCode;
use crate::shell::txn::TxnError;
use prometheus::IntCounterVec;
use crate::shell::admin::client_config;
use crate::shell::faults::{Fault, Faults};

/// How long the end offset of a changelog partition may take to read.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(10);

/// One task being restored.
pub struct Restore {
    pub task: TaskId,
    consumer: BaseConsumer<RestoreContext>,
    topic: String,
    /// Offsets of the start and of the end when the restore began.
    low: i64,
    end: i64,
    /// The group's committed offsets per source when the restore began.
    group: Vec<Option<i64>>,
    /// Restores of this task so far (a stale read is read again).
    pub attempt: u32,
    /// Records applied so far.
    pub records: u64,
    /// The offset after the last record read: what is left is `end - position`.
    position: i64,
    /// When its progress was last logged (a restore over a second says so).
    pub reported: Option<Instant>,
    /// `CARE_FAULT=slow_restore`: no record is read before this.
    paused_until: Option<Instant>,
    pub started: Instant,
    done: bool,
}

/// The restore consumer's context: the end of a partition is what a
/// restore waits for, not an error to log. Errors are counted by code in
/// `errors` (`care_restore_errors_total`; none in `care state`).
pub struct RestoreContext {
    errors: Option<IntCounterVec>,
}

impl RestoreContext {
    fn count(&self, code: ErrorCode) {
        if let Some(c) = &self.errors {
            c.with_label_values(&[code.as_str()]).inc();
        }
    }
}

impl rdkafka::ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::PartitionEOF)) {
            let code = ErrorCode::of_kafka(&error);
            self.count(code);
            tracing::warn!(error = %error, reason, code = code.as_str(), "Changelog restore consumer error");
        }
    }
}

impl ConsumerContext for RestoreContext {}

impl Restore {
    /// Starts reading `task`'s changelog partition from the beginning.
    ///
    /// # Errors
    /// The restore consumer cannot be created or the partition's end read.
    pub fn begin(cfg: &Config, task: TaskId, group: Vec<Option<i64>>, errors: Option<IntCounterVec>) -> anyhow::Result<Restore> {
        let topic = cfg.kafka.changelog();
        let consumer: BaseConsumer<RestoreContext> = client_config(cfg)
            .set("group.id", format!("{}-restore", cfg.kafka.group_id)) // never joins: assign() only
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .create_with_context(RestoreContext { errors })
            .context("cannot create the changelog restore consumer")?;
        let (low, end) = consumer
            .fetch_watermarks(&topic, task.partition, WATERMARK_TIMEOUT)
            .with_context(|| format!("cannot read the end of changelog {topic:?} partition {}", task.partition))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, task.partition, Offset::Beginning)?;
        consumer.assign(&tpl).context("assigning the changelog partition")?;
        tracing::info!(task = %task, topic = %topic, records = end - low, "Restoring task");
        Ok(Restore { task, consumer, topic, group, attempt: 0, low, end, records: 0, position: low, reported: None, paused_until: None, started: Instant::now(), done: end <= low })
    }

    /// Changelog offsets not read yet (records, plus the transaction
    /// markers between them): 0 once done.
    pub fn remaining(&self) -> i64 {
        if self.done { 0 } else { (self.end - self.position).max(0) }
    }

    /// Applies changelog records to `engine` for at most `budget`; returns
    /// true once the end seen at the start has been reached.
    ///
    /// # Errors
    /// A record this binary cannot read (corrupt, or written by a newer
    /// version): going on would lose or corrupt state, so the process stops
    /// with the record's place and the reason.
    pub fn step(&mut self, engine: &mut Engine, budget: Duration, faults: &Faults) -> anyhow::Result<bool> {
        let until = Instant::now() + budget;
        if self.paused_until.is_some_and(|t| Instant::now() < t) {
            return Ok(false); // CARE_FAULT=slow_restore: the loop turns, the restore waits
        }
        while !self.done && Instant::now() < until && self.paused_until.is_none_or(|t| Instant::now() >= t) {
            match self.consumer.poll(Duration::from_millis(10)) {
                None => break, // nothing more yet: back to the main loop
                Some(Err(KafkaError::PartitionEOF(_))) => self.done = true,
                Some(Err(e)) if transient(&e) => {
                    self.consumer.context().count(ErrorCode::of_kafka(&e));
                    tracing::debug!(error = %e, "Changelog read retried");
                }
                Some(Err(e)) => {
                    self.consumer.context().count(ErrorCode::of_kafka(&e));
                    return Err(anyhow!("reading changelog {:?} partition {}: {e}", self.topic, self.task.partition));
                }
                Some(Ok(m)) => {
                    let key = m.key().unwrap_or_default();
                    let record = decode_record(key, m.payload(), engine.rules().window_width()).map_err(|e| {
                        self.consumer.context().count(ErrorCode::CorruptRecord);
                        anyhow!("changelog {:?} partition {} offset {}: {e}", self.topic, self.task.partition, m.offset())
                    })?;
                    apply(engine, record);
                    self.records += 1;
                    self.position = m.offset() + 1;
                    if self.records * 2 >= (self.end - self.low).max(1) as u64 {
                        faults.hit(Fault::MidRestore);
                        if faults.hit_soft(Fault::SlowRestore) {
                            self.paused_until = Some(Instant::now() + Duration::from_secs(3));
                        }
                    }
                    if m.offset() + 1 >= self.end {
                        self.done = true;
                    }
                }
            }
        }
        Ok(self.done)
    }
}

impl Restore {
    /// Reads the group's committed offsets of `task`'s partition (waiting
    /// for a transaction still completing), then begins its restore.
    ///
    /// # Errors
    /// As [`committed`] and [`Restore::begin`].
    pub fn start<C: ConsumerContext>(consumer: &BaseConsumer<C>, cfg: &Config, topics: &[String], task: TaskId, errors: &IntCounterVec) -> anyhow::Result<Restore> {
        let group = committed(consumer, topics, task.partition)?;
        Restore::begin(cfg, task, group, Some(errors.clone()))
    }

    /// Why the restored state is older than the group's committed offsets
    /// (the previous owner's last commit was not yet readable), if it is.
    pub fn behind(&self, engine: &Engine, topics: &[String]) -> Option<String> {
        let offsets = engine.offsets();
        topics.iter().enumerate().find_map(|(i, t)| match (self.group.get(i).copied().flatten(), offsets.get(i).copied().flatten()) {
            (Some(g), Some(m)) if g > m => Some(format!("{t:?} partition {}: state ends at offset {m}, the group committed {g}", self.task.partition)),
            _ => None,
        })
    }

    /// The group's committed offsets read when the restore began.
    pub fn group(&self) -> &[Option<i64>] {
        &self.group
    }
}

/// The group's committed offsets of `partition` of each source. Under
/// read_committed this waits for offsets of transactions still completing.
///
/// # Errors
/// The group coordinator did not answer in time.
pub fn committed<C: ConsumerContext>(consumer: &BaseConsumer<C>, topics: &[String], partition: i32) -> anyhow::Result<Vec<Option<i64>>> {
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        tpl.add_partition(t, partition);
    }
    let got = consumer.committed_offsets(tpl, WATERMARK_TIMEOUT).context("reading committed offsets")?;
    Ok(topics
        .iter()
        .map(|t| match got.find_partition(t, partition).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect())
}

fn apply(engine: &mut Engine, record: Record) {
    match record {
        Record::Meta(meta) => engine.restore_meta(&meta),
        Record::Customer(c) => engine.restore_customer(c),
        Record::Tombstone(id) => engine.forget(&id),
    }
}

/// Errors librdkafka reports and then recovers from by itself.
fn transient(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::OperationTimedOut))
}

/// Puts a restored task's input where its state ends and resumes it: at
/// the meta record's offsets; for a source the meta does not name (a first
/// start, or a source added since), at the group's committed offset `group`,
/// else at `auto_offset_reset`, resolved to a concrete offset and pinned in
/// the engine, so a later rollback returns there and not to a moving end.
/// Seeking always discards whatever was fetched while the task restored.
///
/// # Errors
/// The partition's offsets cannot be read, or a seek or resume fails.
pub fn activate_input<C: ConsumerContext>(consumer: &BaseConsumer<C>, cfg: &Config, topics: &[String], engine: &mut Engine, group: &[Option<i64>]) -> anyhow::Result<()> {
    let partition = engine.id().partition;
    for (i, t) in topics.iter().enumerate() {
        if engine.offsets().get(i).copied().flatten().is_some() {
            continue;
        }
        let start = match group.get(i).copied().flatten() {
            Some(o) => o,
            None => {
                let (low, high) = consumer.fetch_watermarks(t, partition, WATERMARK_TIMEOUT).with_context(|| format!("reading the offsets of {t:?} partition {partition}"))?;
                if cfg.kafka.auto_offset_reset == "latest" { high } else { low }
            }
        };
        engine.set_start_offset(i, start);
    }
    reposition(consumer, topics, engine)
}

/// Seeks a task's inputs to its offsets and resumes them (after a restore,
/// or after a rollback).
///
/// # Errors
/// A seek or resume fails.
pub fn reposition<C: ConsumerContext>(consumer: &BaseConsumer<C>, topics: &[String], engine: &Engine) -> anyhow::Result<()> {
    let partition = engine.id().partition;
    let mut tpl = TopicPartitionList::new();
    for (i, t) in topics.iter().enumerate() {
        tpl.add_partition(t, partition);
        if let Some(at) = engine.offsets().get(i).copied().flatten() {
            consumer.seek(t, partition, Offset::Offset(at), WATERMARK_TIMEOUT).with_context(|| format!("seeking {t:?} partition {partition} to {at}"))?;
            tracing::debug!(topic = %t, partition, offset = at, "Input positioned");
        }
    }
    consumer.resume(&tpl).context("resuming input")?;
    Ok(())
}

/// Whether an error means the open transaction must be aborted (and the
/// batch rolled back), rather than the process stopped.
pub fn requires_abort(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<crate::shell::faults::InjectedAbort>()
            // Produce refused because the transaction is already failing.
            || kafka_error(c).is_some_and(|k| matches!(k, KafkaError::MessageProduction(RDKafkaErrorCode::State)))
            // A record of the transaction failed: it can only be aborted.
            || matches!(c.downcast_ref::<crate::shell::publish::PublishError>(), Some(crate::shell::publish::PublishError::Delivery { .. }))
            || kafka_error(c).is_some_and(|k| matches!(k, KafkaError::Transaction(t) if t.txn_requires_abort()))
            // The producer must be replaced, which aborts its transaction.
            || matches!(c.downcast_ref::<TxnError>(), Some(TxnError::Stuck { .. }))
    })
}

fn kafka_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a KafkaError> {
    e.downcast_ref::<KafkaError>()
        .or_else(|| match e.downcast_ref::<crate::shell::publish::PublishError>() {
            Some(crate::shell::publish::PublishError::Send(k)) => Some(k),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<TxnError>() {
            Some(TxnError::Kafka(k)) => Some(k),
            _ => None,
        })
}

/// An error librdkafka says the same call may be made again after.
pub trait Retriable: std::fmt::Display {
    fn retriable(&self) -> bool;
}

impl Retriable for KafkaError {
    fn retriable(&self) -> bool {
        matches!(self, KafkaError::Transaction(e) if e.is_retriable())
    }
}

impl Retriable for TxnError {
    fn retriable(&self) -> bool {
        matches!(self, TxnError::Kafka(k) if k.retriable())
    }
}

/// Runs a transactional call again while librdkafka says it is retriable
/// (with the same arguments, as it requires), backing off up to ~10 s.
///
/// # Errors
/// The call's error once it is not retriable, or after the last try.
pub fn retry<T, E: Retriable>(mut call: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut wait = Duration::from_millis(50);
    for _ in 0..8 {
        match call() {
            Err(e) if e.retriable() => {
                tracing::debug!(error = %e, "Transactional call retried");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
    call()
}
