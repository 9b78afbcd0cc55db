//! `care replay`: the engine over a JSON lines file.
//!
//! Each line is a record of the canonical format (or of a configured
//! source's shape with `--source`), routed to one of `--partitions`
//! partitions by murmur2(customer_id) exactly as `run` would see it on a
//! topic keyed by customer. Every output record is written as one JSON line
//! `{topic, key, headers, value}` in emission order, DLQ included. No timer
//! fires past the last event unless `--advance-to` moves stream time on.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::detect::SignalType;
use crate::engine::{Engine, Input};
use crate::metrics::Metrics;
use crate::output::{OutputRecord, TopicRole};

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source mapping to apply to each line; `None` = canonical.
    pub source: Option<String>,
    pub partitions: i32,
    /// Suppress signals triggered before this instant (ms).
    pub emit_from_ms: Option<i64>,
    /// Advance every partition's stream time to this instant at the end.
    pub advance_to_ms: Option<i64>,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no source named {0:?} in the config")]
    UnknownSource(String),
    #[error("--partitions must be at least 1")]
    Partitions,
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Write(std::io::Error),
}

/// Totals of one replay, for `--report`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub records: u64,
    pub folded: u64,
    pub late: u64,
    pub duplicate: u64,
    pub rejected: u64,
    pub customers: usize,
    pub customer_days: f64,
    pub signals: BTreeMap<&'static str, u64>,
    /// Signals per 1,000 customer-days, by type.
    pub per_1000_customer_days: BTreeMap<&'static str, f64>,
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    key: String,
    headers: BTreeMap<&'static str, String>,
    value: Value,
}

/// The configured topic name of a role.
pub fn topic_name(cfg: &Config, role: TopicRole) -> &str {
    match role {
        TopicRole::Alerts => &cfg.outputs.alerts,
        TopicRole::Reactivation => &cfg.outputs.reactivation,
        TopicRole::Dlq => &cfg.outputs.dlq,
    }
}

/// Writes one output record as a JSON line.
pub fn write_record(cfg: &Config, r: &OutputRecord, w: &mut dyn Write) -> std::io::Result<()> {
    let value = match r.role {
        // Dead letters carry the original bytes, which need not be JSON.
        TopicRole::Dlq => Value::String(String::from_utf8_lossy(&r.value).into_owned()),
        _ => serde_json::from_slice(&r.value).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.value).into_owned())),
    };
    let line = Line {
        topic: topic_name(cfg, r.role),
        key: String::from_utf8_lossy(&r.key).into_owned(),
        headers: r.headers.iter().map(|(k, v)| (*k, String::from_utf8_lossy(v).into_owned())).collect(),
        value,
    };
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}

/// Replays `input` through a fresh engine, writing outputs to `out`.
/// `now_wall_ms` is the clock for the future-skew check.
///
/// # Errors
/// Unknown source, bad partition count, or I/O on input or output.
pub fn run(cfg: &Config, opts: &Options, input: &mut dyn BufRead, out: &mut dyn Write, now_wall_ms: i64) -> Result<Summary, ReplayError> {
    if opts.partitions < 1 {
        return Err(ReplayError::Partitions);
    }
    let mut engine = Engine::new(cfg, Arc::new(Metrics::new()));
    engine.set_emit_from(opts.emit_from_ms);
    let source = match &opts.source {
        Some(name) => engine.source_index(name).filter(|&i| i != engine.canonical_source()).ok_or_else(|| ReplayError::UnknownSource(name.clone()))?,
        None => engine.canonical_source(),
    };
    let mut records = Vec::new();
    let mut line = Vec::new();
    let mut offset = 0i64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(ReplayError::Read)? == 0 {
            break;
        }
        let payload = trim_line(&line);
        if payload.iter().all(u8::is_ascii_whitespace) {
            offset += 1;
            continue;
        }
        let rec = Input { source, partition: 0, offset, key: None, payload };
        engine.process_routed(&rec, opts.partitions, now_wall_ms, &mut records);
        for r in records.drain(..) {
            write_record(cfg, &r, out).map_err(ReplayError::Write)?;
        }
        offset += 1;
    }
    if let Some(to) = opts.advance_to_ms {
        for p in 0..opts.partitions {
            engine.advance(p, to, &mut records);
        }
        for r in records.drain(..) {
            write_record(cfg, &r, out).map_err(ReplayError::Write)?;
        }
    }
    out.flush().map_err(ReplayError::Write)?;
    Ok(summary(&engine, source))
}

fn trim_line(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| *b != b'\n' && *b != b'\r').map_or(0, |i| i + 1);
    &line[..end]
}

fn summary(engine: &Engine, source: usize) -> Summary {
    let (records, folded, late, duplicate, rejected) = engine.counters(source).totals();
    let signals: BTreeMap<&'static str, u64> = SignalType::ALL.iter().map(|t| (t.as_str(), engine.emitted(*t))).collect();
    let customer_days = engine.customer_days();
    let per_1000_customer_days = signals
        .iter()
        .map(|(t, n)| (*t, if customer_days > 0.0 { *n as f64 * 1000.0 / customer_days } else { 0.0 }))
        .collect();
    Summary { records, folded, late, duplicate, rejected, customers: engine.customer_count(), customer_days, signals, per_1000_customer_days }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(input: &str, partitions: i32) -> (String, Summary) {
        let cfg = Config::parse("", "t").unwrap();
        let opts = Options { source: None, partitions, emit_from_ms: None, advance_to_ms: None };
        let mut out = Vec::new();
        let s = run(&cfg, &opts, &mut input.as_bytes(), &mut out, i64::MAX / 4).unwrap();
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn writes_dead_letters_as_lines_and_counts_everything() {
        let input = "{\"customer_id\":\"a\",\"kind\":\"click\",\"ts\":1767225600}\n\nnot json\n";
        let (out, s) = replay(input, 4);
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["topic"], "care.dlq");
        assert_eq!(lines[0]["value"], "not json");
        assert_eq!(lines[0]["headers"]["care_source_offset"], "2");
        assert_eq!((s.records, s.folded, s.rejected, s.customers), (2, 1, 1, 1));
    }

    #[test]
    fn unknown_source_is_an_error() {
        let cfg = Config::parse("", "t").unwrap();
        let opts = Options { source: Some("nope".into()), partitions: 1, emit_from_ms: None, advance_to_ms: None };
        let err = run(&cfg, &opts, &mut "".as_bytes(), &mut Vec::new(), 0).unwrap_err();
        assert!(err.to_string().contains("nope"));
    }
}
