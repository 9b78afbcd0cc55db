//! The detectors' passes over a customer: which detectors an event or a
//! timer calls (only those with the hook, `Detector::hooks`), the
//! supersession among them, and the customer's next timer.

use super::{emit, Engine};
use crate::detect::registry::indexes;
use crate::detect::{Detector, Hooks, Moment, Signal};
use crate::render::OutputRecord;
use crate::state::Customer;

impl Engine {
    /// Runs `decide` for every detector in registry order, applying the
    /// supersession they declare to each signal in turn, and emits them. A
    /// detector's episode open before this moment, or opened in it,
    /// supersedes those it names for the whole moment. Returns whether any
    /// signal was decided (emitted, suppressed or withheld).
    pub(super) fn detect<F>(&mut self, slot: u32, mut at: Moment, out: &mut Vec<OutputRecord>, hook: Hooks, decide: F) -> bool
    where
        F: Fn(&dyn Detector, &mut Customer, Moment, &mut Vec<Signal>),
    {
        let r = &*self.rules;
        let ds = &r.detectors;
        let (deciding, episodes) = (ds.with(hook), ds.with(Hooks::EPISODES));
        if deciding == 0 {
            return false;
        }
        // The deciding detectors and those that may supersede them.
        let asked = indexes(deciding).fold(deciding, |m, i| m | ds.stronger(i));
        let mut signals = std::mem::take(&mut self.signals);
        let c = self.state.customer_mut(slot);
        // Detectors open at any point of this moment (even if closed again by it).
        let mut open = 0u64;
        let mut decided = false;
        for i in indexes(asked) {
            let (d, has_episodes) = (ds.get(i), episodes & 1 << i != 0);
            if deciding & 1 << i == 0 {
                // Not called: open or not, as it was.
                if has_episodes && d.is_open(c) {
                    open |= 1 << i;
                }
                continue;
            }
            at.superseded = open & ds.stronger(i) != 0;
            let mut was_open = has_episodes && d.is_open(c);
            decide(d, c, at, &mut signals);
            decided |= !signals.is_empty();
            for s in signals.drain(..) {
                if s.opens() {
                    was_open = true;
                    indexes(ds.weaker(i)).for_each(|j| ds.get(j).supersede(c));
                }
                let guard = emit::Guarded { guard: &mut self.guard, anomalies: &mut self.anomalies };
                if emit::admit(&mut self.tally, guard, self.emit_from_ms, c, &s) {
                    out.push(r.renderer.signal(&mut self.arena, &c.id, &s));
                }
            }
            if was_open || (has_episodes && d.is_open(c)) {
                open |= 1 << i;
            }
        }
        self.signals = signals;
        decided
    }

    pub(super) fn moment(&self, now_ms: i64, trigger_ms: i64, sealed_ms: i64) -> Moment {
        Moment { now_ms, trigger_ms, sealed_ms, buckets: self.rules.buckets, superseded: false, outage: self.guard.outage() }
    }

    /// The customer's next timer: the earliest deadline any detector names.
    /// Timers up to `fired_ms` have fired (stream time minus the lateness
    /// on an event, the logical time on a timer): a deadline after it is
    /// still to come, even one before `now_ms`. Filtering at `now_ms`
    /// instead lost a deadline that an event within the lateness after it
    /// rescheduled, for good where no event moves it on (a purchase-churn
    /// crossing day under daily clicks).
    pub(super) fn reschedule(&mut self, slot: u32, now_ms: i64, fired_ms: i64) {
        let r = &self.rules;
        let c = self.state.customer(slot);
        let mut at = Moment { now_ms, sealed_ms: fired_ms, trigger_ms: now_ms, buckets: r.buckets, superseded: false, outage: self.guard.outage() };
        let (mut next, mut open): (Option<i64>, u64) = (None, 0);
        let (timers, episodes) = (r.detectors.with(Hooks::TIMERS), r.detectors.with(Hooks::EPISODES));
        for (i, d) in r.detectors.iter().enumerate() {
            at.superseded = open & r.detectors.stronger(i) != 0;
            if let Some(t) = (timers & 1 << i != 0).then(|| d.next_deadline(c, at)).flatten() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            if episodes & 1 << i != 0 && d.is_open(c) {
                open |= 1 << i;
            }
        }
        if let Some(due) = self.profile_due(c).filter(|t| *t > fired_ms) {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        let lateness = r.lateness_ms;
        self.state.schedule(slot, next.map(|t| t + lateness));
    }
}
