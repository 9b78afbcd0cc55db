//! Low CSAT: a customer whose recent answers are mostly unsatisfied
//! (`io.care.csat_low.v1`, on the alerts topic, `opened` and `resolved`).
//!
//! CSAT % = answers of 4 or 5 on 1–5 ÷ all answers × 100 (SPEC, "CARE
//! signals"), over the customer's last `window_days` (90), not their
//! lifetime: a customer unhappy two years ago and happy since is not low.
//! The window is held as [`BUCKETS`] hopping buckets of `window_days ÷ 6`
//! days (rounded up) each, so it spans the last 75 to 90 days by default:
//! answers leave it a bucket at a time. No event lists: 40 bytes, boxed,
//! for a customer who answered, 8 for one who never did.
//!
//! An episode opens on an answer that leaves at least `min_answers` (3) in
//! the window and its CSAT at or below `open_pct` (40 %), so one bad answer
//! is not evidence. It resolves on an answer that lifts the window's CSAT
//! above `exit_pct` (60 %): the gap between the two levels is the
//! hysteresis that keeps a customer hovering around 40 % from flapping. It
//! is decided on answers only: answers ageing out of the window never
//! resolve it by themselves (no news is not good news), and a late answer
//! (beyond the allowed lateness) folds into the lifetime tally only.
//!
//! It stands beside the activity chain, superseding nothing and superseded
//! by nothing: an unhappy customer who also goes quiet gets both messages.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{invalid, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::Event;
use crate::time::rfc3339;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_zigzag, CodecError, Reader};

const DAY_MS: i64 = 86_400_000;

/// Buckets the window is held in.
pub const BUCKETS: usize = 6;

/// The `[detect.csat_low]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CsatLowConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The window CSAT is measured over, in days (6 to 3653). Default 90.
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Answers the window must hold for an episode to open. Default 3.
    #[serde(default = "default_min_answers")]
    pub min_answers: u32,
    /// Opens at or below this CSAT %. Default 40.
    #[serde(default = "default_open_pct")]
    pub open_pct: f64,
    /// Resolves above this CSAT %, which must be above `open_pct`.
    /// Default 60.
    #[serde(default = "default_exit_pct")]
    pub exit_pct: f64,
}

fn default_window_days() -> u32 {
    90
}
fn default_min_answers() -> u32 {
    3
}
fn default_open_pct() -> f64 {
    40.0
}
fn default_exit_pct() -> f64 {
    60.0
}

