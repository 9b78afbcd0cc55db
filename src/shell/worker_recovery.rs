//! The worker's recovery: an aborted batch rolled back and read again, a
//! stuck producer replaced, tasks sent back to restore from the changelog.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use care_core::engine::Engine;
use care_core::task::Phase;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::TopicPartitionList;

use super::{Slot, Worker, MAX_ABORTS_IN_A_ROW, MAX_PRODUCER_REPLACEMENTS};
use crate::shell::consumer::ShellContext;
use crate::shell::durability::{self, retry};
use crate::shell::events;
use crate::shell::merge::monotonic_us;
use crate::shell::publish::Publisher;

impl Worker {
    /// Aborts the open transaction and puts every active task back where
    /// the last commit left it: state rolled back (in time proportional to
    /// the batch), input re-positioned at the committed offsets. Nothing of
    /// the batch was counted; it is processed again from the start.
    pub(super) fn abort(&mut self, consumer: &BaseConsumer<ShellContext>, cause: &anyhow::Error) -> anyhow::Result<()> {
        // Aborting and replacing a producer wait on Kafka: not a stall.
        let status = std::sync::Arc::clone(&self.status);
        let _wait = status.waiting("the transaction to abort");
        // First the state, all of it, with no Kafka call that could fail
        // half-way; then the transaction; then the input positions.
        let records = std::mem::take(&mut self.uncommitted);
        self.out.clear();
        let mut failure = None;
        for slot in self.tasks.values_mut().filter(|s| s.phase == Phase::Active) {
            if let Err(e) = slot.engine.rollback() {
                failure.get_or_insert(anyhow::Error::new(e).context("rolling a task back"));
            }
        }
        // A commit that never returned may have landed, and so may one cut
        // short by a fence (a new epoch completes a commit already
        // prepared): then only the changelog knows where each task stands.
        let fenced = self.publisher.fatal_error().is_some() && self.txn_outlived_its_timeout();
        let commit_unknown = self.publisher.stuck_in() == Some("commit_transaction") || fenced;
        if self.in_txn {
            if let Err(e) = self.end_failed_transaction() {
                failure.get_or_insert(e.context("aborting the transaction"));
            }
        }
        self.in_txn = false;
        if commit_unknown {
            self.restore_all(consumer);
        }
        for slot in self.tasks.values_mut().filter(|s| s.phase == Phase::Active) {
            if let Err(e) = durability::reposition(consumer, &self.topics, &slot.engine) {
                failure.get_or_insert(e);
            }
            // After the seek: a lag sample taken before it must not count.
            slot.input.reset(monotonic_us(), slot.engine.offsets());
        }
        self.aborts_in_a_row += 1;
        if failure.is_none() && self.aborts_in_a_row > MAX_ABORTS_IN_A_ROW {
            failure = Some(anyhow::anyhow!("{} transactions aborted in a row, the last because: {cause:#}", self.aborts_in_a_row));
        }
        if let Some(e) = failure {
            self.poisoned = true;
            return Err(e);
        }
        events::TransactionAborted { cause, records }.emit(&self.metrics);
        Ok(())
    }

    /// Sends every active task back to restoring from its changelog, its
    /// input paused until then.
    fn restore_all(&mut self, consumer: &BaseConsumer<ShellContext>) {
        let mut paused = TopicPartitionList::new();
        for (id, slot) in self.tasks.iter_mut().filter(|(_, s)| s.phase == Phase::Active) {
            *slot = Slot::new(Engine::new(self.rules.clone(), *id), self.topics.len(), slot.assigned);
            self.status.tasks.insert(*id, Phase::Restoring);
            for topic in &self.topics {
                paused.add_partition(topic, id.partition);
            }
        }
        if let Err(e) = consumer.pause(&paused) {
            tracing::warn!(error = %e, "Cannot pause inputs; the restore's seek still positions them");
        }
        self.update_gauges();
    }

    /// Aborts the open transaction; if the producer is stuck in a
    /// transactional call (see `shell::txn`), or failed fatally with a
    /// transaction older than its timeout (fenced by its coordinator, see
    /// `fenced_for_its_age`), replaces it instead: the new producer's
    /// `init_transactions` fences the old one and settles its transaction
    /// (aborts it, or completes a commit already under way). Any other
    /// fatal error fails the abort, and care stops.
    pub(super) fn end_failed_transaction(&mut self) -> anyhow::Result<()> {
        let outlived = self.publisher.fatal_error().is_some() && self.txn_outlived_its_timeout();
        if !self.publisher.is_stuck() && !outlived {
            match self.publisher.abort_transaction() {
                Err(e) if self.publisher.is_stuck() => tracing::warn!(error = %e, "Abort stuck too"),
                r => return r.map_err(anyhow::Error::new),
            }
        }
        let why = match self.publisher.fatal_error() {
            Some((code, reason)) if outlived && !self.publisher.is_stuck() => format!("its transaction outlived its timeout and it failed fatally ({code:?}: {reason})"),
            _ => {
                // Each stuck producer lives on in its thread: a few are
                // worth keeping the process up; more mean a restart is cheaper.
                self.producers_replaced += 1;
                if self.producers_replaced > MAX_PRODUCER_REPLACEMENTS {
                    anyhow::bail!("{MAX_PRODUCER_REPLACEMENTS} producers already replaced after transactional calls that never returned; stopping so a restart frees them");
                }
                "a transactional call never returned".to_string()
            }
        };
        let mut fresh = Publisher::new(&self.cfg, Arc::clone(&self.metrics), Arc::clone(&self.status))?;
        // Bounded too: a hung init poisons the worker, and a restart is safe.
        retry(|| fresh.init_transactions(Duration::from_secs(30))).context("initialising transactions on a new producer")?;
        events::ProducerReplaced { why: &why }.emit(&self.metrics);
        // The old producer lives on in its stuck caller thread, if ever that returns.
        self.publisher = fresh;
        Ok(())
    }
}
