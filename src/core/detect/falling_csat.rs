//! Falling CSAT (`io.care.falling_csat.v1`, alerts topic, `opened` and
//! `resolved`): a customer whose last answers are significantly worse than
//! their own earlier ones. Off by default until its false alerts are
//! measured on the quality harness.
//!
//! The test is a beta-binomial one: with the customer's earlier answers (s
//! satisfied of n) the chance of an answer being satisfied is Beta(s + 1,
//! n − s + 1), and the chance that their last `recent_answers` (3) answers
//! hold this few satisfied ones or fewer if nothing changed is the
//! beta-binomial CDF, which allows for the earlier rate being an estimate
//! from few answers. The episode opens when it falls below `significance`
//! (0.01) with at least `min_earlier_answers` (5) earlier ones; with the
//! defaults that takes three unsatisfied answers in a row from a customer
//! whose ten or more earlier answers were all 4s and 5s (p = 0.003), not
//! from one who was often unhappy. Each answer is one test: a steady
//! customer answering m times a month raises at most about m ×
//! significance false alerts a month, fewer since consecutive tests share
//! answers. While open, the earlier answers are frozen (the yardstick does
//! not move toward the fall); it resolves when the last answers are no
//! longer worse at `resolve_p` (0.2): two satisfied of the last three,
//! typically.
//!
//! It stands beside the activity chain and beside low CSAT, which judges
//! the level of the last 90 days, not a change against the customer's own
//! past. Decided on on-time answers only; a late one folds into the
//! lifetime tally.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::stats::beta_binomial_cdf;
use crate::detect::{invalid, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::Event;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// The `[detect.falling_csat]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FallingCsatConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Answers compared with the earlier ones (2 to 16). Default 3.
    #[serde(default = "default_recent_answers")]
    pub recent_answers: u8,
    /// Earlier answers needed before a customer is judged. Default 5.
    #[serde(default = "default_min_earlier_answers")]
    pub min_earlier_answers: u32,
    /// Opens below this chance of answers this bad if nothing changed.
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// Resolves once that chance is at least this (above `significance`).
    #[serde(default = "default_resolve_p")]
    pub resolve_p: f64,
}

fn default_recent_answers() -> u8 {
    3
}
fn default_min_earlier_answers() -> u32 {
    5
}
fn default_significance() -> f64 {
    0.01
}
fn default_resolve_p() -> f64 {
    0.2
}

