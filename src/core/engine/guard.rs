//! The outage guard: an upstream outage is not every customer going quiet.
//!
//! When a source (or some kinds within one) stops while others flow,
//! stream time moves on without those events and every regular customer
//! soon looks declining or silent. Per task, the guard counts the openings
//! of activity signals (those whose type says an outage looks like them:
//! decline, silence) per day of event time, and the events of each kind.
//! It trips on the first of two kinds of evidence:
//!
//! - **Volume first.** Some activity kind (`engine.activity_kinds`: only
//!   their absence opens declines and silences) *stalled* on the last
//!   complete day: it carried under half (`BACK_SHARE`) of its quietest
//!   day among the 28 baseline days (the 28 before the last week), and at
//!   least `STALL_SDS` (4) Poisson standard deviations under it, that
//!   quietest day having carried at least `MIN_KIND_VOLUME` (10) events
//!   (days of the last outage left out), and it fell there at once: one
//!   of the two days before the run of such days carried `ABRUPT_SHARE`
//!   (80 %) of that quietest day (a source stopping empties a kind from
//!   one day to the next; customers leaving, however many, thin it a
//!   little a day and are judged as customers). Then any opening of the day
//!   trips it, the first included: an outage's openings come days into it
//!   (a decline needs sealed buckets, a silence a gap past the customer's
//!   deadline), when a whole day of the kind is already missing, so none
//!   of them is sent. Idle advance, or `replay --advance-to`, moving stream time on
//!   with no record at all is every source stopping, and reads the same.
//!   The quietest day rather than the mean, because a weekly profile (a
//!   Sunday at 0.6 of the week's mean, or less) must not read as a stall,
//!   and the baseline is four whole weeks; a small kind's noisy days are
//!   kept out by the standard deviations (without them, a task of 75
//!   customers and 40 logins a day tripped by chance in
//!   `tests/digest.rs`'s replay). What it costs: a kind that really falls
//!   under half its quietest day (a holiday) withholds the openings from
//!   the next day on, genuine ones included, until the guard clears; a
//!   kind retired upstream never comes back, and the guard waits for it
//!   until it is taken out of `engine.activity_kinds` (then it clears
//!   after the next day back under the line). The quality populations
//!   (weekends 40 % down, bursts) never trip it.
//! - **Openings first** (the outage's first day, before a whole day is
//!   missing, or a kind down by less than a stall): an opening that takes
//!   its day past `engine.outage_guard_factor` (10) × the task's mean
//!   daily openings over the baseline days, and past
//!   `engine.outage_guard_min_openings` (50), while some kind carries less
//!   than half its mean volume on the same weekday before (the day so
//!   far, scaled, or the day before early in a day), trips it. The same
//!   weekday: against the mean of all days, a Sunday of a weekly profile
//!   (0.55 of the week's mean) fell under half in a population a third of
//!   whom were changing, and tripped it with no outage. The openings of
//!   that day before the line are sent: at most the floor.
//!
//! A wave of openings while every kind flows is customers changing, and
//! is sent. From the trip on such openings are withheld, their episodes
//! held open silently and closed silently (no `opened`, no `resolved`),
//! and one `io.care.source_anomaly.v1` says so on the anomalies topic. It
//! clears at the end of the first day whose openings are back under the
//! openings-first line and whose every kind carries at least half its mean
//! volume before the trip (so a week-long outage is not cleared by
//! everyone already being open), with a second anomaly record.
//!
//! Holding openings back until the day's evidence is in (sending them if
//! it ends without a trip) was the other way to reach zero; it needs the
//! held openings persisted and released, and the stall on the last
//! complete day already comes before the outage's openings do.
//!
//! The outage's days (from the day before the first on which an affected
//! kind fell short, found in the guard's 36-day ring when it trips, to the
//! end of the day that cleared it) reach the detectors as
//! [`Moment::outage`](crate::detect::Moment): the sequential decline
//! neither learns their empty buckets into a baseline nor counts them as
//! evidence, and ends an episode the outage opened at the first bucket
//! after it (silently if withheld). That holds for every customer of the
//! task, those whose kinds kept flowing too: a decline of theirs is judged
//! from the outage's end. A real decline after the return is judged
//! against the customer's own rate as if the outage had not been (tested:
//! decliners 15 days after a 30-day outage are caught on average
//! in 8.9 days against 8.9 without it; learning the empty days, 22 of 80
//! took 30 days or more). The guard trips days into an outage, at its
//! first opening: buckets a customer learned before that stay learned
//! (learning runs a week late, so that is at most the days the trip took
//! past a week). Silence reads the customer's lifetime gap rate, which an
//! outage lowers: after the return it waits longer, never sooner.
//!
//! It judges only once it has seen 35 days of the task's event time (a
//! full baseline): at a fresh start or a backfill every customer is judged
//! for the first time within days of each other, which is no outage. Its
//! history (the ring, the trip, the last outage) is kept in the task's
//! changelog meta record, so a restored task judges at once, mid-outage
//! too; one restored from a meta written before it was kept (format 1)
//! waits those 35 days of event time again. A genuine mass event (the
//! business's own site down for a week)
//! looks the same and is withheld the same way: the anomaly records say
//! what was withheld; set `outage_guard_factor = 0` to turn the guard off.

