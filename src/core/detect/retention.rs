//! Retention: each customer's latest activity in each of the last six
//! calendar months (configured timezone), so a task can say who was active
//! at the start and at the end of the last complete month. Emits nothing;
//! [`Figures`] are what the shell exports as per-task numerator and
//! denominator gauges, summed across tasks in PromQL.
//!
//! A customer is active at instant B when they had any activity (an
//! activity kind or an order, late ones included) in the `active_days`
//! (90) before it. For the last complete month, from S to E:
//! - retention = customers active at both S and E ÷ customers active at
//!   S × 100, and churn = 100 − retention;
//! - the textbook retention, (customers active at E − customers first seen
//!   in the month) ÷ customers active at S × 100, beside it;
//! - repeat-purchase rate = buyers with two or more purchase days ÷ buyers.
//!
//! Late activity folds too: it happened. 28 bytes a customer who acted in
//! more than one month.
//!
//! The month of the customer's latest activity is read from
//! `Customer::last_activity_ms`, kept inline for every event anyway, so an
//! activity event touches the months (one more cache miss, on the hot
//! path) only when it moves the latest activity into another month: the
//! month it leaves is folded then. Orders (unless an activity kind), late
//! events and activity out of order across a month's end fold as they
//! come.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::{invalid, yes, ActivityEvent, Detector, DetectorId, Hooks, Moment, Signal};
use crate::event::{Event, KindSet};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_varint, CodecError, Reader};

/// Months kept per customer: the current one and five before it (90
/// days before the last complete month's start can reach the fifth, by a
/// day, when February is among them).
const MONTHS: usize = 6;

/// The `[detect.retention]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// On by default: the figures cost 28 bytes a customer.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A customer is active when they acted in this many days before.
    #[serde(default = "default_active_days")]
    pub active_days: u32,
}

fn default_active_days() -> u32 {
    90
}

impl Default for RetentionConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl RetentionConfig {
    /// Checks the `[detect.retention]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=90).contains(&self.active_days) {
            return Err(invalid("detect.retention.active_days", "must be from 1 to 90 (six months are kept)"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("retention");

/// The registry's entry: on by default, emits nothing.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.retention.enabled.then(|| Box::new(Retention::new(cfg)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[],
    blocks: &[&BLOCK],
};

/// Calendar months in a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Months {
    pub offset_ms: i64,
}

impl Months {
    /// Months since January 1970 of the instant `ms` (0 past chrono's
    /// years). Day arithmetic, not a calendar: it runs on every activity
    /// event.
    pub fn of(&self, ms: i64) -> i32 {
        ms.checked_add(self.offset_ms).and_then(|t| crate::time::month_of_day(t.div_euclid(86_400_000))).unwrap_or(0)
    }

    /// Whether instants `a` and `b` fall in the same month; the same day
    /// answers first.
    pub fn same(&self, a: i64, b: i64) -> bool {
        let day = |t: i64| t.saturating_add(self.offset_ms).div_euclid(86_400_000);
        day(a) == day(b) || self.of(a) == self.of(b)
    }

    /// The instant month `m` starts.
    pub fn start_ms(&self, m: i32) -> i64 {
        let (y, m0) = (1970 + m.div_euclid(12), m.rem_euclid(12) as u32);
        NaiveDate::from_ymd_opt(y, m0 + 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map_or(0, |t| t.and_utc().timestamp_millis()) - self.offset_ms
    }
}

/// Latest activity per month, kept in `Customer::detectors` under [`ID`]:
/// slot i holds month `newest − i`, as seconds since the epoch (0: none).
/// The month of `Customer::last_activity_ms` may be missing or behind:
/// [`active_at`] reads that one from the customer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ActiveMonths {
    pub newest: i32,
    pub latest_secs: [u32; MONTHS],
}

impl ActiveMonths {
    /// Folds an activity at `ts_ms`, in month `m`.
    fn add(&mut self, m: i32, ts_ms: i64) {
        let secs = u32::try_from(ts_ms.div_euclid(1000).max(1)).unwrap_or(u32::MAX);
        if self.latest_secs == [0; MONTHS] {
            self.newest = m;
        }
        if m > self.newest {
            let shift = (m - self.newest) as usize;
            self.latest_secs = std::array::from_fn(|i| if i >= shift { self.latest_secs[i - shift] } else { 0 });
            self.newest = m;
        }
        if let Some(slot) = usize::try_from(self.newest - m).ok().and_then(|i| self.latest_secs.get_mut(i)) {
            *slot = (*slot).max(secs);
        }
    }

    /// Whether the customer acted in the `window_ms` up to `at_ms`.
    pub fn active_at(&self, at_ms: i64, window_ms: i64) -> bool {
        self.latest_secs.iter().any(|&s| s > 0 && {
            let t = i64::from(s) * 1000;
            t <= at_ms && t > at_ms - window_ms
        })
    }
}

/// The detector: folds every activity (late ones too) into the months.
#[derive(Debug, Clone)]
pub struct Retention {
    months: Months,
    activity: KindSet,
}

impl Retention {
    pub fn new(cfg: &Config) -> Retention {
        Retention { months: months(cfg), activity: cfg.engine.activity_set() }
    }

