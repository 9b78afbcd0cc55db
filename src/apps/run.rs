//! `care run`: the service against Kafka.
//!
//! Resources are passed in, mini-redis style: the caller binds the HTTP
//! listener (tests bind port 0) and owns the shutdown token, which every
//! loop watches. Exit order on shutdown: stop consuming, flush outputs,
//! commit offsets, close.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use care_core::config::Config;
use care_core::engine::Rules;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::shell::clock::wall_clock_ms;
use crate::shell::health::TaskStatus;
use crate::shell::http::AppState;
use crate::shell::instance::Announce;
use crate::shell::metrics::Metrics;
use crate::shell::publish::Publisher;
use crate::shell::worker::{Settings, Worker};

/// Customer look-ups that may wait for the worker at once.
const QUERY_QUEUE: usize = 64;

/// Runs the service until `shutdown` is cancelled; serves HTTP on
/// `listener` if given.
///
/// # Errors
/// Kafka unreachable, a source topic missing, an output undeliverable, or a
/// commit failing. The process exits non-zero and a restart re-reads.
pub async fn run(cfg: Config, listener: Option<TcpListener>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let partitions = crate::shell::admin::preflight(&cfg).await?;
    tracing::info!(partitions, changelog = %cfg.kafka.changelog(), "Topics checked");
    let status: TaskStatus = Arc::default();
    let me = Announce { http: listener.as_ref().and_then(|l| advertised(&cfg, l)), status: Arc::clone(&status) };
    let claim = tokio::task::block_in_place(|| crate::shell::instance::claim(&cfg, me))?;
    // Records off their murmur2 partition are dead letters: folding them
    // would split a customer's state across tasks.
    let rules = Arc::new(Rules::new(&cfg).with_routing_check(partitions));
    // The configured sources only: the canonical mapping is replay's and demo's.
    let names: Vec<&str> = (0..rules.canonical_source()).map(|i| rules.mapping(i).name.as_str()).collect();
    let metrics = Arc::new(Metrics::new(&names));
    let (queries_tx, queries) = mpsc::channel(QUERY_QUEUE);
    let http = listener.map(|l| {
        let state = AppState { metrics: metrics.clone(), status: Arc::clone(&status), queries: queries_tx, stall_after: Duration::from_secs(cfg.http.stall_secs),
            token: cfg.http.token.as_ref().map(|t| t.0.clone()),
            partitions,
            peers: Arc::clone(&claim.peers),
            instance_id: cfg.kafka.instance_id.clone().unwrap_or_default(),
        };
        tokio::spawn(crate::shell::http::serve(l, state, shutdown.clone()))
    });
    let publisher = Publisher::new(&cfg, metrics.clone(), Arc::clone(&status))?;
    let settings = Settings {
        commit_interval: Duration::from_millis(cfg.kafka.commit_interval_ms),
        max_inflight: cfg.kafka.max_inflight_records,
        max_task_idle: Duration::from_millis(cfg.kafka.max_task_idle_ms),
        idle_after: Duration::from_secs(cfg.engine.idle_advance_secs),
        lateness_ms: i64::from(cfg.engine.allowed_lateness_secs) * 1000,
        default_emit_from_ms: wall_clock_ms() - 86_400_000,
    };
    let cfg = Arc::new(cfg);
    let worker = Worker::new(cfg.clone(), rules, settings, publisher, status, metrics);
    let token = shutdown.clone();
    let consumer = std::thread::Builder::new()
        .name("care-consumer".into())
        .spawn(move || crate::shell::consumer::consume(&cfg, worker, queries, &token))
        .context("cannot start the consumer thread")?;
    let result = tokio::task::spawn_blocking(move || consumer.join()).await?.map_err(|_| anyhow!("consumer thread panicked"))?;
    shutdown.cancel();
    if let Some(h) = http {
        let _ = h.await;
    }
    drop(claim); // frees the instance id for a restart at once
    tracing::info!("Stopped");
    result
}

/// The address other instances and clients reach this one's HTTP at:
/// `http.advertised_address`, else the bound address, with an unspecified
/// host (`0.0.0.0`, `::`) replaced by the host name (the pod name).
fn advertised(cfg: &Config, listener: &TcpListener) -> Option<String> {
    if let Some(a) = cfg.http.advertised_address.as_ref().filter(|a| !a.is_empty()) {
        return Some(a.clone());
    }
    let addr = listener.local_addr().ok()?;
    if addr.ip().is_unspecified() {
        Some(format!("{}:{}", crate::shell::instance::host_name(), addr.port()))
    } else {
        Some(addr.to_string())
    }
}
