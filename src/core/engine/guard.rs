//! The outage guard: an upstream outage is not every customer going quiet.
//!
//! When a source (or some kinds within one) stops while others flow,
//! stream time moves on without those events and every regular customer
//! soon looks declining or silent. Per task, the guard counts the openings
//! of activity signals (those whose type says an outage looks like them:
//! decline, silence) per day of event time, and the events of each kind.
//! An opening that takes its day past `engine.outage_guard_factor` (10) ×
//! the task's mean daily openings over the 28 days before the last week,
//! and past `engine.outage_guard_min_openings` (50), while some kind of
//! event carries less than half its volume before, trips it (a wave of
//! openings while every kind flows is customers changing, and is sent):
//! from then on
//! such openings are withheld, their episodes held open silently and closed
//! silently (no `opened`, no `resolved`), and one `io.care.source_anomaly.v1`
//! says so on the anomalies topic. It clears at the end of the first day
//! whose openings are back under that line and whose every kind carries at
//! least half its volume before the trip (so a week-long outage is not
//! cleared by everyone already being open), with a second anomaly record.
//!
//! The outage's days (from the day before the first on which an affected
//! kind fell short, found in the guard's 36-day ring when it trips, to the
//! end of the day that cleared it) reach the detectors as
//! [`Moment::outage`](crate::detect::Moment): the sequential decline
//! neither learns their empty buckets into a baseline nor counts them as
//! evidence, and ends an episode the outage opened at the first bucket
//! after it (silently if withheld), so a real decline after the return is
//! judged against the customer's own rate as if the outage had not been
//! (tested: decliners 15 days after a 30-day outage are caught on average
//! in 8.9 days against 8.9 without it; learning the empty days, 22 of 80
//! took 30 days or more). The guard trips days into an outage, once
//! openings pile up: buckets a customer learned before that stay learned
//! (learning runs a week late, so that is at most the days the trip took
//! past a week). Silence reads the customer's lifetime gap rate, which an
//! outage lowers: after the return it waits longer, never sooner.
//!
//! It judges only once it has seen 35 days of the task's event time (a
//! full baseline): at a fresh start or a backfill every customer is judged
//! for the first time within days of each other, which is no outage. Its
//! history lives with the task in memory, so a restored task waits those
//! 35 days of event time again. A genuine mass event (the business's own site down for a week)
//! looks the same and is withheld the same way: the anomaly records say
//! what was withheld; set `outage_guard_factor = 0` to turn the guard off.

use serde::Serialize;

use crate::detect::Outage;
use crate::event::Kind;

/// Days of history kept: the 28-day baseline and the week before today.
const DAYS: usize = 36;
/// Days before today left out of the baseline (a slow-building surge must
/// not raise its own yardstick).
const RECENT: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// A kind carrying this much of its pre-trip volume is back.
const BACK_SHARE: f64 = 0.5;
/// Kinds below this many events a day before the trip are not waited for.
const MIN_KIND_VOLUME: f64 = 10.0;

/// The guard's settings (`[engine]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardParams {
    /// 0 turns the guard off.
    pub factor: f64,
    pub min_openings: u32,
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
    /// Kinds carrying less than half their volume before the trip.
    pub kinds_affected: Vec<&'static str>,
}

/// One task's guard.
#[derive(Debug, Clone)]
pub struct Guard {
    params: GuardParams,
    /// Day number of slot 0's newest day.
    day: i64,
    /// The first day the guard saw: it judges only with a full baseline.
    first_day: i64,
    openings: [u32; DAYS],
    events: [[u32; Kind::COUNT]; DAYS],
    tripped: Option<Trip>,
    /// The last outage's days, which baselines must not learn.
    outage: Outage,
}

