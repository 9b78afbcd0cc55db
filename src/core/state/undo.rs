//! Rolling a task back to its last commit after an aborted transaction.
//!
//! While a batch is open, the first change to a customer that existed
//! before the batch saves that customer's committed state, encoded into one
//! arena (no allocation per customer once the arena has grown). Customers
//! created in the batch are simply dropped on rollback. So undoing costs in
//! proportion to the customers the batch touched, never to all state.

use std::ops::Range;

use crate::changelog::CodecError;
use crate::state::codec::{decode_customer, encode_customer};
use crate::state::{Customer, TaskState};

/// The undo log of the open batch.
#[derive(Debug, Default)]
pub(crate) struct Undo {
    /// Customers held when the batch began; later slots are new in the batch.
    len_at_begin: usize,
    stream_time_ms: Option<i64>,
    /// (slot, bytes in `arena`) of each customer saved.
    saved: Vec<(u32, Range<usize>)>,
    arena: Vec<u8>,
}

impl Undo {
    /// Saves `c`, about to change for the first time in the batch, unless it
    /// is new in the batch.
    pub(crate) fn save(&mut self, slot: u32, c: &Customer) {
        if (slot as usize) < self.len_at_begin {
            let start = self.arena.len();
            encode_customer(c, &mut self.arena);
            self.saved.push((slot, start..self.arena.len()));
        }
    }
}

impl TaskState {
    /// Opens a batch that [`TaskState::rollback`] can undo. Undo logging
    /// stays on until [`TaskState::end_undo`].
    pub fn begin_undo(&mut self) {
        let mut u = self.undo.take().unwrap_or_default();
        u.len_at_begin = self.customers.len();
        u.stream_time_ms = self.stream_time_ms;
        u.saved.clear();
        u.arena.clear();
        self.undo = Some(u);
    }

    /// Stops undo logging (a batch committed, or exactly-once is off).
    pub fn end_undo(&mut self) {
        self.undo = None;
    }

    /// Puts the state back as it was at [`TaskState::begin_undo`]: saved
    /// customers restored (timers included), customers new in the batch
    /// dropped, stream time reset, nothing dirty. Logging goes on for the
    /// next batch.
    ///
    /// # Errors
    /// A saved customer does not decode: a bug, since this binary wrote it.
    pub fn rollback(&mut self) -> Result<(), CodecError> {
        let Some(u) = self.undo.take() else { return Ok(()) };
        // Nothing is dirty afterwards; clearing first also keeps each
        // removal below from scanning the dirty list.
        for &s in &self.dirty {
            self.dirty_mark[s as usize] = false;
        }
        self.dirty.clear();
        while self.customers.len() > u.len_at_begin {
            let id = self.customers[self.customers.len() - 1].id.clone();
            self.remove(&id);
        }
        // A customer saved twice (its dirty mark cleared mid-batch by a
        // changelog write) must end as its first, committed copy: newest first.
        for (slot, bytes) in u.saved.iter().rev() {
            let c = &self.customers[*slot as usize];
            let width = c.activity.width() as usize;
            let back = decode_customer(&c.id, &u.arena[bytes.clone()], width)?;
            self.restore(back);
        }
        self.stream_time_ms = u.stream_time_ms;
        self.undo = Some(u);
        self.begin_undo();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::event::Kind;
    use crate::state::TaskState;

    /// Applies one scripted change: (customer, bucket, timer).
    fn touch(s: &mut TaskState, id: u8, bucket: i64, timer: Option<i64>) {
        let (slot, _) = s.slot_or_insert(&format!("c{id}"), bucket * 1000, 5);
        let c = s.customer_mut(slot);
        c.activity.add(bucket, Kind::Click);
        c.activity_events += 1;
        c.dormant_since = timer;
        s.schedule(slot, timer);
        s.stream_time_ms = Some(s.stream_time_ms.unwrap_or(0).max(bucket * 1000));
    }

    fn snapshot(s: &TaskState) -> Vec<(String, crate::state::Customer)> {
        let mut v: Vec<_> = s.customers().map(|c| (c.id.to_string(), c.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    proptest! {
        /// Whatever a batch does, rollback gives back exactly the committed
        /// state: customers, timers, stream time; and nothing dirty.
        #[test]
        fn rollback_restores_the_committed_state(
            before in proptest::collection::vec((0u8..6, 0i64..30, proptest::option::of(0i64..100)), 0..30),
            batch in proptest::collection::vec((0u8..9, 0i64..40, proptest::option::of(0i64..100)), 1..30),
        ) {
            let mut s = TaskState::new();
            for (id, b, t) in before { touch(&mut s, id, b, t); }
            s.take_dirty();
            let (want, want_timers, want_time) = (snapshot(&s), s.timer_count(), s.stream_time_ms);
            s.begin_undo();
            let mut due = Vec::new();
            for (id, b, t) in batch {
                touch(&mut s, id, b, t);
                // Timers fire inside the batch too, changing customers not yet touched.
                s.pop_due(b + 40, &mut due);
            }
            s.rollback().unwrap();
            prop_assert_eq!(snapshot(&s), want);
            prop_assert_eq!(s.timer_count(), want_timers);
            prop_assert_eq!(s.stream_time_ms, want_time);
            prop_assert!(s.take_dirty().is_empty());
            let mut due = Vec::new();
            while s.pop_due(i64::MAX, &mut due).is_some() {
                for &slot in &due { prop_assert_eq!(s.customer(slot).timer_at(), None); }
            }
        }
    }

    #[test]
    fn a_customer_saved_twice_in_a_batch_rolls_back_to_its_committed_copy() {
        let mut s = TaskState::new();
        touch(&mut s, 1, 1, None);
        s.take_dirty();
        s.begin_undo();
        touch(&mut s, 1, 2, None);
        s.take_dirty(); // a changelog write mid-batch clears the dirty marks
        touch(&mut s, 1, 3, None);
        s.rollback().unwrap();
        assert_eq!(s.customers().next().unwrap().activity_events, 1);
    }

    #[test]
    fn a_second_batch_after_a_rollback_rolls_back_too_and_an_ended_log_saves_nothing() {
        let mut s = TaskState::new();
        touch(&mut s, 1, 1, None);
        s.take_dirty();
        s.begin_undo();
        touch(&mut s, 1, 2, Some(9));
        s.rollback().unwrap();
        touch(&mut s, 1, 3, None);
        touch(&mut s, 2, 3, None);
        s.rollback().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.customers().next().unwrap().activity_events, 1);
        s.end_undo();
        touch(&mut s, 1, 4, None);
        s.rollback().unwrap();
        assert_eq!(s.customers().next().unwrap().activity_events, 2, "no batch open: nothing to undo");
    }
}
