//! Per-customer state, owned per task (one input partition).
//!
//! A [`TaskState`] is the unit restored, revoked and committed: it holds its
//! customers, its stream time, its timer index and its dirty set.
//! Customers live in a slab addressed by a `u32` slot so the timer index and
//! dirty set stay small and the id string is stored once.

pub mod codec;
pub mod dump;
pub mod ext;
pub mod timers;
mod undo;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;

use ext::Extensions;
use timers::TimerIndex;

use serde::Serialize;

use crate::event::Kind;
pub use window::Activity;

// Detector state, defined next to the detector that owns it.
pub use crate::detect::csat_low::CsatWindow;
pub use crate::detect::decline::Episode;
pub use crate::detect::sequential::DeclineStat;

/// Lifetime order figures for RFM and CLV.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrderStats {
    pub count: u32,
    pub total_amount: f64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// CSAT answers: satisfied means 4 or 5 on 1–5.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CsatTally {
    pub responses: u32,
    pub satisfied: u32,
}

/// NPS answers: promoters 9–10, detractors 0–6.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NpsTally {
    pub responses: u32,
    pub promoters: u32,
    pub detractors: u32,
}

/// How many recent `event_id` fingerprints are kept for de-duplication.
const RECENT_IDS: usize = 4;

/// What de-duplication made of an event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdCheck {
    /// Not seen recently; remembered.
    New,
    /// Seen recently: a re-send.
    Duplicate,
    /// Remembered, dropping a fingerprint still within the allowed lateness:
    /// a re-send of that event would now go unnoticed.
    NewEvicting,
}

/// An instant as whole seconds since the epoch in a `u32` (until 2106),
/// clamped: the event time of a remembered id.
fn id_secs(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
}

/// A timer's deadline in 8 bytes (an `Option<i64>` takes 16): with the
/// index's position and list entry, 16 bytes of timer state per customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deadline(i64);

impl Serialize for Deadline {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl Deadline {
    /// No timer. No deadline is this early: deadlines are event times.
    const NONE: Deadline = Deadline(i64::MIN);

    fn new(at: Option<i64>) -> Deadline {
        at.map_or(Deadline::NONE, |t| Deadline(t.max(i64::MIN + 1)))
    }

    fn get(self) -> Option<i64> {
        (self != Deadline::NONE).then_some(self.0)
    }
}

/// Everything care remembers about one customer. No event lists.
///
/// Its `Serialize` is the state dump (`care state`, and the durability
/// test's field-by-field comparison): derived, so a new field is in the dump
/// without anyone remembering to add it. Times are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    #[serde(rename = "customer_id", serialize_with = "as_str")]
    pub id: Arc<str>,
    pub first_seen_ms: i64,
    /// Last event of an activity kind: drives dormancy.
    pub last_activity_ms: Option<i64>,
    /// Last event per tracked kind, in kind order (click, login, chat,
    /// ticket, order; not survey); `None` = never.
    pub last_seen_ms: [Option<i64>; Kind::TRACKED],
    /// Lifetime on-time events of activity kinds (late ones count only in
    /// orders and survey tallies).
    pub activity_events: u32,
    pub orders: OrderStats,
    pub csat: CsatTally,
    pub nps: NpsTally,
    pub decline: Episode,
    pub decline_stat: DeclineStat,
    /// Deadline at which the customer turned overdue, while silent.
    #[serde(rename = "silent_since_ms")]
    pub silent_since: Option<i64>,
    /// Deadline at which the customer turned dormant, while dormant.
    #[serde(rename = "dormant_since_ms")]
    pub dormant_since: Option<i64>,
    /// The state of detectors that keep it in their own type (the NPS
    /// detractor's last alert, low CSAT's window), each under its
    /// detector's name: a new detector adds none of the fields above. Made
    /// at first use, so a customer who never answered a survey carries 8
    /// bytes for all of them.
    pub detectors: Extensions,
    /// The customer's pending timer, if any (see [`Deadline`]): the
    /// deadline plus the allowed lateness.
    #[serde(rename = "timer_at_ms")]
    timer: Deadline,
    /// When the customer's profile is to be looked at again (`crate::profile`
    /// says why), if ever: inline beside the timer, not in the profile's
    /// own state, since every event's rescheduling reads it. Persisted in
    /// the profile's changelog block.
    #[serde(rename = "profile_due_ms")]
    profile_due: Deadline,
    /// Fingerprints of recent `event_id`s (0 = empty), filled in order.
    #[serde(rename = "event_ids")]
    recent_ids: [u32; RECENT_IDS],
    /// Event time of each, seconds since the epoch (0 = unknown: written
    /// by a binary that did not keep it).
    #[serde(rename = "event_id_secs")]
    id_secs: [u32; RECENT_IDS],
    /// The slot after the last one written.
    #[serde(rename = "next_event_id")]
    next_id: u8,
    /// Nonzero activity counts held: (bucket, kind, count), newest first.
    pub activity: Activity,
}

