//! The worker: the one owner of this instance's tasks.
//!
//! It runs on the consumer thread. An assigned task first restores its
//! state from the changelog, its input paused; once active, records go to
//! the task of their partition and outputs to the publisher. Every
//! `commit_interval_ms` (or when too many outputs are in flight) it closes
//! the batch: each task's changed customers and meta record go to the
//! changelog, and outputs, state and input offsets commit together, in one
//! transaction (exactly-once) or flushed before the offset commit
//! (at-least-once); only then is the batch's tally reported as metrics.
//!
//! Once anything failed in a way that leaves a batch neither committed nor
//! rolled back, the worker is *poisoned*: it never commits again, and the
//! process exits so a restart resumes from the last commit.
//!
//! The HTTP side never touches a task: it asks through a channel, answered
//! between polls, and reads the task phases from a shared map.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use care_core::config::{Config, Delivery};
use care_core::engine::{Engine, Rules};
use care_core::render::OutputRecord;
use care_core::scorecard::Scorecard;
use care_core::tally::Tally;
use care_core::task::{Phase, TaskId};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};

use crate::shell::clock::wall_clock_ms;
use crate::shell::consumer::ShellContext;
use crate::shell::durability::{requires_abort, retry, Restore};
use crate::shell::error_code::ErrorCode;
use crate::shell::events;
use crate::shell::faults::{Fault, Faults, InjectedAbort};
use crate::shell::merge::{monotonic_us, TaskInput};
use crate::shell::metrics::Metrics;
use crate::shell::publish::Publisher;
use crate::shell::source::Routing;

#[path = "worker_intake.rs"]
mod intake;
#[path = "worker_recovery.rs"]
mod recovery;
#[path = "worker_report.rs"]
mod report;
#[path = "worker_restore.rs"]
mod restore;

/// How long a flush may take before the batch is given up (and re-read).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

pub use crate::shell::health::{Health, TaskStatus};

/// A question from the HTTP side, answered between polls.
pub enum Query {
    /// The scorecard of a customer, if one of this instance's tasks holds them.
    Customer { id: String, reply: oneshot::Sender<Option<Scorecard>> },
}

/// Aborts in a row (no commit between) after which the failure is taken to
/// be permanent (e.g. no write access to an output topic) and care stops.
const MAX_ABORTS_IN_A_ROW: u32 = 5;
/// Producers replaced (each leaks the stuck one) before the process stops.
const MAX_PRODUCER_REPLACEMENTS: u32 = 3;

/// One task and what the worker tracks about it.
struct Slot {
    engine: Engine,
    phase: Phase,
    /// The changelog read of a restoring task, once begun.
    restore: Option<Restore>,
    /// Source topics of this partition currently assigned (a task lives
    /// while any of them is).
    assigned: usize,
    /// When it last got a record, for idle advance.
    last_record: Instant,
    /// Fetched records waiting to be merged by event time.
    input: TaskInput,
    /// What the task's committed batches did since its last data summary,
    /// and since when.
    summary: Tally,
    summary_since: Instant,
    /// Restored, and not yet caught up with its input: its summary is
    /// logged when it is (the story of the backlog, not a minute later).
    catching_up: bool,
}

impl Slot {
    fn new(engine: Engine, sources: usize, assigned: usize) -> Slot {
        let summary = Tally::new(engine.rules().source_count());
        Slot { engine, phase: Phase::Restoring, restore: None, assigned, last_record: Instant::now(), input: TaskInput::new(sources, monotonic_us()), summary, summary_since: Instant::now(), catching_up: false }
    }
}

/// Settings the worker reads per batch.
pub struct Settings {
    pub commit_interval: Duration,
    pub max_inflight: usize,
    /// How long an empty, caught-up partition may hold its task back.
    pub max_task_idle: Duration,
    /// Quiet time after which a task's stream time follows the wall clock; 0 = never.
    pub idle_after: Duration,
    pub lateness_ms: i64,
    /// `emit_from` of a task whose changelog remembers none and whose
    /// config sets none: the start time minus 24 h.
    pub default_emit_from_ms: i64,
}

