//! The Kafka consumer of `care run`: its settings, its rebalance hooks and
//! the poll loop that feeds the [`Worker`].
//!
//! The consumer runs on its own thread with a `BaseConsumer`: polling and
//! the blocking flush and commit calls stay off the tokio workers, and the
//! rebalance hooks (which librdkafka runs inside `poll`, on this thread) can
//! commit synchronously before partitions move on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use care_core::config::Config;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Statistics};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::shell::admin::client_config_with;
use crate::shell::error_code::ErrorCode;
use crate::shell::events;
use crate::shell::metrics::Metrics;
use crate::shell::worker::{Query, TaskStatus, Worker};

/// librdkafka's statistics period.
const STATS_INTERVAL_MS: u32 = 200;

/// How often the state-size gauge is recomputed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(30);

/// Consumer context: the worker, reachable from the rebalance hooks.
pub struct ShellContext {
    /// Only the consumer thread locks it: in the poll loop between polls,
    /// and in the hooks, which run inside `poll` (never while the loop holds
    /// it). A Mutex rather than a RefCell because a context must be `Sync`;
    /// shared because a consumer that failed fatally is replaced by a new
    /// one with a new context, and the worker carries on.
    worker: Arc<Mutex<Worker>>,
    health: TaskStatus,
    /// Counts the client's own errors by code without locking the worker.
    metrics: Arc<Metrics>,
}

impl ShellContext {
    fn worker(&self) -> std::sync::MutexGuard<'_, Worker> {
        self.worker.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for ShellContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.consumer_errors.with_label_values(&[ErrorCode::of_kafka(&error).as_str()]).inc();
        self.health.client_error(&error, reason);
    }

    /// Lag per partition, for the event-time merge (librdkafka's default
    /// logs the whole sample at info level).
    fn stats(&self, statistics: Statistics) {
        self.worker().observe_stats(&statistics);
    }
}

impl ConsumerContext for ShellContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.worker().revoke(consumer, tpl);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.worker().assign(consumer, tpl),
            Rebalance::Error(e) => events::RebalanceFailed { error: e }.emit(),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Consumer settings: manual commits, read_committed, static membership
/// when an `instance_id` is set.
fn consumer_config(cfg: &Config) -> ClientConfig {
    let mut owns = vec![
        ("group.id", cfg.kafka.group_id.clone()),
        ("enable.auto.commit", "false".to_string()),
        ("enable.auto.offset.store", "false".to_string()),
        ("isolation.level", "read_committed".to_string()),
        ("auto.offset.reset", cfg.kafka.auto_offset_reset.clone()),
        ("session.timeout.ms", cfg.kafka.session_timeout_ms.to_string()),
        // range gives partition n of every source topic to one member: a
        // task (and its changelog partition) never splits across instances.
        ("partition.assignment.strategy", "range".to_string()),
        // Lag samples tell the event-time merge when an empty partition is
        // caught up (shell::merge); their period bounds how long a task
        // with several sources waits for a partition that went quiet.
        ("statistics.interval.ms", STATS_INTERVAL_MS.to_string()),
    ];
    if let Some(id) = &cfg.kafka.instance_id {
        owns.push(("group.instance.id", id.clone()));
    }
    client_config_with(cfg, &[], &owns)
}

/// The poll loop: process records, close a batch every interval or when
/// too many outputs are in flight (which pauses consumption until they
/// drain), answer HTTP questions, stop on `shutdown`.
///
/// # Errors
/// The consumer cannot be created, an output is refused, or a commit fails.
pub fn consume(cfg: &Config, mut worker: Worker, mut queries: mpsc::Receiver<Query>, shutdown: &CancellationToken) -> anyhow::Result<()> {
    worker.init()?;
    let health = worker.health();
    // Says what a wait on Kafka of over a second waits for; the loop's
    // thread is the one waiting, so it runs beside it.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (health, stop) = (Arc::clone(&health), Arc::clone(&watching));
        std::thread::Builder::new().name("care-waits".into()).spawn(move || health.watch_waits(&stop)).context("cannot start the wait watcher")?
    };
    let worker = Arc::new(Mutex::new(worker));
    let mut consumer = subscribe(cfg, &worker, &health)?;
    let mut last_gauges = Instant::now().checked_sub(GAUGE_INTERVAL).unwrap_or_else(Instant::now);
    let result = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        health.turned();
        let polled = {
            let _call = health.kafka_call();
            consumer.poll(Duration::from_millis(50))
        };
        let mut w = consumer.context().worker();
        match polled {
            Some(Ok(msg)) => {
                if let Err(e) = w.process(&consumer, &msg) {
                    break Err(e);
                }
            }
            Some(Err(e)) => events::ConsumerError { error: &e }.emit(&w.metrics),
            None => {}
        }
        if w.poisoned() {
            break Err(anyhow::anyhow!("stopping: a batch failed and could not be rolled back; a restart resumes from the last commit"));
        }
        if let Some((code, reason)) = consumer.client().fatal_error() {
            // E.g. a static member fenced by its own rejoin after a session
            // timeout during a broker outage (librdkafka #3437): this
            // consumer is dead, the process need not be. Drop every task
            // (their state comes back from the changelog) and join again.
            events::ConsumerReplaced { code, reason: &reason }.emit(&w.metrics);
            if let Err(e) = w.drop_all_tasks() {
                break Err(e);
            }
            drop(w);
            drop(consumer);
            // Nothing is open any more: a failure here can simply return.
            consumer = subscribe(cfg, &worker, &health)?;
            continue;
        }
        if let Err(e) = w.drain_all(&consumer) {
            break Err(e);
        }
        w.answer(&mut queries);
        let _call = health.kafka_call();
        if let Err(e) = w.restore(&consumer) {
            break Err(e);
        }
        if w.commit_due() {
            if let Err(e) = w.commit(&consumer) {
                break Err(e);
            }
            if last_gauges.elapsed() >= GAUGE_INTERVAL {
                // Walks every customer: too costly per batch, fine twice a minute.
                w.measure_state();
                last_gauges = Instant::now();
            }
        }
    };
    // Exit order: stop consuming, commit, close. After an error nothing is
    // committed, not even by the revoke hook that closing runs.
    if result.is_err() {
        consumer.context().worker().poison();
    }
    let closing = result.and_then(|()| consumer.context().worker().commit(&consumer));
    if closing.is_ok() {
        consumer.context().worker().log_summary("stopping");
    }
    consumer.unsubscribe();
    if closing.is_ok() {
        tracing::info!("Outputs flushed and offsets committed");
    }
    watching.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    closing
}

/// A consumer of the source topics whose hooks reach `worker`.
fn subscribe(cfg: &Config, worker: &Arc<Mutex<Worker>>, health: &TaskStatus) -> anyhow::Result<BaseConsumer<ShellContext>> {
    let metrics = Arc::clone(&worker.lock().unwrap_or_else(|p| p.into_inner()).metrics);
    let ctx = ShellContext { health: Arc::clone(health), worker: Arc::clone(worker), metrics };
    let consumer: BaseConsumer<ShellContext> = consumer_config(cfg).create_with_context(ctx).context("cannot create Kafka consumer")?;
    let topics: Vec<&str> = cfg.sources.iter().map(|s| s.topic.as_str()).collect();
    consumer.subscribe(&topics).context("subscribing to source topics")?;
    tracing::info!(?topics, group = %cfg.kafka.group_id, "Consuming");
    Ok(consumer)
}
