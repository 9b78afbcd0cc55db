//! The timer index of one task: at most one pending deadline per customer
//! (the deadline itself lives in the customer), scheduled and cancelled in
//! O(1) amortised, fired in (deadline, customer id) order.
//!
//! Deadlines fall into buckets of [`WIDTH_MS`] of stream time: a hash map
//! from bucket number to an unordered list of slots, and a min-heap of the
//! bucket numbers. Each slot knows its position in its list, so a cancel is
//! a swap-remove. When stream time reaches a bucket it is sorted once by
//! (deadline, customer id) and drained from its end; the rare timer set into
//! or cancelled from that draining bucket keeps it sorted. The index holds
//! 8 bytes per customer with a timer (a position and a list entry).
//!
//! A sorted set (the previous index) paid a tree search, a node split or
//! merge and pointer chasing on every reschedule, i.e. on nearly every
//! event, since each activity event moves the customer's dormancy deadline.

use std::cmp::{Ordering, Reverse};
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;

// Bucket numbers are small integers under our control, not attacker input:
// a multiplicative hash is enough and much cheaper than SipHash.
use rustc_hash::FxHashMap as HashMap;

/// Bucket width: an hour of stream time. Deadlines are bucket boundaries
/// (days) or dormancy deadlines spread over the horizon, so an hour keeps
/// buckets small enough to sort and few enough to step over.
pub const WIDTH_MS: i64 = 3_600_000;

const NONE: u32 = u32::MAX;

/// Where the index's ordering comes from: each slot's (deadline, customer id).
pub trait Keys {
    fn deadline(&self, slot: u32) -> i64;
    fn id(&self, slot: u32) -> &str;
}

fn cmp_slots(keys: &impl Keys, a: u32, b: u32) -> Ordering {
    keys.deadline(a).cmp(&keys.deadline(b)).then_with(|| keys.id(a).cmp(keys.id(b)))
}

/// Pending timers of one task's customers, by slot.
#[derive(Debug, Default)]
pub struct TimerIndex {
    buckets: HashMap<i64, Vec<u32>>,
    /// Numbers of the buckets in `buckets` (each once), smallest first.
    order: BinaryHeap<Reverse<i64>>,
    /// Per slot: its position in its bucket, or `NONE`.
    pos: Vec<u32>,
    /// The bucket being drained, sorted by (deadline, id) descending.
    draining: Option<i64>,
    len: usize,
}

fn bucket_of(at: i64) -> i64 {
    at.div_euclid(WIDTH_MS)
}

impl TimerIndex {
    /// Timers pending.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `slot`, whose deadline (`keys.deadline(slot)`) is `at`.
    pub fn insert(&mut self, slot: u32, at: i64, keys: &impl Keys) {
        let b = bucket_of(at);
        let list = match self.buckets.entry(b) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.order.push(Reverse(b));
                e.insert(Vec::new())
            }
        };
        if slot as usize >= self.pos.len() {
            self.pos.resize(slot as usize + 1, NONE);
        }
        if self.draining == Some(b) {
            // Descending: the first entry that sorts below `slot`.
            let i = list.partition_point(|&s| cmp_slots(keys, s, slot) == Ordering::Greater);
            list.insert(i, slot);
            renumber(&mut self.pos, list, i);
        } else {
            self.pos[slot as usize] = list.len() as u32;
            list.push(slot);
        }
        self.len += 1;
    }

    /// Removes `slot`, whose deadline was `at`.
    pub fn remove(&mut self, slot: u32, at: i64) {
        let b = bucket_of(at);
        let list = self.buckets.get_mut(&b).expect("a timer is in its deadline's bucket");
        let i = std::mem::replace(&mut self.pos[slot as usize], NONE) as usize;
        debug_assert_eq!(list[i], slot);
        if self.draining == Some(b) {
            list.remove(i);
            renumber(&mut self.pos, list, i);
        } else {
            list.swap_remove(i);
            if let Some(&moved) = list.get(i) {
                self.pos[moved as usize] = i as u32;
            }
            if list.capacity() > 64 && list.len() < list.capacity() / 4 {
                list.shrink_to(list.len() * 2);
            }
        }
        self.len -= 1;
    }

    /// The customer in slot `from` now lives in slot `to`; its deadline is `at`.
    pub fn moved(&mut self, from: u32, to: u32, at: i64) {
        let i = std::mem::replace(&mut self.pos[from as usize], NONE);
        if to as usize >= self.pos.len() {
            self.pos.resize(to as usize + 1, NONE);
        }
        self.pos[to as usize] = i;
        let list = self.buckets.get_mut(&bucket_of(at)).expect("a timer is in its deadline's bucket");
        list[i as usize] = to;
    }

    /// Takes the timers of the earliest deadline, if it is at or before
    /// `now_ms`, into `batch` in customer-id order; returns that deadline.
    pub fn pop_due(&mut self, now_ms: i64, keys: &impl Keys, batch: &mut Vec<u32>) -> Option<i64> {
        let b = self.first_bucket(now_ms)?;
        let list = self.buckets.get_mut(&b).expect("listed bucket");
        if self.draining != Some(b) {
            list.sort_unstable_by(|&x, &y| cmp_slots(keys, y, x));
            renumber(&mut self.pos, list, 0);
            self.draining = Some(b);
        }
        let at = keys.deadline(*list.last()?);
        if at > now_ms {
            return None;
        }
        batch.clear();
        while let Some(&slot) = list.last().filter(|&&s| keys.deadline(s) == at) {
            list.pop();
            self.pos[slot as usize] = NONE;
            batch.push(slot);
        }
        self.len -= batch.len();
        Some(at)
    }

    /// The earliest non-empty bucket, if it starts at or before `now_ms`;
    /// drops empty buckets on the way.
    fn first_bucket(&mut self, now_ms: i64) -> Option<i64> {
        loop {
            let &Reverse(b) = self.order.peek()?;
            if !self.buckets.get(&b).is_some_and(|l| l.is_empty()) {
                return (b.saturating_mul(WIDTH_MS) <= now_ms).then_some(b);
            }
            self.order.pop();
            self.buckets.remove(&b);
            if self.draining == Some(b) {
                self.draining = None;
            }
        }
    }

    /// Approximate bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.buckets.values().map(|l| l.capacity() * 4 + 48).sum::<usize>() + self.pos.capacity() * 4 + self.order.capacity() * 8
    }
}

