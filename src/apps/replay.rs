//! `care replay`: the engine over a JSON lines file.
//!
//! Each line is a record of the canonical format (or of a configured
//! source's shape with `--source`), routed to one of `--partitions` tasks by
//! murmur2(customer_id) exactly as `run` would see it on a topic keyed by
//! customer. Every output record is written as one JSON line in emission
//! order, DLQ included, holding exactly the bytes `run` would publish:
//!
//! ```text
//! {"topic":"care.alerts","key":"c-1","headers":[["ce_id","…"],…],"value":{…}}
//! ```
//!
//! `value` is the record's value verbatim when it is one JSON value on one
//! line (never re-parsed, so numbers keep their exact digits), else
//! `value_b64` holds it in base64. A null key stays `null`; a key that is
//! not UTF-8 is `key_b64`. Headers are an ordered list of pairs. A dead
//! letter names the input line as its offset, on partition 0. No timer fires
//! past the last event unless `--advance-to` moves stream time on.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::sync::Arc;

use base64::Engine as _;
use care_core::config::Config;
use care_core::detect::{SignalType, Status};
use care_core::engine::{Input, Routed, Rules};
use care_core::render::{signal_type_of, OutputRecord, TopicRole};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

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
    /// Write the final state here, as `care state` prints it.
    pub state_out: Option<std::path::PathBuf>,
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
    /// How much warning decline and silence gave before customers turned dormant.
    pub lead_times: LeadTimes,
    /// Stopped early by the shutdown token (Ctrl-C).
    pub interrupted: bool,
}

/// Days from a customer's early warning (the first decline or silence
/// `opened` still open) to their turning dormant: how much time the alerts
/// leave to act before a customer lapses.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeadTimes {
    pub dormant: u64,
    /// Dormancies that an open warning preceded.
    pub warned: u64,
    /// Lead time percentiles in days, of the warned ones.
    pub p10_days: Option<f64>,
    pub p50_days: Option<f64>,
    pub p90_days: Option<f64>,
    #[serde(skip)]
    open: HashMap<Vec<u8>, i64>,
    #[serde(skip)]
    days: Vec<f64>,
}

impl LeadTimes {
    /// Takes one output record into account.
    pub fn observe(&mut self, r: &OutputRecord) {
        let (Some(t), Some(key)) = (r.header("ce_type").and_then(signal_type_of), r.key.as_deref()) else { return };
        let opened = r.status() == Some(Status::Opened);
        match t {
            SignalType::ActivityDecline | SignalType::Silence if opened => {
                self.open.entry(key.to_vec()).or_insert(r.trigger_ms);
            }
            SignalType::ActivityDecline | SignalType::Silence => {
                self.open.remove(key);
            }
            SignalType::Dormant => {
                self.dormant += 1;
                if let Some(warned_ms) = self.open.remove(key) {
                    self.warned += 1;
                    self.days.push((r.trigger_ms - warned_ms) as f64 / 86_400_000.0);
                }
            }
            SignalType::Reactivated | SignalType::FirstOrder => {}
        }
    }

    fn finish(&mut self) {
        self.days.sort_by(f64::total_cmp);
        let at = |q: f64| (!self.days.is_empty()).then(|| self.days[((self.days.len() - 1) as f64 * q).round() as usize]);
        (self.p10_days, self.p50_days, self.p90_days) = (at(0.1), at(0.5), at(0.9));
    }
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_b64: Option<String>,
    headers: Vec<(&'static str, std::borrow::Cow<'a, str>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_b64: Option<String>,
}

/// The configured topic name of a role.
pub fn topic_name(cfg: &Config, role: TopicRole) -> &str {
    match role {
        TopicRole::Alerts => &cfg.outputs.alerts,
        TopicRole::Reactivation => &cfg.outputs.reactivation,
        TopicRole::Dlq => &cfg.outputs.dlq,
    }
}

/// The value as one JSON value on one line, byte for byte, if it is one.
fn verbatim_json(bytes: &[u8]) -> Option<&RawValue> {
    if bytes.contains(&b'\n') || bytes.contains(&b'\r') {
        return None; // would break the one-record-per-line format
    }
    let raw: &RawValue = serde_json::from_slice(bytes).ok()?;
    (raw.get().len() == bytes.len()).then_some(raw)
}

/// Writes one output record as a JSON line.
pub fn write_record(cfg: &Config, r: &OutputRecord, w: &mut dyn Write) -> std::io::Result<()> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let key_text = r.key.as_deref().map(std::str::from_utf8);
    let value = verbatim_json(&r.value);
    let line = Line {
        topic: topic_name(cfg, r.role),
        key: key_text.and_then(Result::ok),
        key_b64: matches!(key_text, Some(Err(_))).then(|| b64(r.key.as_deref().unwrap_or_default())),
        headers: r.headers.iter().map(|(k, v)| (*k, String::from_utf8_lossy(v))).collect(),
        value,
        value_b64: value.is_none().then(|| b64(&r.value)),
    };
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}

