//! Purchase days: every buyer's purchase-day summary (`care fit`'s, see
//! [`crate::model::summary`]), kept in the stream so the value figures of
//! [`crate::model::value`] can be derived for any customer at any stream
//! time. Emits nothing itself; it is the state value signals read.
//!
//! Exact under out-of-order orders: a day's orders are one purchase
//! whatever order they come in, an earlier order can open an earlier first
//! day, and an order between the first and last purchase days is told
//! apart from the days already counted by a bit per day for the 64 days up
//! to the last purchase day. Late orders (beyond the allowed lateness)
//! fold too, like every lifetime figure. Only an order more than 63 days
//! before the customer's last purchase day and after their first one is
//! counted as a new purchase day without knowing (it usually is one), and
//! the summary is flagged approximate. So is a summary seeded from the
//! lifetime order figures of a changelog written before purchase days were
//! kept: it takes the first and last order days, at most one purchase day
//! per order, and the average order for the first day's value.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::detect::registry::Entry;
use crate::detect::{yes, Detector, DetectorId, Hooks, Moment, Signal};
use crate::event::{Event, Kind};
use crate::model::summary::{Folded, PurchaseDays};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::time::Buckets;
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

const DAY_MS: i64 = 86_400_000;
/// Days before the last purchase day whose purchases are known one by one.
const KNOWN_DAYS: i64 = 64;

/// The `[detect.purchases]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PurchasesConfig {
    /// On by default: value figures and purchase signals need it. Off,
    /// customers carry no purchase days.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for PurchasesConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl PurchasesConfig {
    /// Every value of its one key is valid.
    pub(crate) fn validate(&self) -> Result<(), crate::config::ConfigError> {
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("purchases");

/// The registry's entry: on by default, emits nothing.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.purchases.enabled.then(|| Box::new(Purchases::new(cfg)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[],
    blocks: &[&BLOCK],
};

/// The detector: folds orders into the customer's [`PurchaseHistory`].
#[derive(Debug, Clone)]
pub struct Purchases {
    /// Calendar days in the configured timezone.
    days: Buckets,
}

impl Purchases {
    pub fn new(cfg: &Config) -> Purchases {
        Purchases { days: day_buckets(cfg) }
    }

    fn fold(&self, c: &mut Customer, ev: &Event) {
        if ev.kind != Kind::Order {
            return;
        }
        let (day, amount) = (self.days.of(ev.ts_ms), ev.amount.unwrap_or(0.0));
        if let Some(h) = c.detectors.get_mut::<PurchaseHistory>(ID.0) {
            h.add(day, amount);
        } else {
            // The lifetime figures already hold this order: more than one
            // there means a customer restored from before purchase days
            // were kept, seeded from them, this order included.
            let h = if c.orders.count > 1 { seed(c, self.days) } else { None };
            c.detectors.insert(ID.0, h.unwrap_or_else(|| PurchaseHistory::new(day, amount)));
        }
    }
}

/// What a customer's value figures need: the fit, its horizon and the
/// calendar days; shared by the signals that carry value figures.
#[derive(Debug, Clone)]
pub struct ValueContext {
    pub fit: std::sync::Arc<crate::model::value::Fitted>,
    pub horizon: crate::model::value::Horizon,
    pub days: Buckets,
}

impl ValueContext {
    /// `None` without a fit loaded or with purchase days off.
    pub fn from_config(cfg: &Config) -> Option<ValueContext> {
        let fit = cfg.value.fitted.clone().filter(|_| cfg.detect.purchases.enabled)?;
        Some(ValueContext { fit, horizon: cfg.value.horizon(), days: day_buckets(cfg) })
    }

    /// The customer's purchase days and figures at `at_ms`'s day, if they
    /// ordered.
    pub fn figures(&self, c: &Customer, at_ms: i64) -> Option<(PurchaseHistory, crate::model::value::Figures)> {
        let h = history(c, self.days)?;
        let day = self.days.of(at_ms).max(h.days.last_day);
        Some((h, crate::model::value::figures(&self.fit, &self.horizon, &h.days, day)))
    }

    /// The first whole day on which BG/NBD's P(alive) is below `theta` if
    /// nothing happens (its formula solved for T), as a day number; `None`
    /// for a buyer without a repeat purchase, alive by the model's
    /// construction. Not finite when the fit makes it so.
    pub fn p_alive_below_day(&self, h: &PurchaseHistory, theta: f64) -> Option<f64> {
        let d = &h.days;
        let x = f64::from(d.days.checked_sub(1).filter(|x| *x >= 1)?);
        let bg = &self.fit.bgnbd;
        let unit_days = self.fit.unit.days();
        let tx = (d.last_day - d.first_day) as f64 / unit_days;
        let ratio = (1.0 - theta) / theta * (bg.b + x - 1.0) / bg.a;
        let t_star = (bg.alpha + tx) * ratio.powf(1.0 / (bg.r + x)) - bg.alpha;
        Some(d.first_day as f64 + (t_star * unit_days).floor() + 1.0)
    }
}

/// One-day buckets in the configured timezone: the days `care fit` counts.
pub fn day_buckets(cfg: &Config) -> Buckets {
    Buckets { bucket_ms: DAY_MS, offset_ms: cfg.engine.utc_offset_ms() }
}

impl Detector for Purchases {
    fn id(&self) -> DetectorId {
        ID
    }