/// Points `pos` at the entries of `list` from `from` on.
fn renumber(pos: &mut [u32], list: &[u32], from: usize) {
    for (i, &s) in list.iter().enumerate().skip(from) {
        pos[s as usize] = i as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Slots with ids `c<slot>` padded so id order is not slot order.
    struct Table {
        at: Vec<Option<i64>>,
        ids: Vec<String>,
    }

    impl Keys for Table {
        fn deadline(&self, slot: u32) -> i64 {
            self.at[slot as usize].expect("indexed slots have a deadline")
        }
        fn id(&self, slot: u32) -> &str {
            &self.ids[slot as usize]
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Schedule(u32, Option<i64>),
        Pop(i64),
        /// The last slot's customer moves into this slot's place (as a
        /// removed customer's slot is reused).
        Remove(u32),
    }

    fn op(slots: u32) -> impl Strategy<Value = Op> {
        // Deadlines on few distinct values and across bucket edges, so ties
        // and draining buckets are common.
        let at = prop_oneof![(0i64..4).prop_map(|h| h * WIDTH_MS), (0i64..3 * WIDTH_MS), (0i64..3 * WIDTH_MS).prop_map(|t| t - t % 60_000)];
        prop_oneof![
            4 => (0..slots, proptest::option::weighted(0.8, at)).prop_map(|(s, a)| Op::Schedule(s, a)),
            2 => (0i64..4 * WIDTH_MS).prop_map(Op::Pop),
            1 => (0..slots).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The index fires exactly what a sorted set of (deadline, id) would,
        /// in the same order, under any mix of schedules, cancels, moves and pops.
        #[test]
        fn fires_like_a_sorted_set(ops in proptest::collection::vec(op(40), 1..300)) {
            let n = 40;
            let mut t = Table { at: vec![None; n], ids: (0..n).map(|i| format!("c{:03}", (i * 37) % 101)).collect() };
            let mut live = n as u32; // slots 0..live exist
            let mut index = TimerIndex::default();
            let mut model: BTreeSet<(i64, String)> = BTreeSet::new();
            let mut batch = Vec::new();
            for op in ops {
                match op {
                    Op::Schedule(s, at) if s < live => {
                        if let Some(old) = t.at[s as usize].take() {
                            index.remove(s, old);
                            model.remove(&(old, t.ids[s as usize].clone()));
                        }
                        if let Some(at) = at {
                            t.at[s as usize] = Some(at);
                            index.insert(s, at, &t);
                            model.insert((at, t.ids[s as usize].clone()));
                        }
                    }
                    Op::Pop(now) => {
                        let got = index.pop_due(now, &t, &mut batch);
                        let want = model.first().filter(|(at, _)| *at <= now).map(|(at, _)| *at);
                        prop_assert_eq!(got, want);
                        if let Some(at) = got {
                            let ids: Vec<String> = batch.iter().map(|&s| t.ids[s as usize].clone()).collect();
                            let due: Vec<String> = model.iter().take_while(|(a, _)| *a == at).map(|(_, id)| id.clone()).collect();
                            prop_assert_eq!(&ids, &due);
                            for &s in &batch {
                                t.at[s as usize] = None;
                            }
                            model.retain(|(a, _)| *a != at);
                        }
                    }
                    Op::Remove(s) if s < live && live > 1 => {
                        // Drop slot s's customer; the last one takes its slot.
                        if let Some(old) = t.at[s as usize].take() {
                            index.remove(s, old);
                            model.remove(&(old, t.ids[s as usize].clone()));
                        }
                        let last = live - 1;
                        if s != last {
                            if let Some(at) = t.at[last as usize] {
                                index.moved(last, s, at);
                            }
                            t.at.swap(s as usize, last as usize);
                            t.ids.swap(s as usize, last as usize);
                        }
                        live -= 1;
                    }
                    _ => {}
                }
                prop_assert_eq!(index.len(), model.len());
            }
        }
    }

    #[test]
    fn equal_deadlines_fire_together_in_id_order() {
        let t = Table { at: vec![Some(5), Some(5), Some(3)], ids: vec!["b".into(), "a".into(), "z".into()] };
        let mut index = TimerIndex::default();
        for s in 0..3 {
            index.insert(s, t.at[s as usize].unwrap(), &t);
        }
        let mut batch = Vec::new();
        assert_eq!(index.pop_due(4, &t, &mut batch), Some(3));
        assert_eq!(batch, vec![2]);
        assert_eq!(index.pop_due(4, &t, &mut batch), None);
        assert_eq!(index.pop_due(5, &t, &mut batch), Some(5));
        assert_eq!(batch, vec![1, 0]);
        assert_eq!(index.len(), 0);
    }
}
