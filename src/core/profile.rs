//! Customer profiles: each customer's scorecard on the compacted
//! `care.customer-profiles` topic, keyed by customer, for a CRM or a
//! marketer to read the current state of everyone without asking care.
//!
//! A profile is sent when something a marketer acts on changes, not on
//! every click or order. Watched: the tier; which episodes are open; the
//! RFM scores (an order moves F and M only across their thresholds, and R
//! falls with time); CSAT % crossing a multiple of `csat_step_pct` (5
//! points); the last NPS answer's class (promoter, passive, detractor);
//! with a fit loaded, P(alive) crossing one of `p_alive_levels` (0.5,
//! 0.3, 0.1) and predicted CLV moving by `clv_step_pct` (10 %) on a log
//! scale. The first event of a customer sends their first profile. At
//! most one profile per customer is sent per `min_interval_secs` of event
//! time (1 h): a change inside the interval is held and sent when it
//! ends, by the customer's timer, so the topic converges to the current
//! state. R and P(alive) fall with time alone, so the customer's timer is
//! also set for the day R would drop or P(alive) cross its next level.
//!
//! During a backfill (stream time before `emit_from`) nothing is sent one
//! by one: when stream time first passes `emit_from`, every customer's
//! profile is sent once, so a backfill ends with a complete topic.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError, ConfigError::Invalid};
use crate::detect::purchases::{self, ValueContext};
use crate::detect::registry::Enabled;
use crate::detect::tiers::{self, Tiers};
use crate::time::Buckets;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// The `[profiles]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesConfig {
    /// Send profiles to `outputs.profiles`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At most one profile per customer per this many seconds of event
    /// time; a change inside it is sent when it ends.
    #[serde(default = "default_min_interval")]
    pub min_interval_secs: u32,
    /// CSAT % is watched in steps of this many points.
    #[serde(default = "default_csat_step")]
    pub csat_step_pct: f64,
    /// Predicted CLV is watched in steps of this many per cent.
    #[serde(default = "default_clv_step")]
    pub clv_step_pct: f64,
    /// P(alive) levels whose crossing sends a profile, falling.
    #[serde(default = "default_levels")]
    pub p_alive_levels: Vec<f64>,
}

fn yes() -> bool {
    true
}
fn default_min_interval() -> u32 {
    3600
}
fn default_csat_step() -> f64 {
    5.0
}
fn default_clv_step() -> f64 {
    10.0
}
fn default_levels() -> Vec<f64> {
    vec![0.5, 0.3, 0.1]
}

impl Default for ProfilesConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

fn invalid(key: &str, reason: &str) -> ConfigError {
    Invalid { key: format!("profiles.{key}"), reason: reason.into() }
}

impl ProfilesConfig {
    /// Checks the `[profiles]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.min_interval_secs > 31 * 86_400 {
            return Err(invalid("min_interval_secs", "must be at most 31 days (2678400)"));
        }
        if !(self.csat_step_pct > 0.0 && self.csat_step_pct <= 100.0) {
            return Err(invalid("csat_step_pct", "must be above 0 and at most 100"));
        }
        if !(self.clv_step_pct >= 1.0 && self.clv_step_pct <= 1000.0) {
            return Err(invalid("clv_step_pct", "must be from 1 to 1000"));
        }
        let l = &self.p_alive_levels;
        if l.len() > 8 || l.iter().any(|p| !(*p > 0.0 && *p < 1.0)) || l.windows(2).any(|w| w[0] <= w[1]) {
            return Err(invalid("p_alive_levels", "must be at most 8 falling numbers between 0 and 1"));
        }
        Ok(())
    }
}

