//! `care state`: a task's or a customer's state as restored from the
//! changelog, as JSON lines, for operators and tests. `replay --state`
//! writes the same lines for the state a replay ends with, so the two can
//! be compared customer by customer.
//!
//! One line per task, `{"task":"0_1","meta":{…}}` (stream time, `emit_from`,
//! next input offsets), then one per customer, `{"task":"0_1","customer":{…}}`
//! in customer-id order.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use care_core::config::Config;
use care_core::engine::{Engine, Rules};
use care_core::task::TaskId;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::shell::admin::client_config;
use crate::shell::durability::Restore;

/// Writes a task's meta line and its customers' lines (only `customer` if given).
pub fn write_task(engine: &Engine, customer: Option<&str>, w: &mut dyn Write) -> std::io::Result<()> {
    let task = engine.id().to_string();
    if customer.is_none() {
        let m = engine.meta();
        let meta = json!({"stream_time_ms": m.stream_time_ms, "emit_from_ms": m.emit_from_ms, "offsets": m.offsets});
        serde_json::to_writer(&mut *w, &json!({"task": task, "meta": meta}))?;
        w.write_all(b"\n")?;
    }
    for c in engine.dump().iter().filter(|c| customer.is_none_or(|id| &*c.id == id)) {
        serde_json::to_writer(&mut *w, &json!({"task": task, "customer": c}))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Restores the tasks of `partitions` (default: every partition of the
/// changelog) and writes their state; with `customer`, only that customer
/// (found on the partition murmur2 gives it).
///
/// # Errors
/// Kafka unreachable, the changelog missing, or a record that cannot be read.
pub fn run(cfg: &Config, partitions: Option<Vec<i32>>, customer: Option<&str>, out: &mut dyn Write) -> anyhow::Result<()> {
    let topic = cfg.kafka.changelog();
    let consumer: BaseConsumer = client_config(cfg).create().context("cannot create a Kafka client")?;
    let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(15)).map_err(|e| anyhow!("cannot reach Kafka at {}: {e}", cfg.kafka.brokers))?;
    let count = md.topics().first().filter(|t| t.error().is_none()).map(|t| t.partitions().len() as i32).filter(|n| *n > 0);
    let count = count.ok_or_else(|| anyhow!("changelog topic {topic:?} does not exist on {}", cfg.kafka.brokers))?;
    let partitions = match (partitions, customer) {
        (Some(ps), _) => ps,
        (None, Some(id)) => vec![care_core::partition::for_key(id.as_bytes(), count)],
        (None, None) => (0..count).collect(),
    };
    let rules = Arc::new(Rules::new(cfg));
    for p in partitions {
        if !(0..count).contains(&p) {
            return Err(anyhow!("--partition {p}: changelog {topic:?} has partitions 0..{count}"));
        }
        let mut engine = Engine::new(rules.clone(), TaskId::source(p));
        let mut restore = Restore::begin(cfg, engine.id(), Vec::new(), None)?;
        let no_faults = crate::shell::faults::Faults::default();
        while !restore.step(&mut engine, Duration::from_millis(500), &no_faults)? {}
        write_task(&engine, customer, out)?;
    }
    out.flush()?;
    Ok(())
}
