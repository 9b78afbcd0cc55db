//! [`Routed`]: the tasks of `replay`, `demo` and tests, fed from one
//! stream and routed by murmur2(customer id) as `run` finds them on a topic
//! keyed by customer.

use std::sync::Arc;

use super::{Engine, Envelope, Input, Outcome, Prepared, Rules};
use crate::event::Event;
use crate::render::OutputRecord;
use crate::tally::Tally;
use crate::task::TaskId;

/// Engines for `partitions` tasks fed from one stream, each record routed
/// by murmur2(customer id) as on a topic keyed by customer (`replay`,
/// `demo`, tests). Records that do not decode go to task 0.
#[derive(Debug)]
pub struct Routed {
    rules: Arc<Rules>,
    tasks: Vec<Engine>,
}

impl Routed {
    /// `partitions` empty tasks (at least one).
    pub fn new(rules: Arc<Rules>, partitions: i32) -> Routed {
        let tasks = (0..partitions.max(1)).map(|p| Engine::new(rules.clone(), TaskId::source(p))).collect();
        Routed { rules, tasks }
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The tasks, by partition.
    pub fn tasks(&self) -> &[Engine] {
        &self.tasks
    }

    pub fn tasks_mut(&mut self) -> &mut [Engine] {
        &mut self.tasks
    }

    /// Decodes a record and folds it into its customer's task.
    pub fn process(&mut self, input: &Input<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        let prepared = self.rules.prepare(input, false, now_wall_ms);
        self.dispatch(input, &prepared, out)
    }

    /// Hands a record already prepared (e.g. to order it by event time) to
    /// its customer's task; one that carries no event goes to task 0.
    pub fn dispatch(&mut self, input: &Input<'_>, prepared: &Prepared, out: &mut Vec<OutputRecord>) -> Outcome {
        let task = match prepared {
            Prepared::Event(ev) => crate::partition::for_key(ev.customer_id.as_bytes(), self.tasks.len() as i32) as usize,
            Prepared::Skip(..) | Prepared::Reject(_) => 0,
        };
        self.tasks[task].apply(input, Envelope::default(), prepared, out)
    }

    /// Folds an already decoded event into its customer's task (simulations
    /// that make events, not records).
    pub fn fold(&mut self, input: &Input<'_>, ev: &Event, out: &mut Vec<OutputRecord>) -> Outcome {
        let p = crate::partition::for_key(ev.customer_id.as_bytes(), self.tasks.len() as i32);
        self.tasks[p as usize].fold(input, ev, out)
    }

    /// Advances every task's stream time to `to_ms`, in partition order.
    pub fn advance(&mut self, to_ms: i64, out: &mut Vec<OutputRecord>) {
        for t in &mut self.tasks {
            t.advance(to_ms, out);
        }
    }

    /// Sets `emit_from` of every task.
    pub fn set_emit_from(&mut self, ms: Option<i64>) {
        self.tasks.iter_mut().for_each(|t| t.set_emit_from(ms));
    }

    /// Everything counted so far, over all tasks.
    pub fn tally(&self) -> Tally {
        let mut total = Tally::new(self.rules.source_count());
        self.tasks.iter().for_each(|t| total.add(t.tally()));
        total
    }

    pub fn customer_count(&self) -> usize {
        self.tasks.iter().map(Engine::customer_count).sum()
    }

    pub fn customer_days(&self) -> f64 {
        self.tasks.iter().map(Engine::customer_days).sum()
    }
}
