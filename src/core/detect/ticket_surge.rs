//! Ticket surge (`io.care.ticket_surge.v1`, alerts topic, `opened` and
//! `resolved`): more support tickets in the last `window_days` (7) than
//! the customer's own rate makes plausible. Off by default until its false
//! alerts and recall are measured on the quality harness.
//!
//! The customer's rate μ is their tickets before the window over the days
//! they were known before it, with a prior of `prior_tickets_per_90_days`
//! (1) counted as `prior_weight_days` (90) days, so a new customer is
//! assumed to raise about one ticket a quarter; the heavier the prior, the
//! longer a customer who raises many tickets is judged against too low a
//! rate (BENCHMARKS.md, satisfaction quality). The episode opens on a ticket that makes the window
//! hold at least `min_tickets` (3) and P(Poisson(μ × window) ≥ count) below
//! `significance` (0.001): three tickets in a week from a customer who
//! raises one a quarter (p ≈ 0.0001), not from one who raises one a week
//! (p ≈ 0.08). Tickets in an open episode do not feed the rate. It
//! resolves when the window holds no more than the customer's expected
//! count (at least 1), checked on each ticket and each day while open.
//!
//! It stands beside the activity chain and the other satisfaction signals.
//! Decided on on-time tickets only; a late ticket is counted in the
//! customer's lifetime activity but not here.

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::detect::registry::Entry;
use crate::detect::signal::{round, to_value, Body, Head, PayloadContext};
use crate::detect::stats::poisson_cdf;
use crate::detect::{invalid, Destination, Detector, DetectorId, Hooks, Moment, Signal, SignalDef, SignalType};
use crate::event::{Event, Kind};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::time::Buckets;
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// The longest window: one ring slot per day.
const MAX_WINDOW: usize = 28;

/// The `[detect.ticket_surge]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSurgeConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Days of the window tickets are counted over (1 to 28). Default 7.
    #[serde(default = "default_window_days")]
    pub window_days: u8,
    /// Tickets the window must hold to open. Default 3.
    #[serde(default = "default_min_tickets")]
    pub min_tickets: u32,
    /// Opens below this chance of so many tickets at the customer's rate.
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// The rate assumed before any history, in tickets per 90 days.
    #[serde(default = "default_prior")]
    pub prior_tickets_per_90_days: f64,
    /// Days of history the prior counts as (1 to 365). Default 90.
    #[serde(default = "default_prior_weight_days")]
    pub prior_weight_days: f64,
}

fn default_window_days() -> u8 {
    7
}
fn default_min_tickets() -> u32 {
    3
}
fn default_significance() -> f64 {
    0.001
}
fn default_prior() -> f64 {
    1.0
}
fn default_prior_weight_days() -> f64 {
    90.0
}

impl Default for TicketSurgeConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl TicketSurgeConfig {
    /// Checks the `[detect.ticket_surge]` keys, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_WINDOW as u8).contains(&self.window_days) {
            return Err(invalid("detect.ticket_surge.window_days", "must be from 1 to 28"));
        }
        if !(1..=255).contains(&self.min_tickets) {
            return Err(invalid("detect.ticket_surge.min_tickets", "must be from 1 to 255"));
        }
        if !(self.significance > 0.0 && self.significance < 0.5) {
            return Err(invalid("detect.ticket_surge.significance", "must be between 0 and 0.5"));
        }
        if !(self.prior_tickets_per_90_days > 0.0 && self.prior_tickets_per_90_days <= 1000.0) {
            return Err(invalid("detect.ticket_surge.prior_tickets_per_90_days", "must be above 0 and at most 1000"));
        }
        if !(1.0..=365.0).contains(&self.prior_weight_days) {
            return Err(invalid("detect.ticket_surge.prior_weight_days", "must be from 1 to 365"));
        }
        Ok(())
    }
}

pub const ID: DetectorId = DetectorId("ticket_surge");

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    id: ID,
    build: |cfg: &Config| cfg.detect.ticket_surge.enabled.then(|| Box::new(TicketSurge::new(cfg)) as Box<dyn Detector>),
    window_width: |_| 0,
    signals: &[TICKET_SURGE],
    blocks: &[&BLOCK],
};