/// Replays `input` through fresh tasks, writing outputs to `out`, until the
/// input ends or `shutdown` is cancelled. `now_wall_ms` is the clock for the
/// future-skew check.
///
/// # Errors
/// Unknown source, bad partition count, or I/O on input or output.
pub fn run(cfg: &Config, opts: &Options, input: &mut dyn BufRead, out: &mut dyn Write, now_wall_ms: i64, shutdown: &CancellationToken) -> Result<Summary, ReplayError> {
    if opts.partitions < 1 {
        return Err(ReplayError::Partitions);
    }
    let rules = Arc::new(Rules::new(cfg));
    let source = match &opts.source {
        Some(name) => rules.source_index(name).filter(|&i| i != rules.canonical_source()).ok_or_else(|| ReplayError::UnknownSource(name.clone()))?,
        None => rules.canonical_source(),
    };
    let mut tasks = Routed::new(rules, opts.partitions);
    tasks.set_emit_from(opts.emit_from_ms);
    let mut records = Vec::new();
    let mut line = Vec::new();
    let mut offset = 0i64;
    let mut interrupted = false;
    let mut leads = LeadTimes::default();
    loop {
        if shutdown.is_cancelled() {
            interrupted = true;
            break;
        }
        line.clear();
        if input.read_until(b'\n', &mut line).map_err(ReplayError::Read)? == 0 {
            break;
        }
        let payload = trim_line(&line);
        if !payload.iter().all(u8::is_ascii_whitespace) {
            let rec = Input { source, partition: 0, offset, key: None, payload };
            tasks.process(&rec, now_wall_ms, &mut records);
            write_all(cfg, &mut records, &mut leads, out)?;
        }
        offset += 1;
    }
    if let Some(to) = opts.advance_to_ms.filter(|_| !interrupted) {
        tasks.advance(to, &mut records);
        write_all(cfg, &mut records, &mut leads, out)?;
    }
    out.flush().map_err(ReplayError::Write)?;
    if let Some(path) = &opts.state_out {
        write_state(&tasks, path).map_err(ReplayError::Write)?;
    }
    leads.finish();
    Ok(summary(&tasks, source, interrupted, leads))
}

fn write_state(tasks: &Routed, path: &std::path::Path) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for t in tasks.tasks() {
        crate::apps::state::write_task(t, None, &mut w)?;
    }
    w.flush()
}

fn write_all(cfg: &Config, records: &mut Vec<OutputRecord>, leads: &mut LeadTimes, out: &mut dyn Write) -> Result<(), ReplayError> {
    for r in records.drain(..) {
        leads.observe(&r);
        write_record(cfg, &r, out).map_err(ReplayError::Write)?;
    }
    Ok(())
}

fn trim_line(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| *b != b'\n' && *b != b'\r').map_or(0, |i| i + 1);
    &line[..end]
}