fn as_str<S: serde::Serializer>(id: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id)
}

impl Customer {
    /// A customer first seen at `first_seen_ms`, with a window of `width` buckets.
    pub fn new(id: Arc<str>, first_seen_ms: i64, width: usize) -> Customer {
        Customer {
            id,
            activity: Activity::new(width),
            first_seen_ms,
            last_activity_ms: None,
            last_seen_ms: [None; Kind::TRACKED],
            activity_events: 0,
            orders: OrderStats::default(),
            csat: CsatTally::default(),
            nps: NpsTally::default(),
            decline: Episode::Normal,
            decline_stat: DeclineStat::default(),
            silent_since: None,
            dormant_since: None,
            detectors: Extensions::default(),
            recent_ids: [0; RECENT_IDS],
            id_secs: [0; RECENT_IDS],
            next_id: 0,
            timer: Deadline::NONE,
            profile_due: Deadline::NONE,
        }
    }

    /// Checks `event_id` of an event at `ts_ms` against the recent ones and
    /// remembers it. It takes an empty slot, else the one of the oldest
    /// event; dropping one whose event is not older than `horizon_ms`
    /// (stream time minus the allowed lateness) is an eviction: within the
    /// lateness every re-send should be caught, and `RECENT_IDS` bounds the
    /// state.
    pub fn remember_event_id(&mut self, event_id: &str, ts_ms: i64, horizon_ms: i64) -> IdCheck {
        // murmur2 is stable across builds, so fingerprints can be persisted.
        let fp = murmur2::murmur2(event_id.as_bytes(), murmur2::KAFKA_SEED) | 1;
        if self.recent_ids.contains(&fp) {
            return IdCheck::Duplicate;
        }
        // Empty first, then the oldest event; among equal times (unknown
        // ones from an older changelog) the ring order, oldest first.
        let ring_age = |i: usize| (i + RECENT_IDS - usize::from(self.next_id)) % RECENT_IDS;
        let slot = (0..RECENT_IDS).min_by_key(|&i| (self.recent_ids[i] != 0, self.id_secs[i], ring_age(i))).unwrap_or(0);
        let evicts = self.recent_ids[slot] != 0 && self.id_secs[slot] >= id_secs(horizon_ms);
        (self.recent_ids[slot], self.id_secs[slot]) = (fp, id_secs(ts_ms));
        self.next_id = ((slot + 1) % RECENT_IDS) as u8;
        if evicts { IdCheck::NewEvicting } else { IdCheck::New }
    }

    /// Folds lifetime aggregates of an order or survey answer.
    pub fn fold_lifetime(&mut self, kind: Kind, ts_ms: i64, amount: Option<f64>, csat: Option<u8>, nps: Option<u8>) {
        if kind == Kind::Order {
            let o = &mut self.orders;
            o.count = o.count.saturating_add(1);
            o.total_amount += amount.unwrap_or(0.0);
            o.first_ms = Some(o.first_ms.map_or(ts_ms, |f| f.min(ts_ms)));
            o.last_ms = Some(o.last_ms.map_or(ts_ms, |l| l.max(ts_ms)));
        }
        if let Some(score) = csat {
            self.csat.responses = self.csat.responses.saturating_add(1);
            self.csat.satisfied = self.csat.satisfied.saturating_add(u32::from(score >= 4));
        }
        if let Some(score) = nps {
            self.nps.responses = self.nps.responses.saturating_add(1);
            self.nps.promoters = self.nps.promoters.saturating_add(u32::from(score >= 9));
            self.nps.detractors = self.nps.detractors.saturating_add(u32::from(score <= 6));
        }
    }

    /// An on-time event earlier than the first one seen (out of order within
    /// the allowed lateness). Late events never move it: `first_seen`
    /// decides decline eligibility and the reactivation score's tenure.
    pub fn seen_at(&mut self, ts_ms: i64) {
        self.first_seen_ms = self.first_seen_ms.min(ts_ms);
    }

    /// The pending timer's deadline (stream time, lateness included).
    pub fn timer_at(&self) -> Option<i64> {
        self.timer.get()
    }