/// `ticket_surge`, on the alerts topic.
pub const TICKET_SURGE: SignalType =
    SignalType(&SignalDef { name: "ticket_surge", destination: Destination::Alerts, outage_guarded: false, versions: &[(1, "io.care.ticket_surge.v1")] });

/// A customer's tickets: per day over the window (slot = day mod 28), the
/// earlier ones tallied. Kept in `Customer::detectors` under [`ID`] from
/// the first ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tickets {
    /// The newest day the ring holds (a day number in the configured
    /// timezone).
    pub day: i64,
    pub per_day: [u8; MAX_WINDOW],
    /// Tickets that left the window outside an episode.
    pub earlier: u32,
    pub open_since_ms: Option<i64>,
}

/// The detector, with its thresholds.
#[derive(Debug, Clone)]
pub struct TicketSurge {
    days: Buckets,
    window: i64,
    min_tickets: u32,
    significance: f64,
    prior_per_day: f64,
    /// The prior's weight, in days of history.
    prior_days: f64,
}

impl TicketSurge {
    pub fn new(cfg: &Config) -> TicketSurge {
        let c = &cfg.detect.ticket_surge;
        TicketSurge {
            days: crate::detect::purchases::day_buckets(cfg),
            window: i64::from(c.window_days),
            min_tickets: c.min_tickets,
            significance: c.significance,
            prior_per_day: c.prior_tickets_per_90_days / 90.0,
            prior_days: c.prior_weight_days,
        }
    }

    /// Moves the window's end to `day`: counts of days leaving it become
    /// earlier tickets, unless an episode is open. Slots outside the window
    /// are kept at zero, so a slot is empty when its day enters (a jump of
    /// a window or more leaves the whole old window; the ring is longer
    /// than the window, so those are not the new days' slots).
    fn slide(&self, t: &mut Tickets, day: i64) {
        if day <= t.day {
            return;
        }
        let leaving = (t.day - self.window + 1)..=(day - self.window).min(t.day);
        // The new days' slots too: a state written before slots were kept
        // at zero may hold tickets there that never became earlier ones.
        let entering = (t.day + 1).max(day - self.window + 1)..=day;
        for d in leaving.chain(entering) {
            let slot = &mut t.per_day[d.rem_euclid(MAX_WINDOW as i64) as usize];
            if t.open_since_ms.is_none() {
                t.earlier = t.earlier.saturating_add(u32::from(*slot));
            }
            *slot = 0;
        }
        t.day = day;
    }

    fn count(&self, t: &Tickets) -> u32 {
        (0..self.window).map(|back| u32::from(t.per_day[(t.day - back).rem_euclid(MAX_WINDOW as i64) as usize])).sum()
    }

    /// The evidence at the window ending on `t.day`, for a customer first
    /// seen on `first_day`.
    fn evidence(&self, t: &Tickets, first_day: i64) -> Surge {
        let known_before = (t.day - self.window + 1 - first_day).max(0) as f64;
        let rate = (f64::from(t.earlier) + self.prior_per_day * self.prior_days) / (known_before + self.prior_days);
        let expected = rate * self.window as f64;
        let count = self.count(t);
        let p_value = if count == 0 { 1.0 } else { 1.0 - poisson_cdf(count - 1, expected) };
        Surge { tickets: count, window_days: self.window as u32, expected, rate_per_week: rate * 7.0, p_value, significance: self.significance }
    }

    fn resolve_if_settled(&self, t: &mut Tickets, first_day: i64, at_ms: i64, out: &mut Vec<Signal>) {
        let Some(since) = t.open_since_ms else { return };
        let e = self.evidence(t, first_day);
        if f64::from(e.tickets) <= e.expected.max(1.0) {
            t.open_since_ms = None;
            out.push(Signal::resolved(TICKET_SURGE, since, at_ms, e));
        }
    }
}

impl Detector for TicketSurge {
    fn id(&self) -> DetectorId {
        ID
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        let first_day = self.days.of(c.first_seen_ms);
        if let Some(t) = c.detectors.get_mut::<Tickets>(ID.0).filter(|t| t.open_since_ms.is_some()) {
            self.slide(t, self.days.of(at.now_ms));
            self.resolve_if_settled(t, first_day, at.trigger_ms, out);
        }
    }