/// The tasks of this instance and the producer their outputs go to.
pub struct Worker {
    cfg: Arc<Config>,
    rules: Arc<Rules>,
    settings: Settings,
    tasks: BTreeMap<TaskId, Slot>,
    publisher: Publisher,
    /// Source topic → source index.
    sources: HashMap<String, usize>,
    /// Source index → topic.
    topics: Vec<String>,
    status: TaskStatus,
    pub(crate) metrics: Arc<Metrics>,
    out: Vec<OutputRecord>,
    /// Records processed since the last commit.
    uncommitted: u64,
    /// Whether a transaction is open (exactly-once), and since when.
    in_txn: bool,
    txn_opened: Instant,
    aborts_in_a_row: u32,
    /// Producers given up after a transactional call never returned.
    producers_replaced: u32,
    /// A batch could be neither committed nor rolled back: never commit again.
    poisoned: bool,
    faults: Faults,
    last_commit: Instant,
    /// When the data summaries were last logged.
    last_summary: Instant,
    /// A lag sample arrived since the last [`Worker::drain_all`].
    lag_observed: bool,
    last_drain_all: Instant,
    /// Each source's first records, checked for murmur2 partitioning.
    routing: Routing,
    /// Sources whose unknown event types were logged (once per source).
    unknown_logged: Vec<bool>,
    /// Dead letters logged lately, by code (logged sparsely).
    rejected_log: events::Sparse,
}

impl Worker {
    pub fn new(cfg: Arc<Config>, rules: Arc<Rules>, settings: Settings, publisher: Publisher, status: TaskStatus, metrics: Arc<Metrics>) -> Worker {
        let topics: Vec<String> = cfg.sources.iter().map(|s| s.topic.clone()).collect();
        let sources = topics.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        Worker {
            cfg,
            rules,
            settings,
            tasks: BTreeMap::new(),
            publisher,
            sources,
            topics,
            status,
            metrics,
            out: Vec::new(),
            uncommitted: 0,
            in_txn: false,
            txn_opened: Instant::now(),
            aborts_in_a_row: 0,
            producers_replaced: 0,
            poisoned: false,
            faults: Faults::from_env(),
            last_commit: Instant::now(),
            last_summary: Instant::now(),
            lag_observed: false,
            last_drain_all: Instant::now(),
            routing: Routing::default(),
            unknown_logged: Vec::new(),
            rejected_log: events::Sparse::default(),
        }
    }

    /// Prepares delivery: in exactly-once mode, registers the transactional
    /// id, which aborts what a dead predecessor with the same id left open.
    ///
    /// # Errors
    /// The transaction coordinator cannot be reached or the id is fenced.
    pub fn init(&mut self) -> anyhow::Result<()> {
        // Waits out a coordinator that is not up yet: not a stall.
        let status = Arc::clone(&self.status);
        let _wait = status.waiting("the transaction coordinator (initialising transactions)");
        if self.exactly_once() {
            let id = crate::shell::publish::transactional_id(&self.cfg);
            retry(|| self.publisher.init_transactions(Duration::from_secs(30)))
                .with_context(|| format!("cannot initialise transactions for transactional.id {id:?}"))?;
            tracing::info!(transactional_id = %id, "Exactly-once delivery: transactions initialised");
        }
        Ok(())
    }

    /// Creates the tasks of newly assigned partitions, restoring, their
    /// input paused until their state is back.
    pub fn assign(&mut self, consumer: &BaseConsumer<ShellContext>, tpl: &TopicPartitionList) {
        let mut new = Vec::new();
        for e in tpl.elements() {
            let id = TaskId::source(e.partition());
            let slot = self.tasks.entry(id).or_insert_with(|| {
                new.push(id);
                Slot::new(Engine::new(self.rules.clone(), id), self.topics.len(), 0)
            });
            slot.assigned += 1;
        }
        if let Err(e) = consumer.pause(tpl) {
            // Only a partition unknown to the consumer fails here; the
            // restore's seek still puts its input where the state ends.
            tracing::warn!(error = %e, "Cannot pause newly assigned partitions");
        }
        for id in &new {
            self.status.tasks.insert(*id, Phase::Restoring);
        }
        self.status.assigned_nothing.store(self.tasks.is_empty(), std::sync::atomic::Ordering::Relaxed);
        events::TasksAssigned { tasks: &new, partitions: tpl.count() }.emit(&self.metrics);
        self.update_gauges();
    }

