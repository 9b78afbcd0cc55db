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
//! - [`wire`] — varints and a bounds-checked reader, the changelog's byte layer.
//! - [`detect`] — the CARE detectors as per-customer state machines behind
//!   one `Detector` trait, the [`detect::registry`] of them, and the
//!   supersession each declares (dormancy > silence > decline; others stand
//!   beside that chain). The engine runs whatever the registry enables.
//! - [`render`] — output records: CloudEvents headers, JSON payloads, DLQ.
//! - [`scorecard`] — a customer's CARE figures, for `/customers/{id}`.
//! - [`task`] — task ids and the task lifecycle.
//! - [`tally`] — what happened, counted, for the shell to report.
//! - [`engine`] — one task's engine, and the rules all tasks share.
//! - [`partition`] — the Java clients' murmur2 partitioner.

//!
//! # Adding a signal: the checklist
//!
//! What `io.care.first_order.v1` took, and so what any new signal takes.
//! The compiler or a test catches every step but the first two, which are
//! the work itself.
//!
//! 1. `detect/<name>.rs`: the detector (a [`detect::Detector`]; `on_event`
//!    sees every on-time event of any kind, `on_activity` and timers the
//!    activity ones), its `[detect.<name>]` config table with defaults and
//!    validation, its `ID`, its registry `ENTRY`, what it `supersedes`
//!    (nothing, unless it belongs in the activity chain), and its payload
//!    struct deriving `Serialize` (starting with `render::Head`). State of its own, if any: a field of
//!    [`state::Customer`] (the dump follows by itself) and a
//!    `state::codec::StateBlock` in the same file with a new block id.
//! 2. `schemas/<ce_type>.json`: the payload's schema; `tests/schemas.rs`
//!    fails until an emitted payload is exercised and validated against it
//!    (its scenario and negative checks).
//! 3. Its entry in [`detect::registry::REGISTRY`], after every detector that
//!    supersedes it (a registry test checks the order), and its config
//!    field in `config::DetectConfig`.
//! 4. Its variants: the decision in [`detect::Signal`] (and its arms in
//!    `signal_type`, `trigger_ms`, `episode_ms`, `status`; `version` if not
//!    1), a [`detect::SignalType`] if it is a new type (name, topic), its
//!    `(type, version) → ce_type` row in [`render::CE_TYPES`] and its arm in
//!    `render/payloads.rs`. Non-exhaustive matches fail to compile.
//! 5. If it has state: its block in `state::codec`'s `BLOCKS` (both
//!    changelog fixtures must keep restoring; write a new one for it).
//! 6. The apps' exhaustive matches on [`detect::SignalType`] (quality
//!    scoring, replay lead times) decide what the new type means there.
//!
//! Step 4 is the part still not local to the detector's file: a boxed
//! typed payload in place of the `Signal` enum would remove it.

pub mod changelog;
pub mod config;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod event;
pub mod partition;
pub mod render;
pub mod scorecard;
pub mod state;
pub mod tally;
pub mod task;
pub mod time;
pub mod wire;
