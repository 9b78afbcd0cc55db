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
//!
//! Several inputs, each with its source (`-i web.jsonl --source web -i
//! orders.jsonl --source orders`), are merged by event time as `run` merges
//! a task's topics: each file is read in its own order, and the record
//! taken next is the one with the smallest event time among the files'
//! next records (the first file on a tie; a record without a usable time
//! goes at once).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::sync::Arc;

use base64::Engine as _;
use care_core::config::Config;
use care_core::decode::RejectCode;
use care_core::detect::decline::ACTIVITY_DECLINE;
use care_core::detect::dormancy::DORMANT;
use care_core::detect::silence::SILENCE;
use care_core::detect::Status;
use care_core::engine::{Engine, Input, Outcome, Prepared, Routed, Rules};
use care_core::render::{signal_type_of, OutputRecord};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source mapping to apply to each line of a single input; `None` =
    /// canonical. [`run_merged`] takes one per input instead.
    pub source: Option<String>,
    pub partitions: i32,
    /// Suppress signals triggered before this instant (ms).
    pub emit_from_ms: Option<i64>,
    /// Advance every partition's stream time to this instant at the end.
    pub advance_to_ms: Option<i64>,
    /// Write the final state here, as `care state` prints it.
    pub state_out: Option<std::path::PathBuf>,
    /// Write every customer's scorecard here, as `/customers/{id}` answers.
    pub scorecards_out: Option<std::path::PathBuf>,
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
    /// Unknown or ignored types.
    pub skipped: u64,
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
    /// What the user should know (e.g. raw lines replayed as canonical);
    /// the command line prints them to stderr.
    #[serde(skip)]
    pub warnings: Vec<String>,
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
        // The warnings of the activity chain, and the dormancy they warn of;
        // other signals have no lead time.
        if t == ACTIVITY_DECLINE || t == SILENCE {
            if opened {
                self.open.entry(key.to_vec()).or_insert(r.trigger_ms);
            } else {
                self.open.remove(key);
            }
        } else if t == DORMANT {
            self.dormant += 1;
            if let Some(warned_ms) = self.open.remove(key) {
                self.warned += 1;
                self.days.push((r.trigger_ms - warned_ms) as f64 / 86_400_000.0);
            }
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
        topic: r.role.topic(&cfg.outputs),
        key: key_text.and_then(Result::ok),
        key_b64: matches!(key_text, Some(Err(_))).then(|| b64(r.key.as_deref().unwrap_or_default())),
        headers: r.headers.iter().map(|(k, v)| (k, String::from_utf8_lossy(v))).collect(),
        value,
        value_b64: value.is_none().then(|| b64(&r.value)),
    };
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}

/// One input of a replay: its lines and the source whose mapping they
/// take (`None`: canonical events).
pub struct InputFile<'a> {
    pub name: String,
    pub source: Option<String>,
    pub lines: &'a mut dyn BufRead,
}

/// Replays `input` through fresh tasks, writing outputs to `out`, until the
/// input ends or `shutdown` is cancelled. `now_wall_ms` is the clock for the
/// future-skew check.
///
/// # Errors
/// Unknown source, bad partition count, or I/O on input or output.
pub fn run(cfg: &Config, opts: &Options, input: &mut dyn BufRead, out: &mut dyn Write, now_wall_ms: i64, shutdown: &CancellationToken) -> Result<Summary, ReplayError> {
    let inputs = vec![InputFile { name: "the input".into(), source: opts.source.clone(), lines: input }];
    run_merged(cfg, opts, inputs, out, now_wall_ms, shutdown)
}

/// Canonical records looked at for the `--source` hint.
const HINT_SAMPLE: u64 = 20;

/// One input's reading position and next record.
struct Reader<'a, 'b> {
    file: &'b mut InputFile<'a>,
    source: usize,
    /// Line number of the next line to read.
    offset: i64,
    /// The next record, decoded (to order it) and its event time.
    head: Option<(i64, Vec<u8>, Prepared, i64)>,
    done: bool,
    /// Of its first canonical records: how many, how many missing a field.
    sampled: (u64, u64),
}

impl Reader<'_, '_> {
    /// Reads the next non-blank line into `head`, unless one is there.
    fn fill(&mut self, rules: &Rules, now_wall_ms: i64) -> Result<(), ReplayError> {
        let mut line = Vec::new();
        while self.head.is_none() && !self.done {
            line.clear();
            if self.file.lines.read_until(b'\n', &mut line).map_err(ReplayError::Read)? == 0 {
                self.done = true;
                break;
            }
            let offset = self.offset;
            self.offset += 1;
            let payload = trim_line(&line);
            if payload.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let payload = payload.to_vec();
            let input = Input { source: self.source, partition: 0, offset, key: None, payload: &payload };
            let prepared = rules.prepare(&input, false, now_wall_ms);
            // Records that are no event go at once: they move no stream time.
            let ts = prepared.event_time_ms().unwrap_or(i64::MIN);
            self.head = Some((ts, payload, prepared, offset));
        }
        Ok(())
    }
}