    /// Commits what was processed, then drops the tasks whose every source
    /// partition was revoked, so their next owner starts where this one stopped.
    pub fn revoke(&mut self, consumer: &BaseConsumer<ShellContext>, tpl: &TopicPartitionList) {
        self.status.assigned_nothing.store(false, std::sync::atomic::Ordering::Relaxed);
        let mut gone = Vec::new();
        for e in tpl.elements() {
            let id = TaskId::source(e.partition());
            if let Some(slot) = self.tasks.get_mut(&id) {
                slot.assigned = slot.assigned.saturating_sub(1);
                if slot.assigned == 0 {
                    self.status.tasks.insert(id, Phase::Revoking);
                    gone.push(id);
                }
            }
        }
        if let Err(e) = self.close_for_revoke(consumer) {
            // Counted where it failed; the worker is poisoned and care stops.
            tracing::error!(error = %e, code = ErrorCode::of(&e).as_str(), "Cannot hand the revoked tasks over cleanly; stopping so the next owner re-reads the batch");
        }
        for id in &gone {
            if let Some(mut slot) = self.tasks.remove(id) {
                Self::log_task_summary(*id, &mut slot, "revoked");
            }
            self.status.tasks.remove(id);
        }
        self.forget_tasks(&gone);
        events::TasksRevoked { tasks: &gone, partitions: tpl.count() }.emit(&self.metrics);
        self.update_gauges();
    }

    /// Before partitions move on: commit what was processed, unless the
    /// assignment was lost (another member may own them already) or the
    /// worker is poisoned; then, and when the commit fails, roll back
    /// instead, so nothing of this batch can be committed later.
    fn close_for_revoke(&mut self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        let lost = consumer.assignment_lost();
        if !lost && !self.poisoned {
            match self.commit_during(consumer, "revoke") {
                Ok(()) => return Ok(()),
                Err(e) if !self.exactly_once() => {
                    self.poisoned = true;
                    return Err(e);
                }
                Err(_) => {} // counted and logged; rolled back below
            }
        }
        if self.exactly_once() && (self.in_txn || self.uncommitted > 0) {
            let cause = anyhow::anyhow!(if lost { "assignment lost" } else { "revoked before the batch could commit" });
            return self.abort(consumer, &cause);
        }
        Ok(())
    }

    /// The health shared with HTTP.
    pub fn health(&self) -> TaskStatus {
        Arc::clone(&self.status)
    }

    /// Gives up every task at once (the consumer that held them failed for
    /// good): the open transaction is aborted, so nothing of the batch is
    /// ever committed, and the tasks are dropped; a new consumer's
    /// assignment restores them from the changelog.
    ///
    /// # Errors
    /// The transaction could not be aborted (the worker is then poisoned).
    pub fn drop_all_tasks(&mut self) -> anyhow::Result<()> {
        self.status.assigned_nothing.store(false, std::sync::atomic::Ordering::Relaxed);
        if self.in_txn {
            if let Err(e) = self.end_failed_transaction() {
                self.poisoned = true;
                return Err(e.context("aborting the transaction of a failed consumer"));
            }
            self.in_txn = false;
        }
        self.uncommitted = 0;
        self.out.clear();
        let gone: Vec<TaskId> = self.tasks.keys().copied().collect();
        for (id, slot) in &mut self.tasks {
            Self::log_task_summary(*id, slot, "consumer replaced");
        }
        self.tasks.clear();
        self.status.tasks.clear();
        self.forget_tasks(&gone);
        events::TasksRevoked { tasks: &gone, partitions: 0 }.emit(&self.metrics);
        self.metrics.partitions_assigned.set(0);
        self.update_gauges();
        Ok(())
    }

