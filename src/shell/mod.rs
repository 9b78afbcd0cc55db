//! The async shell around the core: it owns Kafka, HTTP and metrics, and
//! turns what the core says happened into records, metrics and logs.
//!
//! - [`admin`] — every Kafka client's settings by one rule; start-up checks, then topic creation.
//! - [`consumer`] — consumer settings, rebalance hooks, the poll loop.
//! - [`durability`] — changelog restore and input positioning.
//! - [`source`] — a source record's envelope for the engine; the routing check.
//! - [`worker`] — the one owner of this instance's tasks: process, publish, commit.
//! - [`merge`] — a task's partitions merged by event time (KIP-695).
//! - [`publish`] — output records → Kafka, acknowledged or failed.
//! - [`txn`] — transactional calls, bounded even where librdkafka hangs.
//! - [`health`] — task phases, Kafka reachability and loop progress, for readiness and liveness.
//! - [`instance`] — one live process per instance id, announced with what it holds.
//! - [`peers`] — which instance holds which partition, from the announcements.
//! - [`http`] — `/metrics`, `/livez` (`/healthz`), `/readyz`, `/tasks`, `/customers/{id}`.
//! - [`metrics`] — the Prometheus registry, bounded labels.
//! - [`events`] — internal events: each logs and counts one happening.
//! - [`error_code`] — errors in a few bounded words, for metric labels and logs.
//! - [`faults`] — named crash points for fault tests (`CARE_FAULT`).
//! - [`clock`] — the wall clock, read only at the edge.

pub mod admin;
pub mod clock;
pub mod consumer;
pub mod durability;
pub mod error_code;
pub mod events;
pub mod faults;
pub mod health;
pub mod http;
pub mod instance;
pub mod merge;
pub mod metrics;
pub mod peers;
pub mod publish;
pub mod source;
pub mod txn;
pub mod worker;
