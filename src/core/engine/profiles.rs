//! When the engine sends a customer's profile (`crate::profile` says what
//! is watched): after the detectors decided on an event or a timer, and
//! once for every customer when a backfill ends.

use super::Engine;
use crate::profile::{Decision, Profile, KEY};
use crate::render::OutputRecord;
use crate::scorecard::Scorecard;
use crate::state::Customer;

impl Engine {
    /// A backfill is under way: profiles wait for stream time to reach
    /// `emit_from`, when every one is sent at once.
    fn backfilling(&self) -> bool {
        self.emit_from_ms.is_some() && !self.caught_up
    }

    /// Looks at the customer's profile at `at_ms` if something it shows may
    /// have changed (`touched`) or its look-again time came, and sends it
    /// when the rules say so.
    pub(super) fn profile(&mut self, slot: u32, at_ms: i64, touched: bool, out: &mut Vec<OutputRecord>) {
        let Some(p) = self.rules.profiles.as_ref() else { return };
        let c = self.state.customer(slot);
        if self.backfilling() || (!touched && !self.may_be_due(c, at_ms)) {
            return;
        }
        let (decision, digest, due_ms) = p.look(c, &self.rules.detectors, at_ms);
        self.state.customer_mut(slot).set_profile_due_ms(due_ms);
        if decision == Decision::Send {
            self.send_profile(slot, at_ms, digest, out);
        }
    }

    /// Renders the customer's profile as of `at_ms` and remembers it was
    /// sent with fingerprint `digest`.
    fn send_profile(&mut self, slot: u32, at_ms: i64, digest: u64, out: &mut Vec<OutputRecord>) {
        let r = self.render_profile(slot, at_ms);
        self.state.customer_mut(slot).detectors.get_or_insert_with(KEY, Profile::default).set_sent(at_ms, digest);
        self.tally.profiles += 1;
        out.push(r);
    }

    /// Whether the customer's look-again time has come by `at_ms`.
    fn may_be_due(&self, c: &Customer, at_ms: i64) -> bool {
        self.profile_due(c).is_some_and(|due| at_ms >= due)
    }

    /// When the customer's profile is to be looked at again, if ever.
    pub(super) fn profile_due(&self, c: &Customer) -> Option<i64> {
        self.rules.profiles.as_ref()?;
        c.profile_due_ms()
    }

    fn render_profile(&mut self, slot: u32, at_ms: i64) -> OutputRecord {
        let r = &self.rules;
        let card = Scorecard::new(self.state.customer(slot), self.id.partition, Some(at_ms), &r.card, &r.detectors);
        r.renderer.profile(&mut self.arena, &card, at_ms, &mut self.encoded)
    }

    /// Sends every customer's profile as of stream time, in customer id
    /// order: the end of a backfill, which sent none.
    pub(super) fn send_every_profile(&mut self, out: &mut Vec<OutputRecord>) {
        let rules = std::sync::Arc::clone(&self.rules);
        let (Some(p), Some(at_ms)) = (rules.profiles.as_ref(), self.state.stream_time_ms) else { return };
        let mut slots: Vec<u32> = (0..self.state.len() as u32).collect();
        slots.sort_unstable_by(|a, b| self.state.customer(*a).id.cmp(&self.state.customer(*b).id));
        for slot in slots {
            let c = self.state.customer(slot);
            let (_, digest, due_ms) = p.look(c, &rules.detectors, at_ms);
            self.state.customer_mut(slot).set_profile_due_ms(due_ms);
            self.send_profile(slot, at_ms, digest, out);
            self.reschedule(slot, at_ms, at_ms - self.rules.lateness_ms);
        }
    }
}
