//! Internal events: one struct per notable happening, whose `emit` both
//! logs it and counts it, so logs and metrics cannot disagree (Vector's
//! pattern). Messages are short and capitalised; fields are structured.

use care_core::engine::Rules;
use care_core::tally::Tally;
use care_core::task::TaskId;
use rdkafka::error::KafkaError;

use crate::shell::error_code::ErrorCode;
use crate::shell::metrics::Metrics;

/// Task ids as `0_1 0_2`, for log fields.
fn ids(tasks: &[TaskId]) -> String {
    tasks.iter().map(TaskId::to_string).collect::<Vec<_>>().join(" ")
}

/// Tasks created for newly assigned partitions.
pub struct TasksAssigned<'a> {
    pub tasks: &'a [TaskId],
    pub partitions: usize,
}

impl TasksAssigned<'_> {
    pub fn emit(&self, m: &Metrics) {
        m.partitions_assigned.add(self.partitions as i64);
        tracing::info!(partitions = self.partitions, tasks = %ids(self.tasks), "Partitions assigned");
    }
}

/// Tasks handed over after their partitions were revoked.
pub struct TasksRevoked<'a> {
    pub tasks: &'a [TaskId],
    pub partitions: usize,
}

impl TasksRevoked<'_> {
    pub fn emit(&self, m: &Metrics) {
        m.partitions_assigned.sub(self.partitions as i64);
        tracing::info!(partitions = self.partitions, tasks = %ids(self.tasks), "Partitions revoked");
    }
}

/// A batch whose outputs were acknowledged and whose offsets were committed.
pub struct BatchCommitted {
    pub records: u64,
}

impl BatchCommitted {
    pub fn emit(&self, m: &Metrics) {
        m.commits.inc();
        tracing::debug!(records = self.records, "Batch committed");
    }
}

/// A transaction aborted and its batch rolled back, to be processed again.
pub struct TransactionAborted<'a> {
    pub cause: &'a anyhow::Error,
    pub records: u64,
}

impl TransactionAborted<'_> {
    pub fn emit(&self, m: &Metrics) {
        m.aborts.inc();
        let code = ErrorCode::of(self.cause).as_str();
        tracing::warn!(cause = %self.cause, code, records = self.records, "Transaction aborted; batch rolled back and re-read");
    }
}

/// A commit that failed: closing a batch (`batch`: the transaction is
/// aborted and the batch read again, or care stops), or on revoke
/// (`revoke`: the next owner reads the batch again).
pub struct CommitFailed<'a> {
    pub error: &'a anyhow::Error,
    pub during: &'static str,
}

impl CommitFailed<'_> {
    pub fn emit(&self, m: &Metrics) {
        let code = ErrorCode::of(self.error).as_str();
        m.commit_errors.with_label_values(&[self.during, code]).inc();
        if self.during == "revoke" {
            tracing::error!(error = %self.error, during = self.during, code, "Commit failed; the next owner re-reads the batch");
        } else {
            tracing::warn!(error = %self.error, during = self.during, code, "Commit failed");
        }
    }
}

/// An error the consumer reported while polling (librdkafka retries itself).
pub struct ConsumerError<'a> {
    pub error: &'a KafkaError,
}

impl ConsumerError<'_> {
    pub fn emit(&self, m: &Metrics) {
        let code = ErrorCode::of_kafka(self.error).as_str();
        m.consumer_errors.with_label_values(&[code]).inc();
        tracing::warn!(error = %self.error, code, "Consumer error");
    }
}

/// A rebalance librdkafka could not complete.
pub struct RebalanceFailed<'a> {
    pub error: &'a KafkaError,
}

impl RebalanceFailed<'_> {
    pub fn emit(&self) {
        tracing::error!(error = %self.error, "Rebalance failed");
    }
}

/// A task whose state came back from its changelog: what it holds, and
/// where its data stands (its input resumes from there).
pub struct TaskRestored {
    pub task: TaskId,
    pub records: u64,
    pub customers: usize,
    pub stream_time_ms: Option<i64>,
    pub emit_from_ms: Option<i64>,
    pub elapsed: std::time::Duration,
}

impl TaskRestored {
    pub fn emit(&self, m: &Metrics) {
        m.restore_records.inc_by(self.records);
        m.restore_seconds.observe(self.elapsed.as_secs_f64());
        let time = |ms: Option<i64>| ms.map(care_core::render::rfc3339).unwrap_or_else(|| "none".into());
        tracing::info!(
            task = %self.task,
            records = self.records,
            customers = self.customers,
            stream_time = %time(self.stream_time_ms),
            emit_from = %time(self.emit_from_ms),
            secs = self.elapsed.as_secs_f64(),
            "Task restored; its input resumes"
        );
    }
}

