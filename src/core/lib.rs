//! care-core — the pure core of care: decode → fold → detect → render.
//!
//! No Kafka, no async runtime, no metrics registry, no wall clock: bytes and
//! an explicit `now` in, output records and a [`tally::Tally`] of what
//! happened out. The compiler holds the line: this crate does not depend on
//! tokio, rdkafka or prometheus. `care` (the shell and the apps) drives it.
//!
//! - [`config`] — the TOML config: documented fields, defaults, validation.
//! - [`event`] — the canonical event and its kinds.
//! - [`decode`] — record bytes + source mapping → event, skip or typed error.
//! - [`json`] — JSON parsing that rejects duplicate keys.
//! - [`time`] — bucket arithmetic in the configured timezone.
//! - [`state`] — per-customer state, activity windows, a task's store;
//!   detectors' own state in [`state::ext`].
//! - [`changelog`] — changelog records: customer state and task meta, versioned.
//! - [`wire`] — varints and a bounds-checked reader, the changelog's byte layer.
//! - [`detect`] — the CARE detectors as per-customer state machines behind
//!   one `Detector` trait, the [`detect::registry`] of them, the signals
//!   they emit ([`detect::signal`]), and the supersession each declares
//!   (dormancy > silence > decline, and dormancy over purchase churn;
//!   others stand beside that chain). The engine runs whatever the
//!   registry enables.
//! - [`render`] — output records: CloudEvents headers, JSON payloads, DLQ.
//! - [`scorecard`] — a customer's CARE figures, for `/customers/{id}`.
//! - [`profile`] — when a customer's scorecard goes to the profiles topic.
//! - [`task`] — task ids and the task lifecycle.
//! - [`tally`] — what happened, counted, for the shell to report.
//! - [`model`] — the purchase-day summary, BG/NBD and Gamma-Gamma, their
//!   maximum-likelihood fit and CLV, for `care fit`, and one customer's
//!   value figures from a fit, for `care fit` and the stream alike.
//! - [`engine`] — one task's engine, and the rules all tasks share.
//! - [`partition`] — the Java clients' murmur2 partitioner.

//!
//! # Adding a signal: the checklist
//!
//! What `io.care.first_order.v1` took, and so what any new signal takes,
//! with what catches each step when it is forgotten.
//!
//! 1. `detect/<name>.rs`: the detector (a [`detect::Detector`]: `on_event`
//!    sees every on-time event of any kind, with `Hooks::EVENTS` in its
//!    `hooks` (the engine calls only the hooks a detector declares);
//!    `on_activity` and timers the activity ones; an event-only detector
//!    with no episode implements just `id`, `hooks` and `on_event`,
//!    the trait's defaults do the rest), its `[detect.<name>]` config table
//!    with defaults and validation, its `ID`, its registry `ENTRY`, what it
//!    `supersedes` (nothing unless it joins the activity chain), its signal
//!    type (a `const` [`detect::SignalType`]: name, topic, versions and
//!    their `ce_type`s), and the figures it decides as a
//!    [`detect::Body`] that renders its payload (a struct deriving
//!    `Serialize`, flattening [`detect::signal::Head`] first). Tests of its
//!    own, through the engine.
//! 2. `schemas/<ce_type>.json`: its payload's schema. `tests/schemas.rs`
//!    fails until one of its payloads is emitted in a scenario, validates
//!    and has negative checks.
//! 3. One line in the registry's `detectors!` list (`name: Config =>
//!    ENTRY`), after every detector that supersedes it (a registry test
//!    checks the order): it makes the `[detect.<name>]` table part of
//!    `config::DetectConfig` and the entry part of
//!    [`detect::registry::REGISTRY`]. Without it the detector never runs,
//!    its signal type is unknown, and step 2's test fails.
//! 4. Only if it keeps state of its own, in its file too: its type
//!    (`Debug + Clone + PartialEq + Serialize`), kept in the customer's
//!    [`state::ext::Extensions`] (`Customer::detectors`) under its `ID`'s
//!    name (the state dump shows it by itself), and a
//!    `state::codec::StateBlock` with a new block id, listed in its
//!    `ENTRY`'s `blocks` (a codec test checks ids are unique). A restore
//!    test catches a block left out: write a changelog fixture with the
//!    new block, and keep the old ones restoring.
//!
//! That is all: the engine, the renderer, the codec, metrics and the apps
//! take detectors, signal types and state blocks from the registry, so a
//! new signal is counted, labelled, rendered and persisted without an edit
//! there. The quality harness scores the activity chain's signals on one
//! population and the satisfaction signals on another (`replay --report`
//! the activity chain's only).

pub mod changelog;
pub mod config;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod event;
pub mod json;
pub mod model;
pub mod partition;
pub mod profile;
pub mod render;
pub mod scorecard;
pub mod state;
pub mod tally;
pub mod task;
pub mod time;
pub mod wire;
#[cfg(test)]
mod test_support;