use serde::Serialize;

use crate::detect::Outage;
use crate::event::{Kind, KindSet};
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// Days of history kept: the 28-day baseline and the week before today.
const DAYS: usize = 36;
/// Days before today left out of the baseline (a slow-building surge must
/// not raise its own yardstick).
const RECENT: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// A kind carrying this much of its pre-trip volume is back; under this
/// share of its quietest baseline day, it stalled.
const BACK_SHARE: f64 = 0.5;
/// Kinds below this many events a day before the trip (or on their
/// quietest baseline day, for a stall) are not waited for.
const MIN_KIND_VOLUME: f64 = 10.0;
/// A stall is at least this many standard deviations (Poisson, at the
/// quietest baseline day's count) under that day: a kind of 20 events a
/// day varies enough that a day under half its quietest comes by chance
/// within months, in a task of 75 customers. A kind that stops outright
/// stalls from 16 events on its quietest day; from 64 on, the half binds.
const STALL_SDS: f64 = 4.0;
/// A stall is abrupt: a day at most two before it carried this share of
/// the kind's quietest baseline day (an outage empties a kind at once,
/// customers leaving thin it a little a day).
const ABRUPT_SHARE: f64 = 0.8;
/// Version of [`History`]'s layout in the meta record.
const HISTORY_FORMAT: u8 = 1;
/// Days from the epoch a history may name (about ±27,000 years): bounds a
/// corrupt value's arithmetic.
const MAX_DAY: i64 = 10_000_000;

/// The guard's settings (`[engine]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardParams {
    /// 0 turns the guard off.
    pub factor: f64,
    pub min_openings: u32,
    /// The activity kinds (`engine.activity_kinds`): only their stall trips
    /// the guard, since only their absence opens declines and silences (a
    /// survey vendor's outage opens none).
    pub activity: KindSet,
}

/// What the guard decided about an opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Emit,
    Withhold,
}

/// A change of the guard's state, for the anomalies topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// Tripped (`opened`) or cleared (`resolved`).
    pub tripped: bool,
    /// The day that tripped it, as the start of the day (ms); the episode id.
    pub since_ms: i64,
    /// When this happened (event time, ms).
    pub at_ms: i64,
    /// Openings withheld so far in this episode.
    pub withheld: u64,
    /// The openings a day the guard's line allows.
    pub threshold: f64,
    /// The task's mean daily openings before.
    pub expected_per_day: f64,
    /// Activity kinds carrying less than half their volume before the trip.
    pub kinds_affected: Vec<&'static str>,
}

