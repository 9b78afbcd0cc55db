//! The applications on top of the core and the shell.
//!
//! - [`run`] — `care run`: the service against Kafka.
//! - [`replay`] — `care replay`: the engine over a JSON lines file.
//! - [`state`] — `care state`: state restored from the changelog, as JSON lines.
//! - [`demo`] — `care demo`: a synthetic population, in-process, no broker.

pub mod demo;
pub mod replay;
pub mod run;
pub mod state;