#[derive(Debug, Clone)]
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
        Guard { params, day: i64::MIN, first_day: i64::MIN, openings: [0; DAYS], events: [[0; Kind::COUNT]; DAYS], tripped: None, outage: Outage::NONE }
    }

    fn slot(day: i64) -> usize {
        day.rem_euclid(DAYS as i64) as usize
    }

    /// Moves to `day`, clearing the days that fell out; a tripped guard
    /// looks at each day that ended on the way.
    fn roll(&mut self, day: i64, out: &mut Vec<Anomaly>) {
        if self.day == i64::MIN {
            (self.day, self.first_day) = (day, day);
            return;
        }
        while self.day < day {
            let ended = self.day;
            self.day += 1;
            let s = Self::slot(self.day);
            (self.openings[s], self.events[s]) = (0, [0; Kind::COUNT]);
            if let Some(a) = self.clear_after(ended) {
                out.push(a);
            }
            if day - self.day > DAYS as i64 {
                // A long gap: nothing in between to look at.
                self.day = day - DAYS as i64;
            }
        }
    }

    /// An on-time event of `kind` at `ts_ms`.
    pub fn event(&mut self, kind: Kind, ts_ms: i64, out: &mut Vec<Anomaly>) {
        let day = ts_ms.div_euclid(DAY_MS);
        self.roll(day, out);
        if self.holds(day) {
            let e = &mut self.events[Self::slot(day)][kind.idx()];
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
            let o = &mut self.openings[Self::slot(day)];
            *o = o.saturating_add(1);
        }
        let (expected, threshold) = self.line(day);
        if let Some(t) = &mut self.tripped {
            t.withheld += 1;
            return Decision::Withhold;
        }
        // Without a full baseline there is no history to judge against: a
        // fresh start (or a backfill) sees every customer judged for the
        // first time within days of each other.
        if f64::from(self.openings[Self::slot(day)]) <= threshold || day - self.first_day < DAYS as i64 - 1 {
            return Decision::Emit;
        }
        let volume_before = self.volume_before(day);
        // Early in a day (openings decided at its start) the day before
        // says more about the kinds than the first hours.
        let share = (ts_ms - day * DAY_MS) as f64 / DAY_MS as f64;
        let (look, share) = if share < 0.25 { (day - 1, 1.0) } else { (day, share) };
        // A wave of openings while every kind flows as before is customers
        // changing, not a source stopping: it is sent.
        if self.affected(&volume_before, look, share).is_empty() {
            return Decision::Emit;
        }
        let trip = Trip { since_day: day, withheld: 1, threshold, expected, volume_before };
        self.outage = Outage { from_ms: (self.short_since(&volume_before, look) - 1) * DAY_MS, until_ms: i64::MAX };
        out.push(self.anomaly(&trip, true, ts_ms, look, share));
        self.tripped = Some(trip);
        Decision::Withhold
    }

    /// The mean daily openings over the baseline days before `day`, and
    /// the line an opening day must pass.
    fn line(&self, day: i64) -> (f64, f64) {
        let n = baseline_days(day).count().max(1) as f64;
        let mean = baseline_days(day).filter(|d| self.holds(*d)).map(|d| f64::from(self.openings[Self::slot(d)])).sum::<f64>() / n;
        (mean, (self.params.factor * mean).max(f64::from(self.params.min_openings)))
    }

    /// Whether day `d` is still in the ring.
    fn holds(&self, d: i64) -> bool {
        d > self.day - DAYS as i64
    }

    fn volume_before(&self, day: i64) -> [f64; Kind::COUNT] {
        let days: Vec<i64> = baseline_days(day).filter(|d| self.holds(*d)).collect();
        let n = days.len().max(1) as f64;
        std::array::from_fn(|k| days.iter().map(|d| f64::from(self.events[Self::slot(*d)][k])).sum::<f64>() / n)
    }

    /// Kinds whose volume on `day`, of which `share` has passed, is under
    /// half their volume before.
    fn affected(&self, before: &[f64; Kind::COUNT], day: i64, share: f64) -> Vec<&'static str> {
        let now = &self.events[Self::slot(day)];
        let low = |k: &Kind| before[k.idx()] >= MIN_KIND_VOLUME && f64::from(now[k.idx()]) < BACK_SHARE * before[k.idx()] * share;
        Kind::ALL.iter().filter(|k| low(k)).map(|k| k.as_str()).collect()
    }

    /// The first of the days up to `day` on which some kind was short
    /// without a break, as far back as the ring holds: the guard trips days
    /// into an outage, once the openings pile up, and those first days'
    /// buckets are the outage's too.
    fn short_since(&self, before: &[f64; Kind::COUNT], day: i64) -> i64 {
        let mut first = day;
        while first - 1 >= self.first_day && self.holds(first - 1) && !self.affected(before, first - 1, 1.0).is_empty() {
            first -= 1;
        }
        first
    }

    /// The last outage's days (see [`Outage`]).
    pub fn outage(&self) -> Outage {
        self.outage
    }

    /// Clears the guard if `day`, just ended, was back to normal.
    fn clear_after(&mut self, day: i64) -> Option<Anomaly> {
        let t = self.tripped.as_ref()?;
        if day <= t.since_day {
            return None;
        }
        let quiet = f64::from(self.openings[Self::slot(day)]) <= t.threshold;
        if !quiet || !self.affected(&t.volume_before, day, 1.0).is_empty() {
            return None;
        }
        let t = self.tripped.take()?;
        self.outage.until_ms = (day + 1) * DAY_MS;
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
        self.tripped.is_some()
    }
}

/// The days the baseline before `day` averages: the 28 before the last week.
fn baseline_days(day: i64) -> std::ops::Range<i64> {
    (day - DAYS as i64 + 1)..(day - RECENT)
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
