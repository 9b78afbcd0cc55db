//! care — a streaming CARE (Customer satisfaction, Activity decline,
//! Reactivation potential, Existing-customer loyalty) event processor.
//!
//! # Flow
//!
//! ```text
//! Kafka source ─▶ decode ─▶ fold ─▶ detect ─▶ render ─▶ publish ─▶ commit
//!  (source)      (decode)  (state)  (detect)  (output)  (publish)  (source)
//! ```
//!
//! A synchronous, pure core — [`engine::Engine`] — takes a record and the
//! wall-clock value handed in by its caller, and returns output records. It
//! owns per-partition state (customers, stream time, timers, dirty set) and
//! knows no Kafka types. Thin shells drive it: `run` against Kafka with
//! at-least-once delivery (offsets committed only after every output of the
//! batch is acknowledged), `replay` over a JSON lines file, `demo` over a
//! synthetic population, and the benchmarks.
//!
//! # Modules
//!
//! - [`cli`] — the `care` commands: demo, run, replay, check-config.
//! - [`config`] — the TOML config: documented fields, defaults, validation.
//! - [`event`] — the canonical event and its kinds.
//! - [`decode`] — pure: record bytes + source mapping → event or typed error.
//! - [`state`] — per-customer state, activity windows, per-partition stores.
//! - [`detect`] — the CARE detectors as per-customer state machines.
//! - [`engine`] — the core: decode → fold → detect → output records.
//! - [`output`] — output records: CloudEvents headers, JSON payloads, DLQ.
//! - [`scorecard`] — a customer's CARE figures, for `/customers/{id}`.
//! - [`partition`] — the Java clients' murmur2 partitioner.
//! - [`metrics`] — Prometheus metrics with bounded labels.
//! - [`replay`] — the engine over a JSON lines file.
//! - [`demo`] — a synthetic population through the whole pipeline, in-process.
//! - [`source`] — the Kafka shell: consume, process, flush, commit.
//! - [`publish`] — output records → Kafka, acknowledged or failed.
//! - [`http`] — `/metrics`, `/healthz`, `/readyz`, `/customers/{id}`.

pub mod cli;
pub mod config;
pub mod decode;
pub mod demo;
pub mod detect;
pub mod engine;
pub mod event;
pub mod http;
pub mod metrics;
pub mod output;
pub mod partition;
pub mod publish;
pub mod replay;
pub mod scorecard;
pub mod source;
pub mod state;