/// One task's guard.
#[derive(Debug, Clone)]
pub struct Guard {
    params: GuardParams,
    h: History,
}

/// What the guard has seen: the task's meta record keeps it, so a restored
/// task judges at once instead of after 35 days of event time.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The newest day seen; [`i64::MIN`] before the first.
    day: i64,
    /// The first day the guard saw: it judges only with a full baseline.
    first_day: i64,
    openings: [u32; DAYS],
    events: [[u32; Kind::COUNT]; DAYS],
    tripped: Option<Trip>,
    /// The last outage's days, which baselines must not learn.
    outage: Outage,
}

#[derive(Debug, Clone, PartialEq)]
struct Trip {
    since_day: i64,
    withheld: u64,
    threshold: f64,
    expected: f64,
    /// Mean events a day per kind over the baseline days.
    volume_before: [f64; Kind::COUNT],
}

impl Guard {
    pub fn new(params: GuardParams) -> Guard {
        let h = History { day: i64::MIN, first_day: i64::MIN, openings: [0; DAYS], events: [[0; Kind::COUNT]; DAYS], tripped: None, outage: Outage::NONE };
        Guard { params, h }
    }

    fn slot(day: i64) -> usize {
        day.rem_euclid(DAYS as i64) as usize
    }

    /// Moves to `day`, clearing the days that fell out; a tripped guard
    /// looks at each day that ended on the way.
    fn roll(&mut self, day: i64, out: &mut Vec<Anomaly>) {
        if self.h.day == i64::MIN {
            (self.h.day, self.h.first_day) = (day, day);
            return;
        }
        while self.h.day < day {
            let ended = self.h.day;
            self.h.day += 1;
            let s = Self::slot(self.h.day);
            (self.h.openings[s], self.h.events[s]) = (0, [0; Kind::COUNT]);
            if let Some(a) = self.clear_after(ended) {
                out.push(a);
            }
            if day - self.h.day > DAYS as i64 {
                // A long gap: nothing in between to look at.
                self.h.day = day - DAYS as i64;
            }
        }
    }

    /// An on-time event of `kind` at `ts_ms`.
    pub fn event(&mut self, kind: Kind, ts_ms: i64, out: &mut Vec<Anomaly>) {
        let day = ts_ms.div_euclid(DAY_MS);
        self.roll(day, out);
        if self.holds(day) {
            let e = &mut self.h.events[Self::slot(day)][kind.idx()];
            *e = e.saturating_add(1);
        }
    }

    /// An opening of a guarded signal triggered at `ts_ms`: emit it, or
    /// withhold it (and maybe trip).
    pub fn opening(&mut self, ts_ms: i64, out: &mut Vec<Anomaly>) -> Decision {
        if self.params.factor <= 0.0 {
            return Decision::Emit;
        }
        let day = ts_ms.div_euclid(DAY_MS);
        self.roll(day, out);
        if self.holds(day) {
            let o = &mut self.h.openings[Self::slot(day)];
            *o = o.saturating_add(1);
        }
        let (expected, threshold) = self.line(day);
        if let Some(t) = &mut self.h.tripped {
            t.withheld += 1;
            return Decision::Withhold;
        }
        // Without a full baseline there is no history to judge against: a
        // fresh start (or a backfill) sees every customer judged for the
        // first time within days of each other.
        if day - self.h.first_day < DAYS as i64 - 1 {
            return Decision::Emit;
        }
        let volume_before = self.volume_before(day);
        let (look, share) = if self.stalled(day) {
            // Volume first: a kind stalled on the last complete day, so
            // the opening is the outage's, the first one as much as the
            // hundredth. No line to pass.
            (day - 1, 1.0)
        } else {
            // Openings first (the outage's first day, or a kind down by
            // less than a stall): the day's openings must pass the line.
            if f64::from(self.h.openings[Self::slot(day)]) <= threshold {
                return Decision::Emit;
            }
            // Early in a day (openings decided at its start) the day
            // before says more about the kinds than the first hours.
            let share = (ts_ms - day * DAY_MS) as f64 / DAY_MS as f64;
            let (look, share) = if share < 0.25 { (day - 1, 1.0) } else { (day, share) };
            // A wave of openings while every kind flows as before is
            // customers changing, not a source stopping: it is sent. "As
            // before" on the same weekday: a Sunday at 0.55 of the week's
            // mean, in a population a third of whom are changing, is
            // under half the mean and still no outage.
            if self.affected(&self.weekday_volume(day, look), look, share).is_empty() {
                return Decision::Emit;
            }
            (look, share)
        };
        let trip = Trip { since_day: day, withheld: 1, threshold, expected, volume_before };
        self.h.outage = Outage { from_ms: (self.short_since(&volume_before, look) - 1) * DAY_MS, until_ms: i64::MAX };
        out.push(self.anomaly(&trip, true, ts_ms, look, share));
        self.h.tripped = Some(trip);
        Decision::Withhold
    }