/// A restore still under way after a second: the task's input waits for it.
pub struct RestoreProgress {
    pub task: TaskId,
    pub records: u64,
    /// Changelog offsets still to read (`care_restore_records_remaining`).
    pub remaining: i64,
    pub customers: usize,
    pub elapsed: std::time::Duration,
}

impl RestoreProgress {
    pub fn emit(&self) {
        tracing::info!(
            task = %self.task,
            records = self.records,
            remaining = self.remaining,
            customers = self.customers,
            secs = self.elapsed.as_secs(),
            "Waiting for a restore: the task's input resumes once its state is back"
        );
    }
}

/// A producer stuck in a transactional call or failed fatally, replaced
/// by a new one.
pub struct ProducerReplaced<'a> {
    pub why: &'a str,
}

impl ProducerReplaced<'_> {
    pub fn emit(&self, m: &Metrics) {
        m.producers_replaced.inc();
        tracing::warn!(why = self.why, "Producer replaced, its transaction settled by the new one");
    }
}

/// A consumer that failed fatally, replaced by a new one.
pub struct ConsumerReplaced<'a> {
    pub code: rdkafka::types::RDKafkaErrorCode,
    pub reason: &'a str,
}

impl ConsumerReplaced<'_> {
    pub fn emit(&self, m: &Metrics) {
        let code = ErrorCode::of_rdkafka(self.code).as_str();
        m.consumer_errors.with_label_values(&[code]).inc();
        tracing::warn!(code, kafka_code = ?self.code, reason = self.reason, "Consumer failed fatally; dropping its tasks and joining again");
    }
}

/// Event types a source's kind map does not know, skipped: logged once per
/// source with the first few names, so an operator sees what is dropped
/// (`care_events_skipped_total{reason="unknown_kind"}` counts them all).
pub struct UnknownKinds<'a> {
    pub tally: &'a Tally,
    pub rules: &'a Rules,
}

impl UnknownKinds<'_> {
    /// Logs the sources not logged yet; `logged` remembers which were.
    pub fn emit(&self, logged: &mut Vec<bool>) {
        for source in 0..self.rules.source_count() {
            let names: Vec<&str> = self.tally.unknown_kinds.iter().filter(|(s, _)| *s == source).map(|(_, n)| n.as_str()).collect();
            if names.is_empty() || logged.get(source).copied().unwrap_or(false) {
                continue;
            }
            logged.resize(logged.len().max(source + 1), false);
            logged[source] = true;
            let skipped = self.tally.sources.get(source).map_or(0, |s| s.skipped[care_core::decode::SkipReason::UnknownKind.idx()]);
            tracing::info!(
                source = %self.rules.mapping(source).name,
                types = %names.join(", "),
                skipped_in_batch = skipped,
                "Skipping event types the kind map does not know (map them, or to `ignore`, to silence this)"
            );
        }
    }
}

/// A task's stream time reached `emit_from`: its backfill is over, and
/// what it decided before that was folded but not sent.
pub struct BackfillCaughtUp {
    pub task: TaskId,
    /// Messages suppressed until then (`care_signals_suppressed_total` counts them by type).
    pub suppressed: u64,
    pub emit_from_ms: Option<i64>,
}

impl BackfillCaughtUp {
    pub fn emit(&self) {
        let from = self.emit_from_ms.map(care_core::render::rfc3339).unwrap_or_default();
        tracing::info!(task = %self.task, suppressed = self.suppressed, emit_from = %from, "Stream time passed emit_from; messages from now on are sent");
    }
}

/// What became of one task's data since its last summary, logged every
/// minute while records flow, when the task leaves this instance and when
/// care stops: the story of the data in the log, not only in `/metrics`.
pub struct DataSummary<'a> {
    pub task: TaskId,
    /// When it is logged: every minute, caught up after its restore, revoked, stopping.
    pub why: &'static str,
    pub tally: &'a Tally,
    pub secs: u64,
    pub stream_time_ms: Option<i64>,
}

