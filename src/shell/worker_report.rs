//! What the worker reports: a committed batch's tally as metrics, each
//! task's data summary in the log (every minute while records flow, when
//! a restored task has caught up with its input, when the task leaves,
//! and when care stops), and the gauges.

use std::time::{Duration, Instant};

use care_core::detect::tiers::Tier;
use care_core::task::{Phase, TaskId};

use super::{Slot, Worker};
use crate::shell::clock::wall_clock_ms;
use crate::shell::events;

/// How often the data summaries are logged while records flow.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// The `figure` label values of `care_retention_customers`.
pub(crate) const RETENTION_FIGURES: [&str; 4] = ["active_at_start", "retained", "active_at_end", "new_in_month"];

/// The `figure` label values of `care_satisfaction_customers`.
pub(crate) const SATISFACTION_FIGURES: [&str; 5] = ["csat_answered", "csat_satisfied", "nps_answered", "nps_promoters", "nps_detractors"];

impl Worker {
    /// Reports a committed batch and opens the next.
    pub(super) fn batch_committed(&mut self) {
        let eos = self.exactly_once();
        for (id, slot) in self.tasks.iter_mut().filter(|(_, s)| s.phase == Phase::Active) {
            let tally = slot.engine.take_tally();
            self.metrics.record(&tally);
            slot.summary.add(&tally);
            events::UnknownKinds { tally: &tally, rules: &self.rules }.emit(&mut self.unknown_logged);
            if let Some(suppressed) = tally.backfill_suppressed {
                events::BackfillCaughtUp { task: *id, suppressed, emit_from_ms: slot.engine.emit_from() }.emit();
            }
            if eos {
                slot.engine.begin_batch();
            }
        }
        self.status.kafka_answered();
        events::BatchCommitted { records: self.uncommitted }.emit(&self.metrics);
        if self.last_summary.elapsed() >= SUMMARY_INTERVAL {
            self.log_summary("every minute");
        }
        self.uncommitted = 0;
        self.aborts_in_a_row = 0;
        self.update_gauges();
    }

    /// Logs the summary of each restored task that has just caught up with
    /// its input (everything it processed is committed by now).
    pub(super) fn report_caught_up(&mut self) {
        for (id, slot) in self.tasks.iter_mut().filter(|(_, s)| s.catching_up && s.phase == Phase::Active && s.input.caught_up()) {
            slot.catching_up = false;
            Self::log_task_summary(*id, slot, "caught up after its restore");
        }
    }

    /// Logs what the data did in each task since its last summary, for
    /// the tasks where anything happened.
    pub fn log_summary(&mut self, why: &'static str) {
        for (id, slot) in &mut self.tasks {
            Self::log_task_summary(*id, slot, why);
        }
        self.last_summary = Instant::now();
    }

    /// Logs one task's summary, if anything happened since its last.
    pub(super) fn log_task_summary(id: TaskId, slot: &mut Slot, why: &'static str) {
        if !slot.summary.is_empty() {
            events::DataSummary { task: id, why, tally: &slot.summary, secs: slot.summary_since.elapsed().as_secs(), stream_time_ms: slot.engine.stream_time() }.emit();
            slot.summary.clear();
        }
        slot.summary_since = Instant::now();
    }

    /// Recomputes the state-size gauge and each task's retention and
    /// repeat-purchase counts (walks every customer).
    pub fn measure_state(&self) {
        self.metrics.state_bytes.set(self.tasks.values().map(|s| s.engine.state_bytes()).sum::<usize>() as i64);
        for (id, slot) in self.tasks.iter().filter(|(_, s)| s.phase == Phase::Active) {
            let Some(f) = slot.engine.retention_figures(&self.cfg) else { continue };
            let task = id.to_string();
            let counts = [f.active_at_start, f.retained, f.active_at_end, f.new_in_month];
            for (figure, n) in RETENTION_FIGURES.iter().zip(counts) {
                self.metrics.retention.with_label_values(&[task.as_str(), figure]).set(n as i64);
            }
            self.metrics.buyers.with_label_values(&[&task]).set(f.buyers as i64);
            self.metrics.repeat_buyers.with_label_values(&[&task]).set(f.repeat_buyers as i64);
            for (t, n) in Tier::ALL.iter().zip(f.tiers) {
                self.metrics.tier_customers.with_label_values(&[task.as_str(), t.as_str()]).set(n as i64);
            }
            let s = f.satisfaction;
            let counts = [s.csat_answered, s.csat_satisfied, s.nps_answered, s.nps_promoters, s.nps_detractors];
            for (figure, n) in SATISFACTION_FIGURES.iter().zip(counts) {
                self.metrics.satisfaction.with_label_values(&[task.as_str(), figure]).set(n as i64);
            }
        }
    }

    pub(super) fn update_gauges(&self) {
        self.metrics.customers.set(self.tasks.values().map(|s| s.engine.customer_count()).sum::<usize>() as i64);
        let now_secs = wall_clock_ms() as f64 / 1000.0;
        self.metrics.stream_time.reset();
        self.metrics.stream_time_lag.reset();
        for (id, slot) in self.tasks.iter().filter(|(_, s)| s.phase == Phase::Active) {
            if let Some(st) = slot.engine.stream_time() {
                let task = id.to_string();
                self.metrics.stream_time.with_label_values(&[&task]).set(st as f64 / 1000.0);
                self.metrics.stream_time_lag.with_label_values(&[&task]).set(now_secs - st as f64 / 1000.0);
            }
        }
        self.metrics.set_tasks(|p| self.status.tasks.iter().filter(|e| *e.value() == p).count());
    }
}