    /// The mean daily openings over the baseline days before `day`, and
    /// the line an opening day must pass.
    fn line(&self, day: i64) -> (f64, f64) {
        let n = baseline_days(day).count().max(1) as f64;
        let mean = baseline_days(day).filter(|d| self.holds(*d)).map(|d| f64::from(self.h.openings[Self::slot(d)])).sum::<f64>() / n;
        (mean, (self.params.factor * mean).max(f64::from(self.params.min_openings)))
    }

    /// Whether day `d` is still in the ring.
    fn holds(&self, d: i64) -> bool {
        d > self.h.day - DAYS as i64
    }

    /// Whether day `d` was seen: in the ring and not before the first day.
    fn seen(&self, d: i64) -> bool {
        self.holds(d) && d >= self.h.first_day
    }

    /// Each kind's mean daily volume over the baseline days before `day`.
    fn volume_before(&self, day: i64) -> [f64; Kind::COUNT] {
        self.mean_volume(baseline_days(day).filter(|d| self.holds(*d)))
    }

    /// Each kind's mean volume over the baseline days before `day` that
    /// fall on `on`'s weekday (four of them): the yardstick of a day of a
    /// weekly profile.
    fn weekday_volume(&self, day: i64, on: i64) -> [f64; Kind::COUNT] {
        self.mean_volume(baseline_days(day).filter(|d| self.holds(*d) && (d - on).rem_euclid(7) == 0))
    }

    fn mean_volume(&self, days: impl Iterator<Item = i64>) -> [f64; Kind::COUNT] {
        let days: Vec<i64> = days.collect();
        let n = days.len().max(1) as f64;
        std::array::from_fn(|k| days.iter().map(|d| f64::from(self.h.events[Self::slot(*d)][k])).sum::<f64>() / n)
    }

    /// Whether some activity kind stalled on the day before `day` (the
    /// last complete one): it carried under half of its quietest baseline
    /// day, by at least [`STALL_SDS`] standard deviations, and that day
    /// carried at least [`MIN_KIND_VOLUME`]. The quietest day, not the
    /// mean: a weekday profile (a Sunday at 0.6 of the week's mean) does
    /// not read as a stall, nor does a noisy small kind's quiet day. Days
    /// of the last outage are left out (their empty counts would make
    /// every kind's quietest day nothing for five weeks after it).
    ///
    /// And the fall was abrupt: one of the two days before the run of such
    /// days that ends on the last complete one still carried
    /// [`ABRUPT_SHARE`] of that quietest day. A source stopping empties a
    /// kind from one day to the next (two, when it stops mid-day); customers
    /// leaving one by one, however many, thin it a little a day, and are
    /// judged as customers.
    fn stalled(&self, day: i64) -> bool {
        let last = day - 1;
        if !self.holds(last) {
            return false;
        }
        let days: Vec<i64> = baseline_days(day).filter(|d| self.holds(*d) && !self.h.outage.overlaps(d * DAY_MS, (d + 1) * DAY_MS)).collect();
        self.params.activity.iter().any(|k| {
            let quietest = days.iter().map(|d| self.h.events[Self::slot(*d)][k.idx()]).min().map_or(0.0, f64::from);
            let count = |d: i64| f64::from(self.h.events[Self::slot(d)][k.idx()]);
            let low = |d: i64| count(d) < BACK_SHARE * quietest && quietest - count(d) >= STALL_SDS * quietest.sqrt();
            if quietest < MIN_KIND_VOLUME || !low(last) {
                return false;
            }
            let mut first = last;
            while self.seen(first - 1) && low(first - 1) {
                first -= 1;
            }
            [first - 1, first - 2].into_iter().any(|d| self.seen(d) && count(d) >= ABRUPT_SHARE * quietest)
        })
    }