/// What the profile of a customer keeps, in `Customer::detectors` under
/// [`KEY`]: the last NPS and CSAT answers (the scorecard shows the one,
/// population satisfaction counts both, profiles on or off) and what was
/// last sent. Absent values are sentinels, not `Option`s: 48 bytes
/// instead of 80.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The latest NPS and CSAT answers by event time (late ones too) and
    /// their times; `NO_SCORE`: none.
    nps: u8,
    csat: u8,
    nps_at_ms: i64,
    csat_at_ms: i64,
    /// Event time of the last profile sent; `NEVER`: none.
    sent_ms: i64,
    /// Fingerprint of the watched figures in the last profile sent.
    sent_digest: u64,
}

const NEVER: i64 = i64::MIN;
const NO_SCORE: u8 = u8::MAX;

impl Default for Profile {
    fn default() -> Profile {
        Profile { nps: NO_SCORE, csat: NO_SCORE, nps_at_ms: NEVER, csat_at_ms: NEVER, sent_ms: NEVER, sent_digest: 0 }
    }
}

fn some(ms: i64) -> Option<i64> {
    (ms != NEVER).then_some(ms)
}

impl Profile {
    /// The latest NPS answer: score and event time.
    pub fn last_nps(&self) -> Option<(u8, i64)> {
        (self.nps != NO_SCORE).then_some((self.nps, self.nps_at_ms))
    }

    /// The latest CSAT answer: score and event time.
    pub fn last_csat(&self) -> Option<(u8, i64)> {
        (self.csat != NO_SCORE).then_some((self.csat, self.csat_at_ms))
    }

    /// When the last profile was sent, and the fingerprint it had.
    pub fn sent(&self) -> Option<(i64, u64)> {
        some(self.sent_ms).map(|at| (at, self.sent_digest))
    }

    pub fn set_sent(&mut self, at_ms: i64, digest: u64) {
        (self.sent_ms, self.sent_digest) = (at_ms, digest);
    }
}

impl Serialize for Profile {
    /// Named fields, times as `_ms` keys, so `care state` renders them
    /// as RFC 3339 like every other block.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Answer {
            score: u8,
            at_ms: i64,
        }
        #[derive(Serialize)]
        struct Sent {
            at_ms: i64,
            digest: u64,
        }
        #[derive(Serialize)]
        struct Dump {
            last_nps: Option<Answer>,
            last_csat: Option<Answer>,
            sent: Option<Sent>,
        }
        let answer = |a: Option<(u8, i64)>| a.map(|(score, at_ms)| Answer { score, at_ms });
        let sent = self.sent().map(|(at_ms, digest)| Sent { at_ms, digest });
        Dump { last_nps: answer(self.last_nps()), last_csat: answer(self.last_csat()), sent }.serialize(s)
    }
}

pub const KEY: &str = "profile";

/// The last NPS answer of a customer: score and event time.
pub fn last_nps(c: &Customer) -> Option<(u8, i64)> {
    c.detectors.get::<Profile>(KEY).and_then(Profile::last_nps)
}

/// Folds the answers an event given at `ts_ms` carries, on time or late.
pub fn note_answers(c: &mut Customer, csat: Option<u8>, nps: Option<u8>, ts_ms: i64) {
    let p = c.detectors.get_or_insert_with(KEY, Profile::default);
    if let Some(score) = nps.filter(|_| p.last_nps().is_none_or(|(_, at)| ts_ms >= at)) {
        (p.nps, p.nps_at_ms) = (score.min(10), ts_ms);
    }
    if let Some(score) = csat.filter(|_| p.last_csat().is_none_or(|(_, at)| ts_ms >= at)) {
        (p.csat, p.csat_at_ms) = (score.clamp(1, 5), ts_ms);
    }
}

/// Satisfaction of a population, one voice per customer: each customer's
/// latest CSAT and NPS answer, when given within a trailing window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Satisfaction {
    /// Customers whose latest CSAT answer is in the window, and of them
    /// those who answered 4 or 5.
    pub csat_answered: u64,
    pub csat_satisfied: u64,
    /// Customers whose latest NPS answer is in the window, and of them
    /// promoters (9–10) and detractors (0–6).
    pub nps_answered: u64,
    pub nps_promoters: u64,
    pub nps_detractors: u64,
}