/// Replays several inputs through fresh tasks, merged by event time (see
/// the module doc).
///
/// # Errors
/// Unknown source, bad partition count, or I/O on input or output.
pub fn run_merged(cfg: &Config, opts: &Options, mut inputs: Vec<InputFile<'_>>, out: &mut dyn Write, now_wall_ms: i64, shutdown: &CancellationToken) -> Result<Summary, ReplayError> {
    if opts.partitions < 1 {
        return Err(ReplayError::Partitions);
    }
    let rules = Arc::new(Rules::new(cfg));
    let mut readers = Vec::with_capacity(inputs.len());
    for file in &mut inputs {
        let source = match &file.source {
            Some(name) if name == "canonical" => rules.canonical_source(),
            Some(name) => rules.source_index(name).filter(|&i| i != rules.canonical_source()).ok_or_else(|| ReplayError::UnknownSource(name.clone()))?,
            None => rules.canonical_source(),
        };
        readers.push(Reader { file, source, offset: 0, head: None, done: false, sampled: (0, 0) });
    }
    let mut tasks = Routed::new(rules.clone(), opts.partitions);
    tasks.set_emit_from(opts.emit_from_ms);
    let mut records = Vec::new();
    let mut interrupted = false;
    let mut leads = LeadTimes::default();
    // Progress on a terminal only: piped, replay's stderr stays quiet.
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut done: u64 = 0;
    loop {
        done += 1;
        if progress && done % PROGRESS_RECORDS == 0 {
            eprint!("\rcare replay: {done} records, {} customers", tasks.customer_count());
        }
        if shutdown.is_cancelled() {
            interrupted = true;
            break;
        }
        for r in &mut readers {
            r.fill(&rules, now_wall_ms)?;
        }
        // The smallest head time; the first input on a tie.
        let next = readers.iter().enumerate().filter_map(|(i, r)| r.head.as_ref().map(|h| (h.0, i))).min();
        let Some((_, i)) = next else { break };
        let r = &mut readers[i];
        let Some((_, payload, prepared, offset)) = r.head.take() else { break };
        let input = Input { source: r.source, partition: 0, offset, key: None, payload: &payload };
        let outcome = tasks.dispatch(&input, &prepared, &mut records);
        if r.source == rules.canonical_source() && r.sampled.0 < HINT_SAMPLE {
            r.sampled.0 += 1;
            r.sampled.1 += u64::from(outcome == Outcome::Rejected(RejectCode::MissingField));
        }
        write_all(cfg, &mut records, &mut leads, out)?;
    }
    if progress && done > PROGRESS_RECORDS {
        eprintln!("\rcare replay: {} records, {} customers", done - 1, tasks.customer_count());
    }
    if let Some(to) = opts.advance_to_ms.filter(|_| !interrupted) {
        tasks.advance(to, &mut records);
        write_all(cfg, &mut records, &mut leads, out)?;
    }
    out.flush().map_err(ReplayError::Write)?;
    if let Some(path) = &opts.state_out {
        write_state(cfg, &tasks, path).map_err(ReplayError::Write)?;
    }
    if let Some(path) = &opts.scorecards_out {
        write_scorecards(&tasks, path).map_err(ReplayError::Write)?;
    }
    leads.finish();
    let warnings = readers.iter().filter(|r| r.sampled.0 > 0 && r.sampled.1 == r.sampled.0).map(|r| source_hint(cfg, &r.file.name, r.sampled.0)).collect();
    let sources: Vec<usize> = readers.iter().map(|r| r.source).collect();
    Ok(Summary { warnings, ..summary(&tasks, &sources, interrupted, leads) })
}

/// Records between two progress lines on a terminal.
const PROGRESS_RECORDS: u64 = 1 << 18;

/// Raw lines replayed as canonical events lack `customer_id` and `kind`:
/// every one is a dead letter, which is easy to miss in the output.
fn source_hint(cfg: &Config, input: &str, n: u64) -> String {
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
    let sources = if names.is_empty() { "none are configured".to_string() } else { format!("this config has {}", names.join(", ")) };
    format!(
        "care replay: the first {n} records of {input} were all rejected for a missing required field (missing_field): \
         they are read as canonical events; if they are a source's raw records, pass `--source NAME` ({sources})"
    )
}

/// One JSON line per customer, by partition then customer id.
fn write_scorecards(tasks: &Routed, path: &std::path::Path) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for card in tasks.tasks().iter().flat_map(Engine::scorecards) {
        serde_json::to_writer(&mut w, &card)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

fn write_state(cfg: &Config, tasks: &Routed, path: &std::path::Path) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let view = crate::apps::state::View::new(cfg);
    for t in tasks.tasks() {
        crate::apps::state::write_task(&view, t, None, &mut w)?;
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

fn summary(tasks: &Routed, sources: &[usize], interrupted: bool, lead_times: LeadTimes) -> Summary {
    let tally = tasks.tally();
    let mut s = care_core::tally::SourceTally::default();
    let mut seen = Vec::new();
    for &i in sources {
        if !seen.contains(&i) {
            seen.push(i);
            s.add(&tally.sources[i]);
        }
    }
    let signals: BTreeMap<&'static str, u64> = care_core::detect::registry::signal_types().iter().map(|t| (t.as_str(), tally.emitted[t.idx()])).collect();
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
        skipped: s.skipped_total(),
        rejected: s.rejected_total(),
        customers: tasks.customer_count(),
        customer_days,
        signals,
        per_1000_customer_days,
        lead_times,
        interrupted,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
