//! The worker's restores: an assigned task reads its changelog back in
//! slices between polls, its input paused, and turns active at the end.
//! Its progress is a metric all along and a log line once it has taken
//! more than a second, so a wait for a restore always says so.

use std::time::{Duration, Instant};

use care_core::config::Delivery;
use care_core::engine::Engine;
use care_core::task::{Phase, TaskId};
use rdkafka::consumer::BaseConsumer;

use super::report::{RETENTION_FIGURES, SATISFACTION_FIGURES};
use super::Worker;
use crate::shell::consumer::ShellContext;
use crate::shell::durability::{self, Restore};
use crate::shell::error_code::ErrorCode;
use crate::shell::events;
use crate::shell::merge::monotonic_us;

/// How long restores may read per turn of the poll loop.
const RESTORE_SLICE: Duration = Duration::from_millis(100);

/// Restores of one task that may find their state behind the group's
/// committed offsets before the assignment is given up as broken.
const MAX_RESTORES: u32 = 5;

/// A restore longer than this says so in the log (its task's input waits
/// for it), then again every [`REPORT_EVERY`].
const REPORT_AFTER: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    /// Reads restoring tasks' changelogs for one slice of time; activates
    /// those that reached the end.
    ///
    /// # Errors
    /// The changelog cannot be read or holds state this binary cannot read.
    pub fn restore(&mut self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        let until = Instant::now() + RESTORE_SLICE;
        let mut restored = false;
        // Tasks made active: shown as such (/readyz) only once the gauges
        // include their state, so a reader who saw them ready sees it too.
        let mut activated = Vec::new();
        for (id, slot) in self.tasks.iter_mut().filter(|(_, s)| s.phase == Phase::Restoring) {
            let restore = match &mut slot.restore {
                Some(r) => r,
                None => {
                    let _wait = self.status.waiting("the changelog's end and the group's committed offsets (a previous owner's transaction completing)");
                    slot.restore.insert(Restore::start(consumer, &self.cfg, &self.topics, *id, &self.metrics.restore_errors)?)
                }
            };
            let left = until.saturating_duration_since(Instant::now());
            let done = restore.step(&mut slot.engine, left, &self.faults)?;
            let task = id.to_string();
            self.metrics.restore_remaining.with_label_values(&[&task]).set(restore.remaining());
            self.metrics.restore_customers.with_label_values(&[&task]).set(slot.engine.customer_count() as i64);
            if !done {
                if restore.started.elapsed() >= REPORT_AFTER && restore.reported.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
                    restore.reported = Some(Instant::now());
                    events::RestoreProgress { task: *id, records: restore.records, remaining: restore.remaining(), customers: slot.engine.customer_count(), elapsed: restore.started.elapsed() }
                        .emit();
                }
                continue;
            }
            if let Some(why) = restore.behind(&slot.engine, &self.topics) {
                // Read before the previous owner's last commit was readable.
                let attempt = restore.attempt + 1;
                self.metrics.restore_errors.with_label_values(&[ErrorCode::StaleRead.as_str()]).inc();
                if attempt > MAX_RESTORES {
                    anyhow::bail!("task {id} restored {attempt} times and is still behind: {why}");
                }
                tracing::warn!(task = %id, attempt, reason = %why, code = ErrorCode::StaleRead.as_str(), "Restored state is behind the committed offsets; restoring again");
                std::thread::sleep(Duration::from_millis(200));
                slot.engine = Engine::new(self.rules.clone(), *id);
                let mut again = Restore::start(consumer, &self.cfg, &self.topics, *id, &self.metrics.restore_errors)?;
                again.attempt = attempt;
                slot.restore = Some(again);
                continue;
            }
            let group = restore.group().to_vec();
            if slot.engine.emit_from().is_none() {
                slot.engine.set_emit_from(Some(self.settings.default_emit_from_ms));
            }
            let wait = self.status.waiting("the input partitions' offsets, to resume the restored task");
            durability::activate_input(consumer, &self.cfg, &self.topics, &mut slot.engine, &group)?;
            drop(wait);
            slot.input.reset(monotonic_us(), slot.engine.offsets());
            if self.cfg.kafka.delivery == Delivery::ExactlyOnce {
                slot.engine.begin_batch();
            }
            slot.phase = Phase::Active;
            slot.last_record = Instant::now();
            slot.summary_since = Instant::now();
            slot.catching_up = true;
            activated.push(*id);
            if let Some(r) = slot.restore.take() {
                restored = true;
                events::TaskRestored {
                    task: *id,
                    records: r.records,
                    customers: slot.engine.customer_count(),
                    stream_time_ms: slot.engine.stream_time(),
                    emit_from_ms: slot.engine.emit_from(),
                    elapsed: r.started.elapsed(),
                }
                .emit(&self.metrics);
            }
        }
        if restored {
            // State came back: its size is news now, not at the next sample.
            self.measure_state();
        }
        self.update_gauges();
        for id in activated {
            self.status.tasks.insert(id, Phase::Active);
        }
        Ok(())
    }

    /// Drops the per-task series of tasks that left this instance.
    pub(super) fn forget_tasks(&self, gone: &[TaskId]) {
        for id in gone {
            let task = id.to_string();
            let _ = self.metrics.restore_remaining.remove_label_values(&[&task]);
            let _ = self.metrics.restore_customers.remove_label_values(&[&task]);
            for figure in RETENTION_FIGURES {
                let _ = self.metrics.retention.remove_label_values(&[task.as_str(), figure]);
            }
            let _ = self.metrics.buyers.remove_label_values(&[&task]);
            let _ = self.metrics.repeat_buyers.remove_label_values(&[&task]);
            for t in care_core::detect::tiers::Tier::ALL {
                let _ = self.metrics.tier_customers.remove_label_values(&[task.as_str(), t.as_str()]);
            }
            for figure in SATISFACTION_FIGURES {
                let _ = self.metrics.satisfaction.remove_label_values(&[task.as_str(), figure]);
            }
        }
    }
}
