//! The Kafka shell of `care run`: consume → engine → publish → commit.
//!
//! Delivery is at-least-once: input offsets are stored in memory as records
//! are processed and committed only after [`Publisher::flush`] saw every
//! output of the batch acknowledged, so a crash re-reads, never loses. The
//! batch boundary (flush, then commit) is where a transaction will slot in.
//!
//! The consumer runs on its own thread with a `BaseConsumer`: polling and the
//! blocking flush/commit calls stay off the tokio workers, and the rebalance
//! hooks (which run inside `poll`) can flush and commit synchronously.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::cli::wall_clock_ms;
use crate::config::Config;
use crate::engine::{Engine, Input};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::output::OutputRecord;
use crate::publish::Publisher;

/// How long a flush may take before the batch is given up (and re-read).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the state-size gauge is recomputed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(30);

/// Client settings shared by the admin client, consumer and producer.
fn client_config(cfg: &Config) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in &cfg.kafka.options {
        cc.set(k, v);
    }
    cc
}

/// Checks the brokers answer and the source topics exist; creates missing
/// output topics. Errors name the broker or topic.
async fn preflight(cfg: &Config) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg).create().context("cannot create Kafka admin client")?;
    let md = tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, Duration::from_secs(15)))
        .map_err(|e| anyhow!("cannot reach Kafka at {}: {e}", cfg.kafka.brokers))?;
    let partitions = |name: &str| md.topics().iter().find(|t| t.name() == name && t.error().is_none()).map(|t| t.partitions().len());
    let mut counts = Vec::new();
    for s in &cfg.sources {
        let n = partitions(&s.topic).ok_or_else(|| anyhow!("source topic {:?} (source `{}`) does not exist on {}", s.topic, s.name, cfg.kafka.brokers))?;
        counts.push((s.topic.as_str(), n));
    }
    if counts.windows(2).any(|w| w[0].1 != w[1].1) {
        tracing::warn!(topics = ?counts, "Source topics have different partition counts: customers are not co-partitioned");
    }
    let o = &cfg.outputs;
    let missing: Vec<&String> = [&o.alerts, &o.reactivation, &o.dlq].into_iter().filter(|t| partitions(t).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !o.create_topics {
        bail!("output topic(s) {missing:?} do not exist on {} and outputs.create_topics is false", cfg.kafka.brokers);
    }
    let new: Vec<NewTopic> = missing.iter().map(|t| NewTopic::new(t, o.partitions, TopicReplication::Fixed(o.replication_factor))).collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.context("creating output topics")? {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions = o.partitions, "Created output topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic = %t, "Output topic already exists"),
            Err((t, e)) => bail!("cannot create output topic {t:?}: {e}"),
        }
    }
    Ok(())
}

/// State shared between the poll loop and the rebalance hooks, which run
/// on the same thread inside `poll`.
struct Shared {
    engine: Arc<Engine>,
    publisher: Publisher,
    /// Source topic names, indexed like the config's sources.
    topics: Vec<String>,
    /// Next offset to commit per (source index, partition), for processed
    /// records. Keyed by index so recording an offset allocates nothing.
    pending: Mutex<HashMap<(usize, i32), i64>>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Shared {
    /// Flushes outputs, then commits the offsets of everything processed.
    fn commit(&self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() && self.publisher.inflight() == 0 {
            return Ok(());
        }
        self.publisher.flush(FLUSH_TIMEOUT)?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((source, partition), next) in pending.iter() {
            tpl.add_partition_offset(&self.topics[*source], *partition, Offset::Offset(*next))?;
        }
        consumer.commit(&tpl, CommitMode::Sync).context("committing offsets")?;
        pending.clear();
        self.metrics.commits.inc();
        Ok(())
    }
}

/// Consumer context: commits on revoke, tracks assignment for readiness.
struct ShellContext {
    shared: Arc<Shared>,
}

impl ClientContext for ShellContext {}

impl ConsumerContext for ShellContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Commit what was processed before the partitions move on, so the
            // next owner does not re-read it.
            if let Err(e) = self.shared.commit(consumer) {
                tracing::error!(error = %e, "Commit on revoke failed; the next owner re-reads the batch");
            }
            for e in tpl.elements() {
                self.shared.engine.drop_partition(e.partition());
            }
            self.shared.metrics.partitions_assigned.sub(tpl.count() as i64);
            tracing::info!(partitions = tpl.count(), "Partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.shared.metrics.partitions_assigned.add(tpl.count() as i64);
                self.shared.ready.store(true, Ordering::Release);
                tracing::info!(partitions = tpl.count(), "Partitions assigned");
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "Rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Runs the service until `shutdown` is cancelled.
///
/// # Errors
/// Kafka unreachable, a source topic missing, an output undeliverable, or a
/// commit failing. The process exits non-zero and a restart re-reads.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    preflight(&cfg).await?;
    let metrics = Arc::new(Metrics::new());
    let mut engine = Engine::new(&cfg, metrics.clone());
    engine.set_emit_from(Some(emit_from_ms(&cfg)));
    let engine = Arc::new(engine);
    let ready = Arc::new(AtomicBool::new(false));
    let http = if cfg.http.listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&cfg.http.listen).await.with_context(|| format!("cannot listen on http.listen {}", cfg.http.listen))?;
        tracing::info!(addr = %cfg.http.listen, "HTTP listening");
        let state = AppState { engine: engine.clone(), ready: ready.clone() };
        Some(tokio::spawn(crate::http::serve(listener, state, shutdown.clone())))
    };
    let publisher = Publisher::new(&cfg, metrics.clone())?;
    let topics = cfg.sources.iter().map(|s| s.topic.clone()).collect();
    let shared = Arc::new(Shared { engine, publisher, topics, pending: Mutex::new(HashMap::new()), ready, metrics });
    let token = shutdown.clone();
    let worker = std::thread::Builder::new().name("care-consumer".into()).spawn(move || consume(&cfg, shared, &token))?;
    let result = tokio::task::spawn_blocking(move || worker.join()).await?.map_err(|_| anyhow!("consumer thread panicked"))?;
    shutdown.cancel();
    if let Some(h) = http {
        let _ = h.await;
    }
    tracing::info!("Stopped");
    result
}