impl Satisfaction {
    /// Counts `c` if their latest answers fall in `[from_ms, to_ms]`.
    pub fn add(&mut self, c: &Customer, from_ms: i64, to_ms: i64) {
        let Some(p) = c.detectors.get::<Profile>(KEY) else { return };
        let within = |at: i64| (from_ms..=to_ms).contains(&at);
        if let Some((score, _)) = p.last_csat().filter(|(_, at)| within(*at)) {
            self.csat_answered += 1;
            self.csat_satisfied += u64::from(score >= 4);
        }
        if let Some((score, _)) = p.last_nps().filter(|(_, at)| within(*at)) {
            self.nps_answered += 1;
            self.nps_promoters += u64::from(score >= 9);
            self.nps_detractors += u64::from(score <= 6);
        }
    }
}

/// The compiled `[profiles]` table.
#[derive(Debug, Clone)]
pub struct Params {
    pub interval_ms: i64,
    csat_step: f64,
    clv_log_step: f64,
    levels: Vec<f64>,
    value: Option<ValueContext>,
    tiers: Tiers,
    days: Buckets,
}

/// What a look at a customer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing watched changed since the last profile.
    Unchanged,
    /// Send one now.
    Send,
    /// Changed, but a profile went out less than the interval ago.
    Hold,
}

impl Params {
    /// `None` with profiles off.
    pub fn new(cfg: &Config) -> Option<Params> {
        let p = &cfg.profiles;
        p.enabled.then(|| Params {
            interval_ms: i64::from(p.min_interval_secs) * 1000,
            csat_step: p.csat_step_pct,
            clv_log_step: (1.0 + p.clv_step_pct / 100.0).ln(),
            levels: p.p_alive_levels.clone(),
            value: ValueContext::from_config(cfg),
            tiers: Tiers::new(cfg),
            days: purchases::day_buckets(cfg),
        })
    }

    /// Looks at the customer at `at_ms`: whether to send a profile now,
    /// with the fingerprint to remember and when to look again.
    pub fn look(&self, c: &Customer, detectors: &Enabled, at_ms: i64) -> (Decision, u64, Option<i64>) {
        let kept = c.detectors.get::<Profile>(KEY).copied().unwrap_or_default();
        let (digest, level_ms) = self.watch(c, detectors, at_ms);
        match kept.sent() {
            Some((_, sent_digest)) if digest == sent_digest => (Decision::Unchanged, digest, level_ms),
            Some((sent, _)) if at_ms < sent.saturating_add(self.interval_ms) => {
                (Decision::Hold, digest, Some(level_ms.map_or(sent + self.interval_ms, |l| l.min(sent + self.interval_ms))))
            }
            _ => (Decision::Send, digest, level_ms),
        }
    }

    /// The fingerprint of what is watched, and when R would drop or
    /// P(alive) cross its next level if nothing happens.
    fn watch(&self, c: &Customer, detectors: &Enabled, at_ms: i64) -> (u64, Option<i64>) {
        let mut h = Fnv::default();
        h.put(c.detectors.get::<tiers::Current>(tiers::ID.0).map_or(0, |t| t.tier.index() as u64 + 1));
        let open = detectors.with_episodes().filter(|(_, d)| d.is_open(c)).fold(0u64, |m, (i, _)| m | 1 << i);
        h.put(open);
        let csat = &c.csat;
        h.put(if csat.responses == 0 { u64::MAX } else { (f64::from(csat.satisfied) / f64::from(csat.responses) * 100.0 / self.csat_step).floor() as u64 });
        // Detractor (0–6), passive (7–8), promoter (9–10).
        h.put(last_nps(c).map_or(u64::MAX, |(s, _)| u64::from(s >= 7) + u64::from(s >= 9)));
        let Some(hist) = purchases::history(c, self.days) else { return (h.0, None) };
        let day = self.days.of(at_ms);
        let rfm = self.tiers.scores(&hist, day);
        h.put(u64::from(rfm.r) << 16 | u64::from(rfm.f) << 8 | u64::from(rfm.m));
        let mut next = self.tiers.next_r_drop(&hist, day, 1.0).map(|d| self.days.start_ms(d));
        if let Some(v) = &self.value {
            let f = crate::model::value::figures(&v.fit, &v.horizon, &hist.days, day.max(hist.days.last_day));
            let crossed = self.levels.iter().filter(|l| f.p_alive.unwrap_or(1.0) < **l).count();
            h.put(crossed as u64);
            h.put(f.predicted_clv.map_or(u64::MAX, |v| ((1.0 + v.max(0.0)).ln() / self.clv_log_step).floor() as u64));
            let level = self.levels.get(crossed).and_then(|l| self.level_day_ms(&hist, *l));
            next = earliest(next, level);
        }
        (h.0, next.filter(|t| *t > at_ms))
    }