    /// Activity kinds whose volume on `day`, of which `share` has passed,
    /// is under half their volume before. Only they: a kind that is not
    /// activity opens no decline or silence by its absence, so neither
    /// trips the guard nor is waited for (a kind retired upstream is
    /// taken out of `engine.activity_kinds` to stop waiting for it).
    fn affected(&self, before: &[f64; Kind::COUNT], day: i64, share: f64) -> Vec<&'static str> {
        let now = &self.h.events[Self::slot(day)];
        let low = |k: &Kind| before[k.idx()] >= MIN_KIND_VOLUME && f64::from(now[k.idx()]) < BACK_SHARE * before[k.idx()] * share;
        self.params.activity.iter().filter(|k| low(k)).map(|k| k.as_str()).collect()
    }

    /// The first of the days up to `day` on which some kind was short
    /// without a break, as far back as the ring holds: the guard trips days
    /// into an outage, once the openings pile up, and those first days'
    /// buckets are the outage's too.
    fn short_since(&self, before: &[f64; Kind::COUNT], day: i64) -> i64 {
        let mut first = day;
        while self.seen(first - 1) && !self.affected(before, first - 1, 1.0).is_empty() {
            first -= 1;
        }
        first
    }

    /// The last outage's days (see [`Outage`]).
    pub fn outage(&self) -> Outage {
        self.h.outage
    }

    /// Clears the guard if `day`, just ended, was back to normal.
    fn clear_after(&mut self, day: i64) -> Option<Anomaly> {
        let t = self.h.tripped.as_ref()?;
        if day <= t.since_day {
            return None;
        }
        let quiet = f64::from(self.h.openings[Self::slot(day)]) <= t.threshold;
        if !quiet || !self.affected(&t.volume_before, day, 1.0).is_empty() {
            return None;
        }
        let t = self.h.tripped.take()?;
        self.h.outage.until_ms = (day + 1) * DAY_MS;
        Some(self.anomaly(&t, false, (day + 1) * DAY_MS, day, 1.0))
    }

    /// What the guard says at `at_ms`, `share` of `day` having passed.
    fn anomaly(&self, t: &Trip, tripped: bool, at_ms: i64, day: i64, share: f64) -> Anomaly {
        Anomaly {
            tripped,
            since_ms: t.since_day * DAY_MS,
            at_ms,
            withheld: t.withheld,
            threshold: t.threshold,
            expected_per_day: t.expected,
            kinds_affected: self.affected(&t.volume_before, day, share),
        }
    }

    /// Whether openings are being withheld.
    pub fn is_tripped(&self) -> bool {
        self.h.tripped.is_some()
    }

    /// What the guard has seen, for the meta record; `None` before its
    /// first day.
    pub fn history(&self) -> Option<History> {
        (self.h.day != i64::MIN).then(|| self.h.clone())
    }

    /// Takes back a history read from the changelog (`None`: the guard
    /// starts over, as before its first day).
    pub fn restore(&mut self, h: Option<History>) {
        self.h = h.unwrap_or_else(|| Guard::new(self.params).h);
    }
}

