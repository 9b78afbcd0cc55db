//! HTTP: `/metrics` (Prometheus text), `/healthz`, `/readyz` and
//! `/customers/{id}` (the current CARE scorecard).
//!
//! Handlers copy what they need out of the engine and hold no map guard
//! across an `.await`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Set once the consumer joined its group and got an assignment.
    pub ready: Arc<AtomicBool>,
}

/// The router, separate from serving so tests can drive it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
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
    let m = s.engine.metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render()).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: waiting for partition assignment\n").into_response()
    }
}

async fn customer(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.engine.scorecard(&id) {
        Some(card) => Json(card).into_response(),
        None => (StatusCode::NOT_FOUND, "no such customer on this instance\n").into_response(),
    }
}