impl DataSummary<'_> {
    pub fn emit(&self) {
        let t = self.tally;
        let sum = |f: &dyn Fn(&care_core::tally::SourceTally) -> u64| t.sources.iter().map(f).sum::<u64>();
        let nonzero = |pairs: Vec<(&str, u64)>| pairs.into_iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(",");
        let rejected = nonzero(care_core::decode::RejectCode::ALL.iter().map(|c| (c.as_str(), sum(&|s| s.rejected[c.idx()]))).collect());
        let skipped = nonzero(care_core::decode::SkipReason::ALL.iter().map(|r| (r.as_str(), sum(&|s| s.skipped[r.idx()]))).collect());
        let signals = nonzero(care_core::detect::registry::signal_types().iter().map(|x| (x.as_str(), t.emitted[x.idx()])).collect());
        let suppressed = nonzero(care_core::detect::registry::signal_types().iter().map(|x| (x.as_str(), t.suppressed[x.idx()])).collect());
        let withheld = nonzero(care_core::detect::registry::signal_types().iter().map(|x| (x.as_str(), t.withheld[x.idx()])).collect());
        let stream_time = self.stream_time_ms.map(care_core::render::rfc3339).unwrap_or_else(|| "none".into());
        if t.anomalies > 0 {
            tracing::warn!(task = %self.task, records = t.anomalies, withheld = %withheld, "The outage guard tripped or cleared: see the anomalies topic");
        }
        tracing::info!(
            task = %self.task,
            why = self.why,
            secs = self.secs,
            stream_time = %stream_time,
            consumed = sum(&|s| s.consumed),
            folded = sum(&|s| s.folded_total()),
            late = sum(&|s| s.late),
            duplicate = sum(&|s| s.duplicate),
            skipped = %skipped,
            rejected = %rejected,
            signals = %signals,
            suppressed_by_emit_from = %suppressed,
            withheld_by_outage_guard = %withheld,
            "Data summary"
        );
    }
}

/// How often each dead-letter code is logged at most: every record is
/// counted (`care_events_rejected_total`), a few are shown.
const REJECTED_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A record sent to the DLQ, logged sparsely: the first of each code at
/// once, then at most one every [`REJECTED_LOG_EVERY`] with how many went
/// unlogged in between, so a flood of bad records cannot flood the log.
pub struct RecordRejected<'a> {
    pub code: care_core::decode::RejectCode,
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub reason: &'a dyn std::fmt::Display,
}

/// Per code: when one was last logged, and how many since.
#[derive(Debug, Default)]
pub struct Sparse {
    last: [Option<(std::time::Instant, u64)>; care_core::decode::RejectCode::ALL.len()],
}

impl Sparse {
    /// Whether a record of `code` rejected at `now` is logged; if so, how
    /// many of that code went unlogged since the last one that was.
    pub fn admit(&mut self, code: care_core::decode::RejectCode, now: std::time::Instant) -> Option<u64> {
        let slot = &mut self.last[code.idx()];
        if let Some((at, unlogged)) = slot {
            if now.saturating_duration_since(*at) < REJECTED_LOG_EVERY {
                *unlogged += 1;
                return None;
            }
        }
        let unlogged = slot.map_or(0, |(_, n)| n);
        *slot = Some((now, 0));
        Some(unlogged)
    }
}

impl RecordRejected<'_> {
    pub fn emit(&self, sparse: &mut Sparse) {
        let Some(unlogged) = sparse.admit(self.code, std::time::Instant::now()) else { return };
        tracing::warn!(
            code = self.code.as_str(),
            source = self.source,
            partition = self.partition,
            offset = self.offset,
            reason = %self.reason,
            unlogged_since_last = unlogged,
            "Record dead-lettered (one per code every 10 s is logged; all are counted)"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use care_core::decode::RejectCode;

    use super::Sparse;

    #[test]
    fn dead_letters_are_logged_once_per_code_every_ten_seconds_with_the_count_between() {
        let (mut s, t0) = (Sparse::default(), Instant::now());
        assert_eq!(s.admit(RejectCode::InvalidJson, t0), Some(0), "the first of a code at once");
        assert_eq!(s.admit(RejectCode::InvalidJson, t0 + Duration::from_secs(1)), None);
        assert_eq!(s.admit(RejectCode::InvalidJson, t0 + Duration::from_secs(9)), None);
        assert_eq!(s.admit(RejectCode::MissingField, t0 + Duration::from_secs(9)), Some(0), "codes are limited apart");
        assert_eq!(s.admit(RejectCode::InvalidJson, t0 + Duration::from_secs(10)), Some(2), "then one, with the two not logged");
        assert_eq!(s.admit(RejectCode::InvalidJson, t0 + Duration::from_secs(11)), None);
    }
}
