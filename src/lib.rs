//! care — a streaming CARE (Customer satisfaction, Activity decline,
//! Reactivation potential, Existing-customer loyalty) event processor.
//!
//! # Flow
//!
//! ```text
//! Kafka ─▶ consumer ─▶ worker ─▶ decode ─▶ fold ─▶ detect ─▶ render ─▶ publish ─▶ commit
//!          └──────── shell ────┘ └──────────────── care-core ─────────┘ └──── shell ────┘
//! ```
//!
//! Between decode and fold the worker merges a task's source partitions
//! by event time (`shell::merge`, KIP-695), so the order topics are
//! fetched in never changes what is detected.
//!
//! # Layers
//!
//! - **core** (`src/core`, the `care-core` crate, re-exported below): pure
//!   and synchronous. An [`engine::Engine`] is one *task* — the state folded
//!   from one input partition — driven through `&mut self` with a record and
//!   a wall-clock value handed in; it returns output records and a
//!   [`tally::Tally`] of what happened. It depends on no Kafka, async runtime
//!   or metrics crate; the compiler enforces it.
//! - **shell** ([`shell`]): owns Kafka and HTTP. One worker on the consumer
//!   thread owns this instance's tasks; HTTP asks it questions through a
//!   channel and reads task phases from a shared map. At each commit the
//!   shell turns the batch's tally into metrics and logs.
//! - **apps** ([`apps`]): `run`, `replay`, `demo`, `state`, `fit`, each
//!   handed its resources (config, listener, one shutdown token) by [`cli`].
//!   The config comes from a file with the environment's `CARE_*__*`
//!   variables applied over it.
//!
//! Durability: each task's changed customers and a meta record (stream
//! time, `emit_from`, input offsets) go to a compacted changelog at every
//! commit; an assigned task restores from it before its input resumes, at
//! the meta record's offsets. Delivery is exactly-once by default: a batch's
//! outputs, state records and input offsets commit in one Kafka
//! transaction; an aborted one is rolled back through an undo log and
//! processed again. At-least-once is an option.

pub mod apps;
pub mod cli;
pub mod shell;

pub use care_core::{config, decode, detect, engine, event, model, partition, render, scorecard, state, tally, task, time};
