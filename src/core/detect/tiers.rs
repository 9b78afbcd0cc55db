//! Loyalty tiers (`io.care.tier_changed.v1`, alerts topic): each buyer's
//! RFM scores and the tier they put them in, with one message per change.
//! Off by default (a stage of the loyalty work; profiles and population
//! figures come later).
//!
//! Scores, 1 to 5, from the buyer's purchase days (`purchases`):
//! - R from days since the last purchase day: ≤ `recency_days`[0] (30) is
//!   5, ≤ [1] (60) 4, ≤ [2] (120) 3, ≤ [3] (240) 2, else 1;
//! - F from purchase days: ≥ `frequency_days`[3] (16) is 5, ≥ [2] (8) 4,
//!   ≥ [1] (4) 3, ≥ [0] (2) 2, else 1;
//! - M from total spend against `monetary` (50, 200, 500, 1000) likewise.
//!
//! Tiers, first match: `champion` R ≥ 4 and F ≥ 4; `loyal` R ≥ 3 and F ≥ 3;
//! `potential` R ≥ 3; `at_risk` R = 2 and F ≥ 3; `hibernating` R = 2;
//! `lost` R = 1. M is reported, not tiered on. Customers who never
//! ordered have no tier.
//!
//! Recency falls with time alone, so the tier is re-evaluated on the
//! customer's events and by a timer set for the day their R would next
//! fall. Hysteresis: a better tier is taken at once (an order), a worse
//! one only once it holds with the recency thresholds stretched by
//! `hysteresis` (25 %), so a buyer who orders about every 30 days does not
//! swing between champion and loyal each month. A late order folds into
//! the purchase days; the tier follows at the next event or timer.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::purchases::{self, PurchaseHistory};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::{invalid, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::Event;
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::time::Buckets;
use crate::wire::{CodecError, Reader};

/// The `[detect.tiers]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Days since the last purchase day at or under which R is 5, 4, 3, 2.
    #[serde(default = "default_recency")]
    pub recency_days: [u32; 4],
    /// Purchase days at or over which F is 2, 3, 4, 5.
    #[serde(default = "default_frequency")]
    pub frequency_days: [u32; 4],
    /// Total spend at or over which M is 2, 3, 4, 5.
    #[serde(default = "default_monetary")]
    pub monetary: [f64; 4],
    /// How far recency must pass a threshold before a tier drops (0.25 =
    /// 25 % more days).
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f64,
}

fn default_recency() -> [u32; 4] {
    [30, 60, 120, 240]
}
fn default_frequency() -> [u32; 4] {
    [2, 4, 8, 16]
}
fn default_monetary() -> [f64; 4] {
    [50.0, 200.0, 500.0, 1000.0]
}
fn default_hysteresis() -> f64 {
    0.25
}

