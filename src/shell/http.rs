//! HTTP: `/metrics` (Prometheus text), `/healthz`, `/readyz`, `/tasks` and
//! `/customers/{id}` (the current CARE scorecard).
//!
//! Handlers never touch a task: a customer look-up is a question sent to
//! the worker, which answers between polls; readiness reads the task phases
//! the worker publishes. No lock or map guard is held across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use care_core::task::Phase;

use crate::shell::metrics::Metrics;
use crate::shell::peers::{Holder, Peers};
use crate::shell::worker::{Query, TaskStatus};

/// How long a customer look-up waits for the worker.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub status: TaskStatus,
    pub queries: mpsc::Sender<Query>,
    /// How long the loop may not turn before `/livez` fails (`http.stall_secs`).
    pub stall_after: std::time::Duration,
    /// The bearer token `/customers/{id}` requires, if any (`http.token`).
    pub token: Option<String>,
    /// The sources' partition count: a customer another instance holds is
    /// named by its partition.
    pub partitions: i32,
    /// Which instance holds which partition, from their announcements.
    pub peers: Peers,
    /// This instance's id, left out of `peers` look-ups.
    pub instance_id: String,
}

/// The router, separate from serving so tests can drive it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .route("/readyz", get(readyz))
        .route("/tasks", get(tasks))
        .route("/customers/{id}", get(customer))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled.
///
/// # Errors
/// The listener failed.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

/// Live unless the processing loop has stopped turning for
/// `http.stall_secs` outside a Kafka call: a broker outage (the loop waits
/// in Kafka calls) must not make Kubernetes restart every pod; a stuck
/// loop should.
async fn livez(State(s): State<AppState>) -> Response {
    match s.status.stalled(s.stall_after) {
        Some(idle) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live: the processing loop has not turned for {} s\n", idle.as_secs())).into_response(),
        None => (StatusCode::OK, "ok\n").into_response(),
    }
}

/// Ready once Kafka answers and every task of this instance is active; an
/// instance whose assignment holds no task (more instances than
/// partitions) is ready too, so a rollout does not wait on it for ever.
async fn readyz(State(s): State<AppState>) -> Response {
    if s.status.kafka_unreachable.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: Kafka unreachable\n").into_response();
    }
    let (mut total, mut waiting) = (0, Vec::new());
    for e in s.status.tasks.iter() {
        total += 1;
        if *e.value() != Phase::Active {
            waiting.push(format!("{} {}", e.key(), e.value().as_str()));
        }
    }
    if total == 0 && s.status.assigned_nothing.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::OK, "ready: no tasks assigned (more instances than partitions)\n").into_response()
    } else if total == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: waiting for partition assignment\n").into_response()
    } else if !waiting.is_empty() {
        waiting.sort();
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: tasks {}\n", waiting.join(", "))).into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

/// The tasks of this instance and their phases, e.g. `{"0_1":"active"}`.
async fn tasks(State(s): State<AppState>) -> Response {
    let map: std::collections::BTreeMap<String, &'static str> = s.status.tasks.iter().map(|e| (e.key().to_string(), e.value().as_str())).collect();
    Json(map).into_response()
}

async fn customer(State(s): State<AppState>, Path(id): Path<String>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &s.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a bearer token is required (http.token)\n").into_response();
        }
    }
    let partition = care_core::partition::for_key(id.as_bytes(), s.partitions.max(1));
    let (reply, answer) = oneshot::channel();
    let id_copy = id.clone();
    if s.queries.try_send(Query::Customer { id, reply }).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy: too many look-ups queued, retry\n").into_response();
    }
    match tokio::time::timeout(QUERY_TIMEOUT, answer).await {
        Ok(Ok(Some(card))) => Json(card).into_response(),
        Ok(Ok(None)) => not_here(&s, &id_copy, partition),
        Ok(Err(_)) | Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the worker did not answer in time, retry\n").into_response(),
    }
}

/// Why a customer is not here, and where to ask: this instance holds the
/// customer's task (then care has never seen them, or the task is still
/// restoring), or another one announced it, or nobody did (yet).
fn not_here(s: &AppState, id: &str, partition: i32) -> Response {
    let task = care_core::task::TaskId::source(partition);
    let at = format!("task {task} (partition {partition})");
    match s.status.tasks.get(&task).map(|p| *p.value()) {
        Some(Phase::Active) => {
            let why = format!("no such customer: {at} is held by this instance ({}), and it holds no state for them\n", s.instance_id);
            return (StatusCode::NOT_FOUND, why).into_response();
        }
        Some(phase) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{at} is {} on this instance: retry shortly\n", phase.as_str())).into_response(),
        None => {}
    }
    let why = match s.peers.holder(partition, &s.instance_id, crate::shell::clock::wall_clock_ms()) {
        Some(Holder { instance_id, http: Some(addr) }) => {
            format!("no such customer on this instance: their state lives in {at}, held by instance {instance_id}: ask http://{addr}/customers/{}\n", encode(id))
        }
        Some(Holder { instance_id, http: None }) => format!("no such customer on this instance: their state lives in {at}, held by instance {instance_id} (which serves no HTTP)\n"),
        None => format!("no such customer on this instance: their state lives in {at}; no instance announces it now (a rebalance, or a start under way): see /tasks of each instance\n"),
    };
    (StatusCode::NOT_FOUND, why).into_response()
}

/// A customer id as one URL path segment.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