/// `engine.emit_from` or, by default, the start time minus 24 h, so a
/// backfill folds history without flooding marketing with old alerts.
fn emit_from_ms(cfg: &Config) -> i64 {
    cfg.engine
        .emit_from
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or_else(|| wall_clock_ms() - 86_400_000, |t| t.timestamp_millis())
}

fn consumer_config(cfg: &Config) -> ClientConfig {
    let mut cc = client_config(cfg);
    cc.set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", &cfg.kafka.auto_offset_reset)
        .set("session.timeout.ms", cfg.kafka.session_timeout_ms.to_string());
    if let Some(id) = &cfg.kafka.instance_id {
        cc.set("group.instance.id", id);
    }
    cc
}

/// The poll loop: process records, flush and commit every interval or when
/// too many outputs are in flight (which pauses consumption until they drain).
fn consume(cfg: &Config, shared: Arc<Shared>, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let consumer: BaseConsumer<ShellContext> =
        consumer_config(cfg).create_with_context(ShellContext { shared: shared.clone() }).context("cannot create Kafka consumer")?;
    let topics: Vec<&str> = cfg.sources.iter().map(|s| s.topic.as_str()).collect();
    consumer.subscribe(&topics).context("subscribing to source topics")?;
    tracing::info!(?topics, group = %cfg.kafka.group_id, "Consuming");
    let sources: HashMap<&str, usize> = cfg.sources.iter().enumerate().map(|(i, s)| (s.topic.as_str(), i)).collect();
    let interval = Duration::from_millis(cfg.kafka.commit_interval_ms);
    let idle_after = Duration::from_secs(cfg.engine.idle_advance_secs);
    let lateness_ms = i64::from(cfg.engine.allowed_lateness_secs) * 1000;
    let mut last_commit = Instant::now();
    let mut last_gauges = Instant::now().checked_sub(GAUGE_INTERVAL).unwrap_or_else(Instant::now);
    let mut last_record: HashMap<i32, Instant> = HashMap::new();
    let mut out: Vec<OutputRecord> = Vec::new();
    let result = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        if let Some(polled) = consumer.poll(Duration::from_millis(100)) {
            match polled {
                Ok(msg) => {
                    let Some(&source) = sources.get(msg.topic()) else { continue };
                    let input = Input { source, partition: msg.partition(), offset: msg.offset(), key: msg.key(), payload: msg.payload().unwrap_or_default() };
                    let started = Instant::now();
                    shared.engine.process(&input, wall_clock_ms(), &mut out);
                    shared.metrics.processing_seconds.observe(started.elapsed().as_secs_f64());
                    if let Err(e) = publish_all(&shared, &mut out) {
                        break Err(e);
                    }
                    last_record.insert(msg.partition(), Instant::now());
                    shared.pending.lock().unwrap_or_else(|p| p.into_inner()).insert((source, msg.partition()), msg.offset() + 1);
                }
                Err(e) => tracing::warn!(error = %e, "Consumer error"),
            }
        }
        if shared.publisher.inflight() >= cfg.kafka.max_inflight_records || last_commit.elapsed() >= interval {
            if !idle_after.is_zero() {
                advance_idle(&shared, &mut last_record, idle_after, lateness_ms, &mut out);
                if let Err(e) = publish_all(&shared, &mut out) {
                    break Err(e);
                }
            }
            if let Err(e) = shared.commit(&consumer) {
                break Err(e);
            }
            last_commit = Instant::now();
            if last_gauges.elapsed() >= GAUGE_INTERVAL {
                // Walks every customer: too costly per batch, fine twice a minute.
                shared.metrics.state_bytes.set(shared.engine.state_bytes() as i64);
                last_gauges = Instant::now();
            }
        }
    };
    // Exit order: stop consuming, flush outputs, commit, close.
    let closing = result.and_then(|()| shared.commit(&consumer));
    consumer.unsubscribe();
    if closing.is_ok() {
        tracing::info!("Outputs flushed and offsets committed");
    }
    closing
}

fn publish_all(shared: &Shared, out: &mut Vec<OutputRecord>) -> anyhow::Result<()> {
    for r in out.drain(..) {
        shared.publisher.send(&r)?;
    }
    Ok(())
}

/// Moves the stream time of partitions that have been quiet for `idle_after`
/// to the wall clock minus allowed lateness, so silence on a quiet topic is
/// still detected.
fn advance_idle(shared: &Shared, last: &mut HashMap<i32, Instant>, idle_after: Duration, lateness_ms: i64, out: &mut Vec<OutputRecord>) {
    let to = wall_clock_ms() - lateness_ms;
    for (partition, seen) in last.iter_mut() {
        if seen.elapsed() >= idle_after {
            shared.engine.advance(*partition, to, out);
            *seen = Instant::now();
        }
    }
}