fn summary(tasks: &Routed, source: usize, interrupted: bool, lead_times: LeadTimes) -> Summary {
    let tally = tasks.tally();
    let s = &tally.sources[source];
    let signals: BTreeMap<&'static str, u64> = SignalType::ALL.iter().map(|t| (t.as_str(), tally.emitted[t.idx()])).collect();
    let customer_days = tasks.customer_days();
    let per_1000_customer_days = signals
        .iter()
        .map(|(t, n)| (*t, if customer_days > 0.0 { *n as f64 * 1000.0 / customer_days } else { 0.0 }))
        .collect();
    Summary {
        records: s.consumed,
        folded: s.folded_total(),
        late: s.late,
        duplicate: s.duplicate,
        rejected: s.rejected_total(),
        customers: tasks.customer_count(),
        customer_days,
        signals,
        per_1000_customer_days,
        lead_times,
        interrupted,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn replay(input: &str, partitions: i32) -> (String, Summary) {
        let cfg = Config::parse("", "t").unwrap();
        let opts = Options { source: None, partitions, emit_from_ms: None, advance_to_ms: None, state_out: None };
        let mut out = Vec::new();
        let s = run(&cfg, &opts, &mut input.as_bytes(), &mut out, i64::MAX / 4, &CancellationToken::new()).unwrap();
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn the_report_gives_the_lead_time_from_an_open_warning_to_dormancy() {
        // `a` acts 4 times a day, then stops: decline, then silence (which
        // supersedes it), then dormancy. `c` does the same but comes back
        // before dormancy: its warning closes, its later dormancy (if any)
        // is unwarned. `b` keeps stream time moving.
        let mut events: Vec<(i64, &str)> = Vec::new();
        for d in 0..110 {
            let day = 1_767_225_600 + d * 86_400;
            if d < 40 {
                (0..4).for_each(|h| events.extend([(day + h * 3_600, "a"), (day + h * 3_600 + 60, "c")]));
            }
            if d == 50 {
                events.push((day, "c"));
            }
            events.push((day + 43_200, "b"));
        }
        events.sort();
        let input: String = events.iter().map(|(ts, c)| format!("{{\"customer_id\":\"{c}\",\"kind\":\"click\",\"ts\":{ts}}}\n")).collect();
        let (out, s) = replay(&input, 1);
        let time = |key: &str, ce_type: &str| -> i64 {
            let line = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["key"] == key && v["headers"][3][1] == ce_type).unwrap();
            chrono::DateTime::parse_from_rfc3339(line["headers"][4][1].as_str().unwrap()).unwrap().timestamp_millis()
        };
        let lead = (time("a", "io.care.dormant.v1") - time("a", "io.care.activity_decline.v2")) as f64 / 86_400_000.0;
        assert_eq!((s.lead_times.dormant, s.lead_times.warned), (1, 1), "{out}");
        assert_eq!(s.lead_times.p50_days, Some(lead));
        assert!(lead > 50.0, "warned about 55 days ahead: {lead}");
    }

    #[test]
    fn writes_dead_letters_as_lines_and_counts_everything() {
        let input = "{\"customer_id\":\"a\",\"kind\":\"click\",\"ts\":1767225600}\n\nnot json\n[1, 2]\n";
        let (out, s) = replay(input, 4);
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["topic"], "care.dlq");
        assert_eq!(lines[0]["key"], Value::Null, "a null key stays null");
        assert_eq!(lines[0]["value_b64"], "bm90IGpzb24=", "not JSON: base64");
        assert_eq!(lines[0]["headers"][2], serde_json::json!(["care_source_offset", "2"]), "headers in order");
        assert!(out.lines().nth(1).unwrap().contains(r#""value":[1, 2]"#), "JSON verbatim, spacing kept: {out}");
        assert_eq!((s.records, s.folded, s.rejected, s.customers), (3, 1, 2, 1));
    }

    #[test]
    fn values_are_written_verbatim_never_reparsed() {
        let cfg = Config::parse("", "t").unwrap();
        // A float whose shortest form a lossy parser would not give back.
        let value = br#"{"p_value":0.00012345678901234567,"n":1e400}"#.to_vec();
        let r = OutputRecord { role: TopicRole::Alerts, key: Some(b"c".to_vec()), headers: vec![("ce_id", b"x".to_vec())], value: value.clone(), trigger_ms: 0 };
        let mut out = Vec::new();
        write_record(&cfg, &r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!(r#""value":{}"#, String::from_utf8(value).unwrap())), "{text}");
        let pretty = OutputRecord { value: b"{\n \"a\": 1\n}".to_vec(), ..r };
        let mut out = Vec::new();
        write_record(&cfg, &pretty, &mut out).unwrap();
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line per record");
        assert!(String::from_utf8(out).unwrap().contains("value_b64"));
    }

    #[test]
    fn unknown_source_is_an_error() {
        let cfg = Config::parse("", "t").unwrap();
        let opts = Options { source: Some("nope".into()), partitions: 1, emit_from_ms: None, advance_to_ms: None, state_out: None };
        let err = run(&cfg, &opts, &mut "".as_bytes(), &mut Vec::new(), 0, &CancellationToken::new()).unwrap_err();
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn a_cancelled_token_stops_before_reading() {
        let cfg = Config::parse("", "t").unwrap();
        let opts = Options { source: None, partitions: 1, emit_from_ms: None, advance_to_ms: None, state_out: None };
        let token = CancellationToken::new();
        token.cancel();
        let s = run(&cfg, &opts, &mut "not json\n".as_bytes(), &mut Vec::new(), 0, &token).unwrap();
        assert!(s.interrupted);
        assert_eq!(s.records, 0);
    }
}