    /// When the customer's profile is to be looked at again.
    pub fn profile_due_ms(&self) -> Option<i64> {
        self.profile_due.get()
    }

    pub fn set_profile_due_ms(&mut self, at: Option<i64>) {
        self.profile_due = Deadline::new(at);
    }

    /// Sets the timer's deadline; only the task state does, keeping its
    /// index in step (and the codec, restoring).
    pub(in crate::state) fn set_timer_at(&mut self, at: Option<i64>) {
        self.timer = Deadline::new(at);
    }

    /// Recent `event_id` fingerprints held, oldest event first.
    pub fn recent_event_ids(&self) -> impl Iterator<Item = u32> + '_ {
        let mut held: Vec<(u32, u32)> = self.id_secs.iter().copied().zip(self.recent_ids).filter(|(_, fp)| *fp != 0).collect();
        held.sort_unstable();
        held.into_iter().map(|(_, fp)| fp)
    }

    /// Approximate bytes held, heap included (for the state-size gauge).
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Customer>() + self.activity.heap_bytes() + self.id.len() + 16 + self.detectors.heap_bytes()
    }
}

/// Orders the timer index by each slot's (deadline, customer id).
struct ByCustomer<'a>(&'a [Customer]);

impl timers::Keys for ByCustomer<'_> {
    fn deadline(&self, slot: u32) -> i64 {
        self.0[slot as usize].timer_at().unwrap_or(i64::MAX)
    }
    fn id(&self, slot: u32) -> &str {
        &self.0[slot as usize].id
    }
}

/// The customers of one task and the time they are as of.
#[derive(Debug, Default)]
pub struct TaskState {
    /// Max event time seen; `None` before the first event.
    pub stream_time_ms: Option<i64>,
    index: HashMap<Arc<str>, u32>,
    customers: Vec<Customer>,
    /// Each customer with a `Customer::timer_at`, once.
    timers: TimerIndex,
    /// Slots changed since the last commit (the changelog's input).
    dirty: Vec<u32>,
    dirty_mark: Vec<bool>,
    /// While a batch that may abort is open: how to undo it.
    undo: Option<undo::Undo>,
}

impl TaskState {
    pub fn new() -> TaskState {
        TaskState::default()
    }

    /// Number of customers held.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// The slot of `id`, creating the customer if new. Returns (slot, created).
    pub fn slot_or_insert(&mut self, id: &str, ts_ms: i64, width: usize) -> (u32, bool) {
        if let Some(&slot) = self.index.get(id) {
            return (slot, false);
        }
        let slot = u32::try_from(self.customers.len()).expect("fewer than 2^32 customers per partition");
        let id: Arc<str> = Arc::from(id);
        self.customers.push(Customer::new(id.clone(), ts_ms, width));
        self.dirty_mark.push(false);
        self.index.insert(id, slot);
        (slot, true)
    }

    pub fn customer(&self, slot: u32) -> &Customer {
        &self.customers[slot as usize]
    }

    /// Mutable access; marks the customer dirty.
    pub fn customer_mut(&mut self, slot: u32) -> &mut Customer {
        self.mark(slot);
        &mut self.customers[slot as usize]
    }

    /// Marks a customer about to change: dirty (for the changelog) and, the
    /// first time in an undoable batch, saved for rollback.
    fn mark(&mut self, slot: u32) {
        let i = slot as usize;
        if !self.dirty_mark[i] {
            if let Some(u) = &mut self.undo {
                u.save(slot, &self.customers[i]);
            }
            self.dirty_mark[i] = true;
            self.dirty.push(slot);
        }
    }

