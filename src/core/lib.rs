//! care-core — the pure core of care: decode → fold → detect → render.
//!
//! No Kafka, no async runtime, no metrics registry, no wall clock: bytes and
//! an explicit `now` in, output records and a [`tally::Tally`] of what
//! happened out. The compiler holds the line: this crate does not depend on
//! tokio, rdkafka or prometheus. `care` (the shell and the apps) drives it.
//!
//! - [`config`] — the TOML config: documented fields, defaults, validation.
//! - [`event`] — the canonical event and its kinds.
//! - [`decode`] — record bytes + source mapping → event or typed error.
//! - [`time`] — bucket arithmetic in the configured timezone.
//! - [`state`] — per-customer state, activity windows, a task's store.
//! - [`changelog`] — changelog records: customer state and task meta, versioned.
//! - [`detect`] — the CARE detectors as per-customer state machines behind
//!   one `Detector` trait, and the supersession table (dormancy > silence >
//!   decline). A new signal is additions, not engine branches: its detector
//!   file, its variants in `DetectorId`, `Signal` and `SignalType`, its
//!   payload in [`render`], its state block in the codec and its schema; the
//!   engine runs whatever [`detect::enabled`] returns.
//! - [`render`] — output records: CloudEvents headers, JSON payloads, DLQ.
//! - [`scorecard`] — a customer's CARE figures, for `/customers/{id}`.
//! - [`task`] — task ids and the task lifecycle.
//! - [`tally`] — what happened, counted, for the shell to report.
//! - [`model`] — the purchase-day summary, BG/NBD and Gamma-Gamma, their
//!   maximum-likelihood fit and CLV, for `care fit`.
//! - [`engine`] — one task's engine, and the rules all tasks share.
//! - [`partition`] — the Java clients' murmur2 partitioner.

pub mod changelog;
pub mod config;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod event;
pub mod model;
pub mod partition;
pub mod render;
pub mod scorecard;
pub mod state;
pub mod tally;
pub mod task;
pub mod time;