    /// Whether the worker must stop (see the module doc).
    pub fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// Marks the worker as failed: nothing is committed from now on.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Feeds one record to its task and publishes what it caused; an
    /// abortable transaction error aborts the batch.
    ///
    /// # Errors
    /// Kafka refused an output record for good.
    pub fn process(&mut self, consumer: &BaseConsumer<ShellContext>, msg: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        if self.faults.hit_soft(Fault::Stall) {
            tracing::error!("CARE_FAULT=stall reached: the processing loop stops turning");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        match self.feed(consumer, msg) {
            Err(e) if self.exactly_once() && requires_abort(&e) => self.abort(consumer, &e),
            r => r,
        }
    }

    fn publish(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            self.ensure_txn()?;
        }
        for r in self.out.drain(..) {
            self.publisher.send(&r)?;
        }
        Ok(())
    }

    /// Whether the batch should be closed now.
    pub fn commit_due(&self) -> bool {
        self.publisher.inflight() >= self.settings.max_inflight || self.last_commit.elapsed() >= self.settings.commit_interval
    }

    /// Closes the batch: idle advance, then the changelog, outputs and input
    /// offsets committed together (a transaction, or flush then offset
    /// commit at least once), then the batch's tally reported. An abortable
    /// transaction error aborts it and rolls the tasks back instead.
    ///
    /// # Errors
    /// The batch could be neither committed nor aborted; a restart
    /// re-reads it.
    pub fn commit(&mut self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        self.commit_during(consumer, "batch")
    }

    /// [`Worker::commit`], a failure counted as `during` (`batch`, `revoke`).
    fn commit_during(&mut self, consumer: &BaseConsumer<ShellContext>, during: &'static str) -> anyhow::Result<()> {
        self.last_commit = Instant::now();
        if self.poisoned {
            anyhow::bail!("not committing: an earlier batch failed and was not rolled back");
        }
        let closed = self.advance_idle().and_then(|()| {
            if self.uncommitted == 0 && !self.in_txn && self.publisher.inflight() == 0 {
                return Ok(false);
            }
            let started = Instant::now();
            self.close_batch(consumer)?;
            self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
            Ok(true)
        });
        match closed {
            Ok(false) => {
                self.report_caught_up();
                Ok(())
            }
            Ok(true) => {
                self.batch_committed();
                self.report_caught_up();
                Ok(())
            }
            Err(e) => {
                events::CommitFailed { error: &e, during }.emit(&self.metrics);
                if self.exactly_once() && (requires_abort(&e) || self.fenced_for_its_age(&e)) { self.abort(consumer, &e) } else { Err(e) }
            }
        }
    }

    /// Whether `e` is a fence of a transaction open longer than its
    /// timeout. The coordinator aborts such a transaction itself and bumps
    /// the producer's epoch, which librdkafka reports as fenced: what a
    /// broker outage longer than `kafka.transaction_timeout_ms` leaves
    /// behind, not a sign of another instance with this transactional id
    /// (whose fence of a younger transaction still stops care). The
    /// producer is replaced and the batch read again.
    fn fenced_for_its_age(&self, e: &anyhow::Error) -> bool {
        self.txn_outlived_its_timeout() && ErrorCode::of(e) == ErrorCode::Fenced
    }

    /// Whether the open transaction is older than its timeout, so its
    /// coordinator may have aborted it.
    fn txn_outlived_its_timeout(&self) -> bool {
        self.in_txn && self.txn_opened.elapsed() >= Duration::from_millis(u64::from(self.cfg.kafka.transaction_timeout_ms))
    }

    fn exactly_once(&self) -> bool {
        self.cfg.kafka.delivery == Delivery::ExactlyOnce
    }

    /// Opens a transaction before the batch's first record, in exactly-once mode.
    fn ensure_txn(&mut self) -> anyhow::Result<()> {
        if self.exactly_once() && !self.in_txn {
            self.publisher.begin_transaction().context("beginning a transaction")?;
            self.in_txn = true;
            self.txn_opened = Instant::now();
        }
        Ok(())
    }