impl Default for FallingCsatConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl FallingCsatConfig {
    /// Checks the `[detect.falling_csat]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(2..=16).contains(&self.recent_answers) {
            return Err(invalid("detect.falling_csat.recent_answers", "must be from 2 to 16"));
        }
        if !(1..=10_000).contains(&self.min_earlier_answers) {
            return Err(invalid("detect.falling_csat.min_earlier_answers", "must be from 1 to 10000"));
        }
        if !(self.significance > 0.0 && self.significance < 0.5) {
            return Err(invalid("detect.falling_csat.significance", "must be between 0 and 0.5"));
        }
        if !(self.resolve_p > self.significance && self.resolve_p < 1.0) {
            return Err(invalid("detect.falling_csat.resolve_p", "must be above significance (the hysteresis) and below 1"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("falling_csat");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.falling_csat.enabled.then(|| Box::new(FallingCsat::new(&cfg.detect.falling_csat)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[FALLING_CSAT],
    blocks: &[&BLOCK],
};

/// `falling_csat`, on the alerts topic.
pub const FALLING_CSAT: SignalType =
    SignalType(&SignalDef { name: "falling_csat", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.falling_csat.v1")] });

/// A customer's answers as the test reads them: the earlier ones tallied,
/// the recent ones one bit each (bit 0 the newest, set = satisfied).
/// Kept in `Customer::detectors` under [`ID`] from the first answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Answers {
    pub earlier: u32,
    pub earlier_satisfied: u32,
    pub recent_bits: u16,
    pub recent: u8,
    pub open_since_ms: Option<i64>,
}

/// The low `n` bits set (n up to 16).
fn low_bits(n: u8) -> u16 {
    ((1u32 << n) - 1) as u16
}

impl Answers {
    fn recent_satisfied(&self) -> u32 {
        (self.recent_bits & low_bits(self.recent)).count_ones()
    }
}

/// The detector, with its thresholds.
#[derive(Debug, Clone)]
pub struct FallingCsat {
    k: u8,
    min_earlier: u32,
    significance: f64,
    resolve_p: f64,
}

impl FallingCsat {
    pub fn new(c: &FallingCsatConfig) -> FallingCsat {
        FallingCsat { k: c.recent_answers, min_earlier: c.min_earlier_answers, significance: c.significance, resolve_p: c.resolve_p }
    }

    /// Folds one answer into `a` and decides.
    pub fn answer(&self, a: &mut Answers, ts_ms: i64, satisfied: bool, out: &mut Vec<Signal>) {
        // A state kept under a larger `recent_answers` keeps its newest.
        a.recent = a.recent.min(self.k);
        if a.recent == self.k {
            // The oldest recent answer becomes an earlier one, unless the
            // yardstick is frozen by an open episode.
            let oldest = a.recent_bits >> (self.k - 1) & 1;
            if a.open_since_ms.is_none() {
                a.earlier = a.earlier.saturating_add(1);
                a.earlier_satisfied = a.earlier_satisfied.saturating_add(u32::from(oldest));
            }
            a.recent -= 1;
        }
        a.recent_bits = (a.recent_bits << 1 | u16::from(satisfied)) & low_bits(self.k);
        a.recent += 1;
        if a.recent < self.k || a.earlier < self.min_earlier {
            return;
        }
        let evidence = self.evidence(a);
        match a.open_since_ms {
            None if evidence.p_value < self.significance && evidence.recent_pct < evidence.earlier_pct => {
                a.open_since_ms = Some(ts_ms);
                out.push(Signal::opened(FALLING_CSAT, ts_ms, evidence));
            }
            Some(since) if evidence.p_value >= self.resolve_p => {
                a.open_since_ms = None;
                out.push(Signal::resolved(FALLING_CSAT, since, ts_ms, evidence));
            }
            _ => {}
        }
    }

    fn evidence(&self, a: &Answers) -> Evidence {
        let s = a.recent_satisfied();
        let (alpha, beta) = (f64::from(a.earlier_satisfied) + 1.0, f64::from(a.earlier - a.earlier_satisfied) + 1.0);
        let pct = |part: u32, whole: u32| f64::from(part) / f64::from(whole.max(1)) * 100.0;
        Evidence {
            earlier_answers: a.earlier,
            earlier_pct: pct(a.earlier_satisfied, a.earlier),
            recent_answers: u32::from(self.k),
            recent_pct: pct(s, u32::from(self.k)),
            p_value: beta_binomial_cdf(s, u32::from(self.k), alpha, beta),
            significance: self.significance,
        }
    }
}

impl Detector for FallingCsat {
    fn id(&self) -> DetectorId {
        ID
    }

    fn is_open(&self, c: &Customer) -> bool {
        c.detectors.get::<Answers>(ID.0).is_some_and(|a| a.open_since_ms.is_some())
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        c.detectors.get::<Answers>(ID.0).and_then(|a| a.open_since_ms)
    }

    fn supersede(&self, c: &mut Customer) {
        if let Some(a) = c.detectors.get_mut::<Answers>(ID.0) {
            a.open_since_ms = None;
        }
    }

    fn hooks(&self) -> Hooks {
        Hooks::EPISODES.and(Hooks::EVENTS)
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        if let Some(score) = ev.csat {
            self.answer(c.detectors.get_or_insert_with(ID.0, Answers::default), ev.ts_ms, score >= 4, out);
        }
    }
}

/// What an alert carries: the two sides of the comparison and the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub earlier_answers: u32,
    pub earlier_pct: f64,
    pub recent_answers: u32,
    pub recent_pct: f64,
    pub p_value: f64,
    pub significance: f64,
}

/// The `io.care.falling_csat.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    earlier_answers: u32,
    earlier_csat_pct: f64,
    recent_answers: u32,
    recent_csat_pct: f64,
    p_value: f64,
    significance: f64,
}

impl Body for Evidence {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload {
            head: cx.head,
            episode_started_at: cx.started,
            earlier_answers: self.earlier_answers,
            earlier_csat_pct: round(self.earlier_pct, 1),
            recent_answers: self.recent_answers,
            recent_csat_pct: round(self.recent_pct, 1),
            p_value: round(self.p_value, 6),
            significance: self.significance,
        })
    }
}

/// The changelog block of [`Answers`].
pub const BLOCK: StateBlock = StateBlock { id: 10, version: 1, name: "falling csat", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let Some(a) = c.detectors.get::<Answers>(ID.0) else { return };
    put_varint(out, u64::from(a.earlier));
    put_varint(out, u64::from(a.earlier_satisfied));
    out.extend_from_slice(&a.recent_bits.to_le_bytes());
    out.push(a.recent);
    out.push(u8::from(a.open_since_ms.is_some()));
    if let Some(t) = a.open_since_ms {
        put_zigzag(out, t);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let (earlier, earlier_satisfied) = (p.u32("falling_csat.earlier")?, p.u32("falling_csat.earlier_satisfied")?);
    let recent_bits = u16::from_le_bytes(p.array("falling_csat.recent_bits")?);
    let recent = p.u8("falling_csat.recent")?;
    let open_since_ms = match p.u8("falling_csat.open")? {
        0 => None,
        1 => Some(p.zigzag("falling_csat.open_since_ms")?),
        other => return Err(CodecError::Corrupt(format!("falling_csat: open flag {other}"))),
    };
    if earlier_satisfied > earlier || recent > 16 {
        return Err(CodecError::Corrupt(format!("falling_csat: {earlier_satisfied} satisfied of {earlier}, {recent} recent")));
    }
    c.detectors.insert(ID.0, Answers { earlier, earlier_satisfied, recent_bits, recent, open_since_ms });
    Ok(())
}

#[cfg(test)]
#[path = "falling_csat_tests.rs"]
mod tests;