impl Default for TiersConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl TiersConfig {
    /// Checks the `[detect.tiers]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let rising = |v: &[f64]| v.windows(2).all(|w| w[0] < w[1]) && v[0] >= 0.0 && v.iter().all(|x| x.is_finite());
        if !rising(&self.recency_days.map(f64::from)) || self.recency_days[0] == 0 {
            return Err(invalid("detect.tiers.recency_days", "must be four rising numbers of days, the first at least 1"));
        }
        if !rising(&self.frequency_days.map(f64::from)) {
            return Err(invalid("detect.tiers.frequency_days", "must be four rising counts of purchase days"));
        }
        if !rising(&self.monetary) {
            return Err(invalid("detect.tiers.monetary", "must be four rising amounts"));
        }
        if !(0.0..=2.0).contains(&self.hysteresis) {
            return Err(invalid("detect.tiers.hysteresis", "must be from 0 to 2"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("tiers");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| (cfg.detect.tiers.enabled && cfg.detect.purchases.enabled).then(|| Box::new(Tiers::new(cfg)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[TIER_CHANGED],
    blocks: &[&BLOCK],
};

/// `tier_changed`, on the alerts topic.
pub const TIER_CHANGED: SignalType =
    SignalType(&SignalDef { name: "tier_changed", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.tier_changed.v1")] });

/// The tiers, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Champion,
    Loyal,
    Potential,
    AtRisk,
    Hibernating,
    Lost,
}

impl Tier {
    pub const ALL: [Tier; 6] = [Tier::Champion, Tier::Loyal, Tier::Potential, Tier::AtRisk, Tier::Hibernating, Tier::Lost];

    /// Its position in [`Tier::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in payloads and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Champion => "champion",
            Tier::Loyal => "loyal",
            Tier::Potential => "potential",
            Tier::AtRisk => "at_risk",
            Tier::Hibernating => "hibernating",
            Tier::Lost => "lost",
        }
    }

    /// The tier of R and F scores.
    pub fn of(r: u8, f: u8) -> Tier {
        match (r, f) {
            (4.., 4..) => Tier::Champion,
            (3.., 3..) => Tier::Loyal,
            (3.., _) => Tier::Potential,
            (2, 3..) => Tier::AtRisk,
            (2, _) => Tier::Hibernating,
            _ => Tier::Lost,
        }
    }
}

/// The customer's tier, kept in `Customer::detectors` under [`ID`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Current {
    pub tier: Tier,
}

/// RFM scores, each 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rfm {
    pub f: u8,
    pub m: u8,
    pub r: u8,
}

/// The detector, with its thresholds.
#[derive(Debug, Clone)]
pub struct Tiers {
    days: Buckets,
    recency: [f64; 4],
    frequency: [u32; 4],
    monetary: [f64; 4],
    stretch: f64,
}

impl Tiers {
    pub fn new(cfg: &Config) -> Tiers {
        let c = &cfg.detect.tiers;
        Tiers { days: purchases::day_buckets(cfg), recency: c.recency_days.map(f64::from), frequency: c.frequency_days, monetary: c.monetary, stretch: 1.0 + c.hysteresis }
    }

    /// The scores `days_since` days after the last purchase day, with the
    /// recency thresholds stretched by `stretch`.
    fn rfm(&self, h: &PurchaseHistory, days_since: i64, stretch: f64) -> Rfm {
        let r = 5 - self.recency.iter().take_while(|t| days_since as f64 > **t * stretch).count() as u8;
        let f = 1 + self.frequency.iter().filter(|t| h.days.days >= **t).count() as u8;
        let m = 1 + self.monetary.iter().filter(|t| h.days.total_value() >= **t).count() as u8;
        Rfm { r, f, m }
    }

    /// The scores on `day`, without hysteresis: what a profile shows.
    pub fn scores(&self, h: &PurchaseHistory, day: i64) -> Rfm {
        self.rfm(h, (day - h.days.last_day).max(0), 1.0)
    }

    /// The tier on `day`: a better one at once, a worse one only if it
    /// holds with the recency thresholds stretched.
    fn decide(&self, h: &PurchaseHistory, day: i64, current: Option<Tier>) -> (Tier, Rfm) {
        let since = (day - h.days.last_day).max(0);
        let rfm = self.rfm(h, since, 1.0);
        let plain = Tier::of(rfm.r, rfm.f);
        match current {
            Some(now) if plain > now => {
                let lenient = self.rfm(h, since, self.stretch);
                (Tier::of(lenient.r, lenient.f).max(now).min(plain), rfm)
            }
            _ => (plain, rfm),
        }
    }

    /// The first day R falls below its value on `day` with the stretched
    /// thresholds: when the tier may next drop.
    fn next_drop_day(&self, h: &PurchaseHistory, day: i64) -> Option<i64> {
        self.next_r_drop(h, day, self.stretch)
    }

    /// The first day R falls below its value on `day`, with the recency
    /// thresholds stretched by `stretch` (1: as scored).
    pub fn next_r_drop(&self, h: &PurchaseHistory, day: i64, stretch: f64) -> Option<i64> {
        let since = (day - h.days.last_day).max(0) as f64;
        let next = self.recency.iter().map(|t| t * stretch).find(|t| since <= *t)?;
        Some(h.days.last_day + next.floor() as i64 + 1)
    }

    fn evaluate(&self, c: &mut Customer, day: i64, at_ms: i64, out: &mut Vec<Signal>) {
        let Some(h) = purchases::history(c, self.days) else { return };
        let current = c.detectors.get::<Current>(ID.0).map(|t| t.tier);
        let (tier, rfm) = self.decide(&h, day, current);
        if current != Some(tier) {
            c.detectors.insert(ID.0, Current { tier });
            let change = Change { from: current, to: tier, rfm, days_since_last_order: (day - h.days.last_day).max(0), purchase_days: h.days.days, total_spent: h.days.total_value() };
            out.push(Signal::single(TIER_CHANGED, at_ms, change));
        }
    }
}

impl Detector for Tiers {
    fn id(&self) -> DetectorId {
        ID
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        self.evaluate(c, self.days.of(at.now_ms), at.trigger_ms, out);
    }

    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        let h = purchases::history(c, self.days)?;
        let day = self.next_drop_day(&h, self.days.of(at.now_ms))?;
        Some(self.days.start_ms(day)).filter(|t| *t > at.sealed_ms)
    }

    fn hooks(&self) -> Hooks {
        Hooks::TIMERS.and(Hooks::EVENTS)
    }

    /// Any event: an order changes the scores, and stream time moved.
    fn on_event(&self, c: &mut Customer, at: Moment, ev: &Event, out: &mut Vec<Signal>) {
        self.evaluate(c, self.days.of(at.now_ms), ev.ts_ms, out);
    }
}

/// What a tier change carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: Option<Tier>,
    pub to: Tier,
    pub rfm: Rfm,
    pub days_since_last_order: i64,
    pub purchase_days: u32,
    pub total_spent: f64,
}

/// The `io.care.tier_changed.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    from: Option<Tier>,
    to: Tier,
    r: u8,
    f: u8,
    m: u8,
    days_since_last_order: i64,
    purchase_days: u32,
    total_spent: f64,
}

impl Body for Change {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload {
            head: cx.head,
            from: self.from,
            to: self.to,
            r: self.rfm.r,
            f: self.rfm.f,
            m: self.rfm.m,
            days_since_last_order: self.days_since_last_order,
            purchase_days: self.purchase_days,
            total_spent: round(self.total_spent, 2),
        })
    }
}

/// The changelog block of [`Current`]: the tier's index, best first.
pub const BLOCK: StateBlock = StateBlock { id: 12, version: 1, name: "tiers", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    if let Some(t) = c.detectors.get::<Current>(ID.0) {
        out.push(t.tier.index() as u8);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let i = p.u8("tiers.tier")?;
    let tier = *Tier::ALL.get(usize::from(i)).ok_or_else(|| CodecError::Corrupt(format!("tiers: tier {i}")))?;
    c.detectors.insert(ID.0, Current { tier });
    Ok(())
}

#[cfg(test)]
#[path = "tiers_tests.rs"]
mod tests;