    /// Every customer held.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.iter()
    }

    /// Looks a customer up by id (the HTTP query path).
    pub fn get(&self, id: &str) -> Option<&Customer> {
        self.index.get(id).map(|&s| &self.customers[s as usize])
    }

    /// Moves the customer's timer to `at` (or removes it).
    pub fn schedule(&mut self, slot: u32, at: Option<i64>) {
        if self.customers[slot as usize].timer_at() == at {
            return;
        }
        self.mark(slot); // the timer is part of the persisted state
        if let Some(old) = self.customers[slot as usize].timer_at() {
            self.timers.remove(slot, old);
        }
        self.customers[slot as usize].set_timer_at(at);
        if let Some(at) = at {
            self.timers.insert(slot, at, &ByCustomer(&self.customers));
        }
    }

    /// Removes the timers due at the earliest deadline at or before `now_ms`
    /// and puts their slots in `batch` in customer-id order, so firing order
    /// is (deadline, customer id) and never depends on slab slots, which
    /// differ after a restore. Returns that deadline.
    pub fn pop_due(&mut self, now_ms: i64, batch: &mut Vec<u32>) -> Option<i64> {
        let at = self.timers.pop_due(now_ms, &ByCustomer(&self.customers), batch)?;
        for &slot in batch.iter() {
            self.mark(slot);
            self.customers[slot as usize].set_timer_at(None);
        }
        Some(at)
    }

    /// Inserts or replaces a customer read back from the changelog, with its
    /// pending timer. Not marked dirty: the changelog already holds it.
    pub fn restore(&mut self, c: Customer) {
        let timer = c.timer_at();
        let slot = match self.index.get(&*c.id) {
            Some(&slot) => {
                if let Some(old) = self.customers[slot as usize].timer_at() {
                    self.timers.remove(slot, old);
                }
                self.customers[slot as usize] = c;
                slot
            }
            None => {
                let slot = u32::try_from(self.customers.len()).expect("fewer than 2^32 customers per partition");
                self.index.insert(c.id.clone(), slot);
                self.customers.push(c);
                self.dirty_mark.push(false);
                slot
            }
        };
        if let Some(at) = timer {
            self.timers.insert(slot, at, &ByCustomer(&self.customers));
        }
    }

    /// Removes a customer (a changelog tombstone), returning it. The last
    /// customer moves into its slot, so that one's index entry, timer and
    /// dirty mark follow it. Records no tombstone to write.
    pub fn remove(&mut self, id: &str) -> Option<Customer> {
        let slot = self.index.remove(id)?;
        let i = slot as usize;
        if let Some(at) = self.customers[i].timer_at() {
            self.timers.remove(slot, at);
        }
        if self.dirty_mark[i] {
            self.dirty.retain(|&s| s != slot);
        }
        let gone = self.customers.swap_remove(i);
        self.dirty_mark.swap_remove(i);
        if i < self.customers.len() {
            self.moved(self.customers.len() as u32, slot);
        }
        Some(gone)
    }

    /// Points the index, timer and dirty set at a customer's new slot.
    fn moved(&mut self, from: u32, to: u32) {
        let c = &self.customers[to as usize];
        self.index.insert(c.id.clone(), to);
        if let Some(at) = c.timer_at() {
            self.timers.moved(from, to, at);
        }
        if self.dirty_mark[to as usize] {
            self.dirty.iter_mut().filter(|s| **s == from).for_each(|s| *s = to);
        }
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Takes the dirty set (customers changed since the last call).
    pub fn take_dirty(&mut self) -> Vec<u32> {
        for &s in &self.dirty {
            self.dirty_mark[s as usize] = false;
        }
        std::mem::take(&mut self.dirty)
    }

    /// Approximate bytes held by customers, index and timers.
    pub fn approx_bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<(Arc<str>, u32)>() + 8;
        self.customers.iter().map(Customer::approx_bytes).sum::<usize>()
            + self.index.capacity() * per_entry
            + self.timers.approx_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_pop_in_deadline_order_and_reschedule_replaces() {
        let mut p = TaskState::new();
        let (a, _) = p.slot_or_insert("a", 0, 3);
        let (b, _) = p.slot_or_insert("b", 0, 3);
        let mut batch = Vec::new();
        p.schedule(a, Some(50));
        p.schedule(b, Some(20));
        p.schedule(a, Some(10)); // moves a's timer, does not add a second
        assert_eq!(p.timer_count(), 2);
        assert_eq!(p.pop_due(5, &mut batch), None);
        assert_eq!((p.pop_due(100, &mut batch), batch.clone()), (Some(10), vec![a]));
        assert_eq!((p.pop_due(100, &mut batch), batch.clone()), (Some(20), vec![b]));
        assert_eq!(p.pop_due(100, &mut batch), None);
    }

    #[test]
    fn timers_at_one_deadline_fire_in_customer_id_order_whatever_the_slots() {
        let mut p = TaskState::new();
        let slots: Vec<u32> = ["m", "z", "a"].iter().map(|id| p.slot_or_insert(id, 0, 3).0).collect();
        for &s in &slots {
            p.schedule(s, Some(7));
        }
        let mut batch = Vec::new();
        assert_eq!(p.pop_due(7, &mut batch), Some(7));
        let ids: Vec<&str> = batch.iter().map(|&s| &*p.customer(s).id).collect();
        assert_eq!(ids, ["a", "m", "z"]);
        assert_eq!(p.timer_count(), 0);
    }

    #[test]
    fn event_ids_within_the_lateness_are_kept_and_an_eviction_says_so() {
        const H: i64 = 3_600_000;
        let mut c = Customer::new("c".into(), 0, 3);
        assert_eq!(c.remember_event_id("e1", 10 * H, 9 * H), IdCheck::New);
        assert_eq!(c.remember_event_id("e1", 10 * H, 9 * H), IdCheck::Duplicate);
        for (i, id) in ["e2", "e3", "e4"].into_iter().enumerate() {
            assert_eq!(c.remember_event_id(id, 10 * H + i as i64 * 60_000, 9 * H), IdCheck::New);
        }
        // A fifth within the hour: the oldest (e1, still within it) makes room.
        assert_eq!(c.remember_event_id("e5", 10 * H + 5 * 60_000, 9 * H), IdCheck::NewEvicting);
        assert_eq!(c.remember_event_id("e1", 10 * H, 9 * H), IdCheck::NewEvicting, "e1 was dropped; e2 goes now");
        // Hours later the old ones have aged out of the lateness: no eviction.
        assert_eq!(c.remember_event_id("e6", 20 * H, 19 * H), IdCheck::New);
        assert_eq!(c.remember_event_id("e6", 20 * H, 19 * H), IdCheck::Duplicate);
        let held: Vec<u32> = c.recent_event_ids().collect();
        assert_eq!(held.len(), 4);
        assert_eq!(held.last(), c.recent_ids.iter().zip(c.id_secs).max_by_key(|(_, s)| *s).map(|(fp, _)| fp), "newest last");
    }

    #[test]
    fn restore_inserts_or_replaces_with_its_timer_and_is_not_dirty() {
        let mut p = TaskState::new();
        let mut c = Customer::new("a".into(), 5, 3);
        c.set_timer_at(Some(40));
        p.restore(c.clone());
        c.activity_events = 7;
        c.set_timer_at(Some(30));
        p.restore(c.clone());
        assert_eq!((p.len(), p.timer_count()), (1, 1));
        assert_eq!(p.get("a"), Some(&c));
        assert!(p.take_dirty().is_empty());
        let mut batch = Vec::new();
        assert_eq!(p.pop_due(100, &mut batch), Some(30));
        assert_eq!(p.customer(batch[0]).id.as_ref(), "a");
    }

    #[test]
    fn remove_moves_the_last_customer_with_its_index_timer_and_dirty_mark() {
        let mut p = TaskState::new();
        let slots: Vec<u32> = ["a", "b", "c"].iter().map(|id| p.slot_or_insert(id, 0, 3).0).collect();
        p.schedule(slots[0], Some(10));
        p.schedule(slots[2], Some(20));
        p.customer_mut(slots[0]).activity_events = 1;
        p.customer_mut(slots[2]).activity_events = 3;
        assert_eq!(p.remove("a").map(|c| c.activity_events), Some(1));
        assert_eq!(p.remove("a"), None);
        assert_eq!((p.len(), p.timer_count()), (2, 1));
        assert_eq!(p.get("c").map(|c| c.activity_events), Some(3));
        assert_eq!(p.get("b").map(|c| c.activity_events), Some(0));
        let dirty = p.take_dirty();
        let ids: Vec<&str> = dirty.iter().map(|&s| &*p.customer(s).id).collect();
        assert_eq!(ids, ["c"], "a's mark went, c's followed it");
        let mut batch = Vec::new();
        assert_eq!(p.pop_due(100, &mut batch), Some(20));
        assert_eq!(p.customer(batch[0]).id.as_ref(), "c");
        assert_eq!(p.customer(batch[0]).timer_at(), None, "the moved timer is the customer's own");
        p.remove("c");
        p.remove("b");
        assert!(p.is_empty());
    }

    #[test]
    fn dirty_set_lists_each_changed_customer_once() {
        let mut p = TaskState::new();
        let (a, _) = p.slot_or_insert("a", 0, 3);
        let (b, created) = p.slot_or_insert("b", 0, 3);
        assert!(created);
        assert_eq!(p.slot_or_insert("a", 5, 3), (a, false));
        p.customer_mut(a).activity_events += 1;
        p.customer_mut(a).activity_events += 1;
        p.customer_mut(b).activity_events += 1;
        assert_eq!(p.take_dirty(), vec![a, b]);
        assert!(p.take_dirty().is_empty());
    }
}