    fn level_day_ms(&self, h: &purchases::PurchaseHistory, level: f64) -> Option<i64> {
        let v = self.value.as_ref()?;
        let day = v.p_alive_below_day(h, level).filter(|d| d.is_finite() && d.abs() < 1e9)?;
        Some(v.days.start_ms(day as i64))
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// FNV-1a over 64-bit words: a fingerprint that is the same in every
/// process (the std hasher is seeded per process).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn put(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The changelog block of [`Profile`]: a flags byte (last NPS, sent, due,
/// last CSAT), then the answers (score, time), what was sent and when to
/// look again (`Customer::profile_due_ms`), as flagged, times zigzagged.
pub const BLOCK: StateBlock = StateBlock { id: 15, version: 1, name: "profile", encode: encode_state, decode: decode_state };

const HAS_NPS: u8 = 1;
const HAS_SENT: u8 = 2;
const HAS_DUE: u8 = 4;
const HAS_CSAT: u8 = 8;

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let due = c.profile_due_ms();
    let p = c.detectors.get::<Profile>(KEY).copied().unwrap_or_default();
    if p == Profile::default() && due.is_none() {
        return;
    }
    let (nps, csat, sent) = (p.last_nps(), p.last_csat(), p.sent());
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    out.push(flag(nps.is_some(), HAS_NPS) | flag(sent.is_some(), HAS_SENT) | flag(due.is_some(), HAS_DUE) | flag(csat.is_some(), HAS_CSAT));
    for (score, at) in nps.into_iter().chain(csat) {
        out.push(score);
        put_zigzag(out, at);
    }
    if let Some((at, digest)) = sent {
        put_zigzag(out, at);
        put_varint(out, digest);
    }
    if let Some(due) = due {
        put_zigzag(out, due);
    }
}

fn decode_state(c: &mut Customer, _version: u8, r: &mut Reader<'_>) -> Result<(), CodecError> {
    let flags = r.u8("profile.flags")?;
    let mut p = Profile::default();
    if flags & HAS_NPS != 0 {
        let score = r.u8("profile.nps")?;
        if score > 10 {
            return Err(CodecError::Corrupt(format!("profile: NPS answer {score}")));
        }
        (p.nps, p.nps_at_ms) = (score, r.zigzag("profile.nps_at")?);
    }
    if flags & HAS_CSAT != 0 {
        let score = r.u8("profile.csat")?;
        if !(1..=5).contains(&score) {
            return Err(CodecError::Corrupt(format!("profile: CSAT answer {score}")));
        }
        (p.csat, p.csat_at_ms) = (score, r.zigzag("profile.csat_at")?);
    }
    if flags & HAS_SENT != 0 {
        p.set_sent(r.zigzag("profile.sent_ms")?, r.varint("profile.digest")?);
    }
    if flags & HAS_DUE != 0 {
        c.set_profile_due_ms(Some(r.zigzag("profile.due_ms")?));
    }
    if p != Profile::default() {
        c.detectors.insert(KEY, p);
    }
    Ok(())
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
