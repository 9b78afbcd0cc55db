//! The applications on top of the core and the shell.
//!
//! - [`run`] — `care run`: the service against Kafka.
//! - [`replay`] — `care replay`: the engine over a JSON lines file.
//! - [`state`] — `care state`: state restored from the changelog, as JSON lines.
//! - [`check_config`] — `care check-config`: the resolved config, each key with its origin.
//! - [`fit`] — `care fit`: BG/NBD and Gamma-Gamma fitted on a file of orders.
//! - [`fit_population`] — customers drawn from known BG/NBD and Gamma-Gamma parameters.
//! - [`demo`] — `care demo`: a synthetic population, in-process, no broker.
//! - [`population`] — a seeded customer population with ground truth.
//! - [`quality`] — detection quality: a population's alerts scored against its truth.
//! - [`satisfaction`] — satisfaction personas with known change days, and their signals scored.
//! - [`sat_oracle`] — the best detector of falling CSAT and ticket surge that knows the truth but the change: the bound.
//! - [`value_quality`] — purchase-churn quality on buyers drawn from BG/NBD.

pub mod check_config;
pub mod demo;
pub mod fit;
pub mod fit_population;
pub mod population;
pub mod quality;
pub mod replay;
pub mod run;
pub mod sat_oracle;
pub mod satisfaction;
pub mod state;
pub mod value_quality;