    /// While open, the start of the day after the window's newest: the
    /// window moves on daily. Counted from the window, not from now, so
    /// the customer's own daily events do not keep pushing it away.
    fn next_deadline(&self, c: &Customer, _: Moment) -> Option<i64> {
        c.detectors.get::<Tickets>(ID.0).filter(|t| t.open_since_ms.is_some()).map(|t| self.days.start_ms(t.day + 1))
    }

    fn is_open(&self, c: &Customer) -> bool {
        c.detectors.get::<Tickets>(ID.0).is_some_and(|t| t.open_since_ms.is_some())
    }

    fn open_since(&self, c: &Customer) -> Option<i64> {
        c.detectors.get::<Tickets>(ID.0).and_then(|t| t.open_since_ms)
    }

    fn supersede(&self, c: &mut Customer) {
        if let Some(t) = c.detectors.get_mut::<Tickets>(ID.0) {
            t.open_since_ms = None;
        }
    }

    fn hooks(&self) -> Hooks {
        Hooks::TIMERS.and(Hooks::EPISODES).and(Hooks::EVENTS)
    }

    fn on_event(&self, c: &mut Customer, _: Moment, ev: &Event, out: &mut Vec<Signal>) {
        if ev.kind != Kind::Ticket {
            return;
        }
        let (day, first_day) = (self.days.of(ev.ts_ms), self.days.of(c.first_seen_ms));
        let t = c.detectors.get_or_insert_with(ID.0, || Tickets { day, ..Tickets::default() });
        self.slide(t, day);
        // A ticket out of order within the lateness lands on its day; one
        // older than the window is an earlier ticket.
        if day > t.day - self.window {
            let slot = &mut t.per_day[day.rem_euclid(MAX_WINDOW as i64) as usize];
            *slot = slot.saturating_add(1);
        } else if t.open_since_ms.is_none() {
            t.earlier = t.earlier.saturating_add(1);
        }
        if t.open_since_ms.is_some() {
            return self.resolve_if_settled(t, first_day, ev.ts_ms, out);
        }
        let e = self.evidence(t, first_day);
        if e.tickets >= self.min_tickets && e.p_value < self.significance {
            t.open_since_ms = Some(ev.ts_ms);
            out.push(Signal::opened(TICKET_SURGE, ev.ts_ms, e));
        }
    }
}

/// What an alert carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surge {
    pub tickets: u32,
    pub window_days: u32,
    pub expected: f64,
    pub rate_per_week: f64,
    pub p_value: f64,
    pub significance: f64,
}

/// The `io.care.ticket_surge.v1` payload.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    tickets: u32,
    window_days: u32,
    expected_tickets: f64,
    usual_tickets_per_week: f64,
    p_value: f64,
    significance: f64,
}

impl Body for Surge {
    fn payload(&self, cx: PayloadContext<'_>) -> serde_json::Value {
        to_value(Payload {
            head: cx.head,
            episode_started_at: cx.started,
            tickets: self.tickets,
            window_days: self.window_days,
            expected_tickets: round(self.expected, 3),
            usual_tickets_per_week: round(self.rate_per_week, 3),
            p_value: round(self.p_value, 6),
            significance: self.significance,
        })
    }
}

/// The changelog block of [`Tickets`].
pub const BLOCK: StateBlock = StateBlock { id: 11, version: 1, name: "ticket surge", encode: encode_state, decode: decode_state };

fn encode_state(c: &Customer, out: &mut Vec<u8>) {
    let Some(t) = c.detectors.get::<Tickets>(ID.0) else { return };
    put_zigzag(out, t.day);
    out.extend_from_slice(&t.per_day);
    put_varint(out, u64::from(t.earlier));
    out.push(u8::from(t.open_since_ms.is_some()));
    if let Some(since) = t.open_since_ms {
        put_zigzag(out, since);
    }
}

fn decode_state(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    let day = p.zigzag("ticket_surge.day")?;
    let per_day = p.array("ticket_surge.per_day")?;
    let earlier = p.u32("ticket_surge.earlier")?;
    let open_since_ms = match p.u8("ticket_surge.open")? {
        0 => None,
        1 => Some(p.zigzag("ticket_surge.open_since_ms")?),
        other => return Err(CodecError::Corrupt(format!("ticket_surge: open flag {other}"))),
    };
    c.detectors.insert(ID.0, Tickets { day, per_day, earlier, open_since_ms });
    Ok(())
}

#[cfg(test)]
#[path = "ticket_surge_tests.rs"]
mod tests;