    fn close_batch(&mut self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        self.ensure_txn()?;
        if !self.exactly_once() {
            // The meta record says the batch is done: it must not land
            // before the batch's outputs did.
            self.flush()?;
        }
        for (id, slot) in self.tasks.iter_mut().filter(|(_, s)| s.phase == Phase::Active) {
            let publisher = &self.publisher;
            slot.engine.write_changes(|key, value| publisher.send_state(id.partition, key, value))?;
        }
        self.faults.hit(Fault::AfterProduce);
        let tpl = self.offsets()?;
        if self.exactly_once() {
            if tpl.count() > 0 {
                let group = Arc::new(consumer.group_metadata().context("no consumer group metadata")?);
                if self.faults.hit_soft(Fault::OutliveTxn) {
                    std::thread::sleep(Duration::from_millis(u64::from(self.cfg.kafka.transaction_timeout_ms)) + Duration::from_secs(3));
                }
                let status = Arc::clone(&self.status);
                let _wait = status.waiting("the consumed offsets to join the transaction");
                let added = if self.faults.hit_soft(Fault::HangOffsets) {
                    self.publisher.hang(false)
                } else {
                    retry(|| self.publisher.send_offsets(&tpl, &group))
                };
                added.context("adding offsets to the transaction")?;
            }
            // rust-rdkafka's commit flushes first, polling in 100 ms steps:
            // drain here so its flush finds nothing to wait for.
            self.flush()?;
            self.faults.hit(Fault::BeforeCommit);
            if self.faults.hit_soft(Fault::AbortBatch) {
                return Err(anyhow::Error::new(InjectedAbort));
            }
            let status = Arc::clone(&self.status);
            let _wait = status.waiting("the transaction to commit");
            let committed = if self.faults.hit_soft(Fault::HangCommit) {
                self.publisher.hang(true)
            } else {
                retry(|| self.publisher.commit_transaction())
            };
            committed.context("committing the transaction")?;
            self.in_txn = false;
        } else {
            self.flush()?;
            self.faults.hit(Fault::BeforeCommit);
            if tpl.count() > 0 {
                let _wait = self.status.waiting("the offset commit");
                consumer.commit(&tpl, CommitMode::Sync).context("committing offsets")?;
            }
        }
        Ok(())
    }

    /// Waits for every output in flight to be acknowledged.
    fn flush(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let _wait = self.status.waiting("Kafka to acknowledge the batch's records");
        self.publisher.flush(FLUSH_TIMEOUT)?;
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The next offset of every source partition the active tasks processed.
    fn offsets(&self) -> anyhow::Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (id, slot) in self.tasks.iter().filter(|(_, s)| s.phase == Phase::Active) {
            for (source, next) in slot.engine.offsets().iter().enumerate() {
                if let (Some(next), Some(topic)) = (next, self.topics.get(source)) {
                    tpl.add_partition_offset(topic, id.partition, Offset::Offset(*next))?;
                }
            }
        }
        Ok(tpl)
    }

    /// Moves the stream time of tasks quiet for `idle_after` and read to
    /// the end of every partition to the wall clock minus allowed
    /// lateness, so silence on a quiet topic is still detected. Quiet is not
    /// enough: a task whose first fetch takes longer than `idle_after` (a
    /// start, a rebalance) would move past its backlog and read all of it
    /// as late (seen with `idle_advance_secs = 1`: 50,286 records late).
    fn advance_idle(&mut self) -> anyhow::Result<()> {
        let idle_after = self.settings.idle_after;
        if idle_after.is_zero() {
            return Ok(());
        }
        let to = wall_clock_ms() - self.settings.lateness_ms;
        for slot in self.tasks.values_mut().filter(|s| s.phase == Phase::Active) {
            if slot.last_record.elapsed() >= idle_after && slot.input.caught_up() {
                slot.engine.advance(to, &mut self.out);
                slot.last_record = Instant::now();
            }
        }
        self.publish()
    }

    /// Answers the HTTP side's pending questions.
    pub fn answer(&mut self, queries: &mut mpsc::Receiver<Query>) {
        while let Ok(q) = queries.try_recv() {
            match q {
                Query::Customer { id, reply } => {
                    let card = self.tasks.values().filter(|s| s.phase == Phase::Active).find_map(|s| s.engine.scorecard(&id));
                    let _ = reply.send(card); // the asker may have timed out
                }
            }
        }
    }
}