    fn fold(&self, c: &mut Customer, ts_ms: i64) {
        let month = self.months.of(ts_ms);
        c.detectors.get_or_insert_with(ID.0, ActiveMonths::default).add(month, ts_ms);
    }

    fn counts(&self, kind: crate::event::Kind) -> bool {
        self.activity.contains(kind) || kind == crate::event::Kind::Order
    }
}

/// Whether `c` acted (an activity kind or an order) in the `window_ms` up
/// to `at_ms`, a month's end (the latest instant of each month is all the
/// months keep): the kept months, and the latest activity held inline.
pub fn active_at(c: &Customer, at_ms: i64, window_ms: i64) -> bool {
    let within = |t: i64| t <= at_ms && t > at_ms - window_ms;
    c.last_activity_ms.is_some_and(within) || c.detectors.get::<ActiveMonths>(ID.0).is_some_and(|a| a.active_at(at_ms, window_ms))
}

/// The config's calendar months.
pub fn months(cfg: &Config) -> Months {
    Months { offset_ms: cfg.engine.utc_offset_ms() }
}

impl Detector for Retention {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::ACTIVITY.and(Hooks::EVENTS)
    }

    fn on_activity(&self, c: &mut Customer, _: Moment, ev: ActivityEvent, _: &mut Vec<Signal>) {
        // `last_activity_ms` now holds the later of the two: the months
        // need the other when it is in another month.
        if let Some(previous) = ev.previous_ms.filter(|p| !self.months.same(*p, ev.ts_ms)) {
            self.fold(c, previous);
            self.fold(c, ev.ts_ms);
        }
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, _: &mut Vec<Signal>) {
        if ev.kind == crate::event::Kind::Order && !self.activity.contains(ev.kind) {
            self.fold(c, ev.ts_ms);
        }
    }

    fn on_late_event(&self, c: &mut Customer, ev: &Event) {
        if self.counts(ev.kind) {
            self.fold(c, ev.ts_ms);
        }
    }
}

/// One task's retention and repeat-purchase counts for the last complete
/// month before stream time: numerators and denominators, summed over
/// tasks by whoever reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Customers active at the month's start.
    pub active_at_start: u64,
    /// Of those, active at its end too.
    pub retained: u64,
    /// Customers active at the month's end.
    pub active_at_end: u64,
    /// Customers first seen within the month.
    pub new_in_month: u64,
    /// Customers with at least one purchase day, and with two or more.
    pub buyers: u64,
    pub repeat_buyers: u64,
    /// Customers in each loyalty tier, best first (zeros with tiers off).
    pub tiers: [u64; 6],
    /// Customers' latest CSAT and NPS answers within `active_days` before
    /// the stream time.
    pub satisfaction: crate::profile::Satisfaction,
}

/// The figures of `customers` for the last complete month before
/// `stream_ms`.
pub fn figures<'a>(cfg: &Config, customers: impl Iterator<Item = &'a Customer>, stream_ms: i64) -> Figures {
    let months = months(cfg);
    let window_ms = i64::from(cfg.detect.retention.active_days) * 86_400_000;
    let this = months.of(stream_ms);
    let (start, end) = (months.start_ms(this - 1), months.start_ms(this));
    // Active at an instant: activity in the window up to and including it.
    let (at_start, at_end) = (start - 1, end - 1);
    let days = crate::detect::purchases::day_buckets(cfg);
    let mut f = Figures::default();
    for c in customers {
        f.satisfaction.add(c, stream_ms - window_ms, stream_ms);
        if let Some(h) = crate::detect::purchases::history(c, days) {
            f.buyers += 1;
            f.repeat_buyers += u64::from(h.days.days >= 2);
        }
        if let Some(t) = c.detectors.get::<crate::detect::tiers::Current>(crate::detect::tiers::ID.0) {
            f.tiers[t.tier.index()] += 1;
        }
        let (s, e) = (active_at(c, at_start, window_ms), active_at(c, at_end, window_ms));
        f.active_at_start += u64::from(s);
        f.retained += u64::from(s && e);
        f.active_at_end += u64::from(e);
        f.new_in_month += u64::from((start..end).contains(&c.first_seen_ms) && e);
    }
    f
}

/// The changelog block of [`ActiveMonths`].
pub const BLOCK: StateBlock = StateBlock { id: 13, version: 1, name: "retention", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let Some(a) = c.detectors.get::<ActiveMonths>(ID.0) else { return };
    put_varint(out, u64::from(a.newest.max(0) as u32));
    a.latest_secs.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let newest = i32::try_from(p.u32("retention.newest")?).map_err(|_| CodecError::Corrupt("retention: month out of range".into()))?;
    let mut latest_secs = [0u32; MONTHS];
    for s in &mut latest_secs {
        *s = p.u32_le("retention.latest_secs")?;
    }
    c.detectors.insert(ID.0, ActiveMonths { newest, latest_secs });
    Ok(())
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