impl History {
    /// Appends the history's layout: its format, the newest and first day,
    /// the ring oldest day first (openings, then events per kind), the
    /// trip and the last outage.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(HISTORY_FORMAT);
        put_zigzag(out, self.day);
        put_zigzag(out, self.first_day);
        put_varint(out, DAYS as u64);
        put_varint(out, Kind::COUNT as u64);
        for d in self.day - DAYS as i64 + 1..=self.day {
            let s = Guard::slot(d);
            put_varint(out, u64::from(self.openings[s]));
            self.events[s].iter().for_each(|&e| put_varint(out, u64::from(e)));
        }
        match &self.tripped {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                put_zigzag(out, t.since_day);
                put_varint(out, t.withheld);
                for x in [t.threshold, t.expected].iter().chain(&t.volume_before) {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
        put_zigzag(out, self.outage.from_ms);
        put_zigzag(out, self.outage.until_ms);
    }

    /// Reads a history [`History::encode`] wrote.
    ///
    /// # Errors
    /// The layout is truncated or corrupt, or newer than this binary's.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<History, CodecError> {
        match r.u8("guard history format")? {
            HISTORY_FORMAT => {}
            0 => return Err(CodecError::Corrupt("guard history format 0 was never written".into())),
            found => return Err(CodecError::NewerFormat { what: "outage guard history", found, supported: HISTORY_FORMAT }),
        }
        let (day, first_day) = (r.zigzag("guard day")?, r.zigzag("guard first day")?);
        if !(-MAX_DAY..=MAX_DAY).contains(&day) || !(-MAX_DAY..=day).contains(&first_day) {
            return Err(CodecError::Corrupt(format!("guard days out of range: {first_day}..{day}")));
        }
        let (days, kinds) = (r.usize("guard ring days")?, r.usize("guard kinds")?);
        // A newer binary with more kinds writes a newer format.
        if days != DAYS || kinds != Kind::COUNT {
            return Err(CodecError::Corrupt(format!("guard ring of {days} days and {kinds} kinds, not {DAYS} and {}", Kind::COUNT)));
        }
        let (mut openings, mut events) = ([0; DAYS], [[0; Kind::COUNT]; DAYS]);
        for d in day - DAYS as i64 + 1..=day {
            let s = Guard::slot(d);
            openings[s] = r.u32("guard openings")?;
            for e in &mut events[s] {
                *e = r.u32("guard events")?;
            }
        }
        let tripped = match r.u8("guard tripped")? {
            0 => None,
            1 => Some(decode_trip(r).and_then(|t| if (first_day..=day).contains(&t.since_day) { Ok(t) } else { Err(CodecError::Corrupt(format!("guard tripped on day {}", t.since_day))) })?),
            b => return Err(CodecError::Corrupt(format!("guard tripped flag {b}"))),
        };
        let outage = Outage { from_ms: r.zigzag("guard outage start")?, until_ms: r.zigzag("guard outage end")? };
        Ok(History { day, first_day, openings, events, tripped, outage })
    }
}

fn decode_trip(r: &mut Reader<'_>) -> Result<Trip, CodecError> {
    let since_day = r.zigzag("guard trip day")?;
    let withheld = r.varint("guard withheld")?;
    let mut figure = |what| r.f64_le(what).and_then(|x| if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(CodecError::Corrupt(format!("{what} is {x}"))) });
    let (threshold, expected) = (figure("guard threshold")?, figure("guard expected")?);
    let mut volume_before = [0.0; Kind::COUNT];
    for v in &mut volume_before {
        *v = figure("guard volume before")?;
    }
    Ok(Trip { since_day, withheld, threshold, expected, volume_before })
}

/// The days the baseline before `day` averages: the 28 before the last week.
fn baseline_days(day: i64) -> std::ops::Range<i64> {
    (day - DAYS as i64 + 1)..(day - RECENT)
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