impl Default for CsatLowConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl CsatLowConfig {
    /// # Errors
    /// A key out of range, or `exit_pct` not above `open_pct` (no hysteresis).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(6..=3653).contains(&self.window_days) {
            return Err(invalid("detect.csat_low.window_days", "must be from 6 to 3653"));
        }
        if !(1..=1000).contains(&self.min_answers) {
            return Err(invalid("detect.csat_low.min_answers", "must be from 1 to 1000"));
        }
        if !(0.0..100.0).contains(&self.open_pct) {
            return Err(invalid("detect.csat_low.open_pct", "must be from 0 to below 100"));
        }
        if !(self.exit_pct > self.open_pct && self.exit_pct <= 100.0) {
            return Err(invalid("detect.csat_low.exit_pct", "must be above open_pct (the hysteresis) and at most 100"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("csat_low");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.csat_low.enabled.then(|| Box::new(CsatLow::new(&cfg.detect.csat_low)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[CSAT_LOW],
    blocks: &[&BLOCK],
};

/// `csat_low`, on the alerts topic.
pub const CSAT_LOW: SignalType = SignalType(&SignalDef { name: "csat_low", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.csat_low.v1")] });

/// A customer's answers over the window, and the open episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CsatWindow {
    /// Bucket number of the newest bucket held (event time ÷ bucket
    /// width); `i64::MIN` before the first answer.
    pub head: i64,
    /// Answers per bucket, ring-indexed by bucket number; saturating.
    pub answers: [u8; BUCKETS],
    /// Of those, answers of 4 or 5.
    pub satisfied: [u8; BUCKETS],
    /// The answer that opened the open episode.
    pub open_since_ms: Option<i64>,
}

impl Default for CsatWindow {
    fn default() -> Self {
        CsatWindow { head: i64::MIN, answers: [0; BUCKETS], satisfied: [0; BUCKETS], open_since_ms: None }
    }
}

impl CsatWindow {
    /// Counts an answer in `bucket`. Returns false (and counts nothing)
    /// when the bucket already left the window.
    pub fn add(&mut self, bucket: i64, satisfied: bool) -> bool {
        if self.head == i64::MIN || bucket > self.head {
            let from = if self.head == i64::MIN { bucket } else { (self.head + 1).max(bucket - BUCKETS as i64 + 1) };
            for b in from..=bucket {
                (self.answers[ring(b)], self.satisfied[ring(b)]) = (0, 0);
            }
            self.head = bucket;
        } else if bucket <= self.head - BUCKETS as i64 {
            return false;
        }
        let i = ring(bucket);
        self.answers[i] = self.answers[i].saturating_add(1);
        self.satisfied[i] = self.satisfied[i].saturating_add(u8::from(satisfied)).min(self.answers[i]);
        true
    }

    /// (answers, satisfied) over the buckets held.
    pub fn totals(&self) -> (u32, u32) {
        let sum = |a: &[u8; BUCKETS]| a.iter().map(|&n| u32::from(n)).sum();
        (sum(&self.answers), sum(&self.satisfied))
    }
}

fn ring(bucket: i64) -> usize {
    bucket.rem_euclid(BUCKETS as i64) as usize
}

/// CSAT %: satisfied ÷ answers × 100; `None` without answers.
pub fn csat_percent(answers: u32, satisfied: u32) -> Option<f64> {
    (answers > 0).then(|| f64::from(satisfied) / f64::from(answers) * 100.0)
}

/// The changelog block of the customer's [`CsatWindow`] (kept in
/// `Customer::detectors` under [`ID`]), when not at its default:
/// head, the buckets' (answers, satisfied) pairs, then the episode.
pub const BLOCK: StateBlock = StateBlock { id: 7, version: 1, name: "csat low", encode: encode_state, decode: decode_state };

/// The customer's window, once they answered a CSAT survey.
pub fn window(c: &Customer) -> Option<&CsatWindow> {
    c.detectors.get(ID.0)
}

fn window_mut(c: &mut Customer) -> &mut CsatWindow {
    c.detectors.get_or_insert_with(ID.0, CsatWindow::default)
}

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let Some(w) = window(c) else { return };
    if *w == CsatWindow::default() {
        return;
    }
    put_zigzag(out, w.head);
    for i in 0..BUCKETS {
        out.extend_from_slice(&[w.answers[i], w.satisfied[i]]);
    }
    out.push(u8::from(w.open_since_ms.is_some()));
    if let Some(t) = w.open_since_ms {
        put_zigzag(out, t);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let w = window_mut(c);
    w.head = p.zigzag("csat_low.head")?;
    for i in 0..BUCKETS {
        (w.answers[i], w.satisfied[i]) = (p.u8("csat_low.answers")?, p.u8("csat_low.satisfied")?);
        if w.satisfied[i] > w.answers[i] {
            return Err(CodecError::Corrupt(format!("csat_low: {} satisfied of {} answers", w.satisfied[i], w.answers[i])));
        }
    }
    w.open_since_ms = match p.u8("csat_low.open")? {
        0 => None,
        1 => Some(p.zigzag("csat_low.open_since_ms")?),
        other => return Err(CodecError::Corrupt(format!("csat_low: open flag {other}"))),
    };
    Ok(())
}

/// The detector, with its parameters.
#[derive(Debug, Clone)]
pub struct CsatLow {
    bucket_ms: i64,
    min_answers: u32,
    open_pct: f64,
    exit_pct: f64,
    window_days: u32,
}

/// The window's figures at a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub answers: u32,
    pub satisfied: u32,
    pub window_days: u32,
    pub open_pct: f64,
    pub exit_pct: f64,
}

impl CsatLow {
    pub fn new(c: &CsatLowConfig) -> CsatLow {
        let bucket_days = c.window_days.div_ceil(BUCKETS as u32);
        CsatLow { bucket_ms: i64::from(bucket_days) * DAY_MS, min_answers: c.min_answers, open_pct: c.open_pct, exit_pct: c.exit_pct, window_days: c.window_days }
    }

    /// Folds one answer into `w` and decides.
    pub fn answer(&self, w: &mut CsatWindow, ts_ms: i64, score: u8, out: &mut Vec<Signal>) {
        if !w.add(ts_ms.div_euclid(self.bucket_ms), score >= 4) {
            return;
        }
        let (answers, satisfied) = w.totals();
        let pct = csat_percent(answers, satisfied).unwrap_or(100.0);
        let figures = Figures { answers, satisfied, window_days: self.window_days, open_pct: self.open_pct, exit_pct: self.exit_pct };
        match w.open_since_ms {
            None if answers >= self.min_answers && pct <= self.open_pct => {
                w.open_since_ms = Some(ts_ms);
                out.push(Signal::opened(CSAT_LOW, ts_ms, figures));
            }
            Some(episode_ms) if pct > self.exit_pct => {
                w.open_since_ms = None;
                out.push(Signal::resolved(CSAT_LOW, episode_ms, ts_ms, figures));
            }
            _ => {}
        }
    }
}

impl Detector for CsatLow {
    fn id(&self) -> DetectorId {
        ID
    }

    fn is_open(&self, c: &Customer) -> bool {
        window(c).is_some_and(|w| w.open_since_ms.is_some())
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        window(c).and_then(|w| w.open_since_ms)
    }

    fn supersede(&self, c: &mut Customer) {
        if let Some(w) = c.detectors.get_mut::<CsatWindow>(ID.0) {
            w.open_since_ms = None;
        }
    }

    fn hooks(&self) -> Hooks {
        Hooks::EPISODES.and(Hooks::EVENTS)
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        if let Some(score) = ev.csat {
            self.answer(window_mut(c), ev.ts_ms, score, out);
        }
    }
}

impl Body for Figures {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload::new(cx.head, cx.episode_ms, self))
    }
}

/// The `io.care.csat_low.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    /// The window's CSAT %, rounded to 1 decimal.
    csat_pct: f64,
    answers: u32,
    satisfied: u32,
    window_days: u32,
    open_pct: f64,
    exit_pct: f64,
}

impl<'a> Payload<'a> {
    pub fn new(head: Head<'a>, episode_ms: i64, f: &Figures) -> Payload<'a> {
        Payload {
            head,
            episode_started_at: rfc3339(episode_ms),
            csat_pct: round(csat_percent(f.answers, f.satisfied).unwrap_or(0.0), 1),
            answers: f.answers,
            satisfied: f.satisfied,
            window_days: f.window_days,
            open_pct: f.open_pct,
            exit_pct: f.exit_pct,
        }
    }
}

#[cfg(test)]
#[path = "csat_low_tests.rs"]
mod tests;