    fn hooks(&self) -> Hooks {
        Hooks::EVENTS
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, _: &mut Vec<Signal>) {
        self.fold(c, ev);
    }

    fn on_late_event(&self, c: &mut Customer, ev: &Event) {
        self.fold(c, ev);
    }
}

/// A customer's purchase days as the stream keeps them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseHistory {
    pub days: PurchaseDays,
    /// Bit i: a purchase on `last_day − i`, for every purchase day from
    /// `max(first_day, last_day − 63)` on.
    known: u64,
    /// See the module doc: the day count may be off.
    pub approximate: bool,
}

impl PurchaseHistory {
    pub fn new(day: i64, amount: f64) -> PurchaseHistory {
        PurchaseHistory { days: PurchaseDays::new(day, amount), known: 1, approximate: false }
    }

    /// Folds one order of `amount` on `day`.
    pub fn add(&mut self, day: i64, amount: f64) {
        let last = self.days.last_day;
        match self.days.add(day, amount) {
            Folded::NewDay | Folded::SameDay => {
                let moved = self.days.last_day - last;
                self.known = if moved >= KNOWN_DAYS { 0 } else { self.known << moved };
            }
            Folded::Unordered if self.bit(day).is_some_and(|b| self.known & b != 0) => self.days.repeat_value += amount,
            Folded::Unordered => {
                self.approximate |= self.bit(day).is_none();
                self.days.days += 1;
                self.days.repeat_value += amount;
            }
        }
        self.known |= self.bit(day).unwrap_or(0);
    }

    /// The bit of `day`, if it is among the days known one by one.
    fn bit(&self, day: i64) -> Option<u64> {
        let back = self.days.last_day - day;
        (0..KNOWN_DAYS).contains(&back).then(|| 1 << back)
    }
}

/// A summary from the lifetime order figures alone; `None` without orders.
fn seed(c: &Customer, days: Buckets) -> Option<PurchaseHistory> {
    let o = &c.orders;
    if o.count == 0 {
        return None;
    }
    let (first, last) = (days.of(o.first_ms?), days.of(o.last_ms?));
    let n = o.count.max(1);
    let span_days = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
    let purchase_days = if first == last { 1 } else { n.clamp(2, span_days) };
    let first_value = o.total_amount / f64::from(n);
    let mut h = PurchaseHistory::new(first, first_value);
    (h.days.last_day, h.days.days, h.days.repeat_value) = (last, purchase_days, o.total_amount - first_value);
    h.known = h.bit(first).unwrap_or(0) | 1;
    h.approximate = true;
    Some(h)
}

/// The customer's purchase days, if they bought anything: as kept, or
/// seeded from their lifetime order figures (approximate) when they were
/// restored from a changelog written before purchase days were kept and
/// have not ordered since. `days`: [`day_buckets`].
pub fn history(c: &Customer, days: Buckets) -> Option<PurchaseHistory> {
    c.detectors.get::<PurchaseHistory>(ID.0).copied().or_else(|| seed(c, days))
}

impl Serialize for PurchaseHistory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Dump {
            first_day: i64,
            last_day: i64,
            purchase_days: u32,
            first_day_value: f64,
            repeat_value: f64,
            known_days: u64,
            approximate: bool,
        }
        let d = &self.days;
        Dump {
            first_day: d.first_day,
            last_day: d.last_day,
            purchase_days: d.days,
            first_day_value: d.first_value,
            repeat_value: d.repeat_value,
            known_days: self.known,
            approximate: self.approximate,
        }
        .serialize(s)
    }
}

/// The changelog block of [`PurchaseHistory`]: days as deltas from the
/// customer's first-seen day would not be smaller, so zigzag day numbers.
pub const BLOCK: StateBlock = StateBlock { id: 8, version: 1, name: "purchases", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let Some(h) = c.detectors.get::<PurchaseHistory>(ID.0) else { return };
    let d = &h.days;
    put_zigzag(out, d.first_day);
    put_zigzag(out, d.last_day.wrapping_sub(d.first_day));
    put_varint(out, u64::from(d.days));
    out.extend_from_slice(&d.first_value.to_le_bytes());
    out.extend_from_slice(&d.repeat_value.to_le_bytes());
    out.extend_from_slice(&h.known.to_le_bytes());
    out.push(u8::from(h.approximate));
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let first_day = p.zigzag("purchases.first_day")?;
    let last_day = first_day.wrapping_add(p.zigzag("purchases.last_day")?);
    let days = p.u32("purchases.days")?;
    let (first_value, repeat_value) = (p.f64_le("purchases.first_value")?, p.f64_le("purchases.repeat_value")?);
    let known = u64::from_le_bytes(p.array("purchases.known")?);
    let approximate = match p.u8("purchases.approximate")? {
        0 => false,
        1 => true,
        other => return Err(CodecError::Corrupt(format!("purchases: approximate flag {other}"))),
    };
    if days == 0 || last_day < first_day {
        return Err(CodecError::Corrupt(format!("purchases: {days} days from {first_day} to {last_day}")));
    }
    let days = PurchaseDays { first_day, last_day, days, first_value, repeat_value };
    c.detectors.insert(ID.0, PurchaseHistory { days, known, approximate });
    Ok(())
}

#[cfg(test)]
#[path = "purchases_tests.rs"]
mod tests;
