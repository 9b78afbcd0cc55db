//! Prometheus metrics: every name defined once, labels from fixed lists.
//!
//! Labels are source names (from config), kinds, reject codes, signal types,
//! output topics and task phases: all bounded. A customer id is never a
//! label. The core counts what happened in a [`Tally`]; [`Metrics::record`]
//! adds a committed batch's tally here, so an aborted batch never counts.

use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use care_core::decode::{RejectCode, SkipReason};
use care_core::detect::registry::signal_types;
use care_core::event::Kind;
use care_core::tally::Tally;
use care_core::task::Phase;

use crate::shell::error_code::ErrorCode;

/// The registry and every metric care exports.
pub struct Metrics {
    pub registry: Registry,
    /// Per source (indexed like the engine's sources), resolved once.
    sources: Vec<SourceCounters>,
    /// Indexed like `registry::signal_types`.
    emitted: Vec<IntCounter>,
    suppressed: Vec<IntCounter>,
    /// Per guarded signal type (index into `registry::signal_types`), the
    /// openings and closings the outage guard withheld.
    withheld: Vec<(usize, IntCounter)>,
    /// Source anomaly records: the guard tripping or clearing.
    source_anomalies: IntCounter,
    /// Customers held in state, all tasks of this instance.
    pub customers: IntGauge,
    /// Timers fired (decline crossings, silence and dormancy deadlines).
    pub timers_fired: IntCounter,
    pub dedup_evictions: IntCounter,
    /// Time to decode, fold and detect one record, in the shell's measure.
    pub processing_seconds: Histogram,
    pub enforced_processing: IntCounter,
    /// Records acknowledged by Kafka, by output topic role.
    pub produced: IntCounterVec,
    /// Records Kafka failed to deliver after librdkafka's retries, by code.
    pub produce_errors: IntCounterVec,
    /// Errors the producer client reported (every broker down, a dropped
    /// connection), by code: librdkafka retries them.
    pub producer_errors: IntCounterVec,
    /// Output records sent but not yet acknowledged.
    pub inflight: IntGauge,
    /// Batches committed (a transaction, or an offset commit at least once).
    pub commits: IntCounter,
    /// Transactions aborted and rolled back.
    pub aborts: IntCounter,
    /// Commits that failed, by when (`batch`, `revoke`) and code.
    pub commit_errors: IntCounterVec,
    /// Errors the consumer reported, by code.
    pub consumer_errors: IntCounterVec,
    /// Errors reading a changelog back, by code.
    pub restore_errors: IntCounterVec,
    /// Changelog records a restoring task has still to read, per task.
    pub restore_remaining: IntGaugeVec,
    /// Customers a restoring task has read back so far, per task.
    pub restore_customers: IntGaugeVec,
    pub producers_replaced: IntCounter,
    /// Per task, the last complete month's retention counts by `figure`.
    pub retention: IntGaugeVec,
    /// Per task, customers with one purchase day or more, and two or more.
    pub buyers: IntGaugeVec,
    pub repeat_buyers: IntGaugeVec,
    /// Per task, customers in each loyalty tier.
    pub tier_customers: IntGaugeVec,
    /// Per task, customers' latest CSAT and NPS answers in the trailing
    /// window, by `figure`.
    pub satisfaction: IntGaugeVec,
    /// Input partitions currently assigned to this instance.
    pub partitions_assigned: IntGauge,
    /// Tasks of this instance by lifecycle phase.
    pub tasks: IntGaugeVec,
    /// Approximate bytes of customer state.
    pub state_bytes: IntGauge,
    /// Changelog records read back by restores.
    pub restore_records: IntCounter,
    /// Time from a task's assignment to the end of its restore.
    pub restore_seconds: Histogram,
    /// Records behind the last stable offset, per source partition, from
    /// librdkafka's statistics; and the largest of them.
    pub consumer_lag: IntGaugeVec,
    pub consumer_lag_max: IntGauge,
    /// Each task's stream time (max event time seen) and how far it is
    /// behind the wall clock.
    pub stream_time: GaugeVec,
    pub stream_time_lag: GaugeVec,
    /// Time to close a batch (changelog, offsets, commit or flush).
    pub commit_seconds: Histogram,
    /// Time to flush the producer within a batch.
    pub flush_seconds: Histogram,
}

/// Counter handles of one source.
struct SourceCounters {
    consumed: IntCounter,
    folded: [IntCounter; Kind::COUNT],
    rejected: [IntCounter; RejectCode::ALL.len()],
    late: IntCounter,
    duplicate: IntCounter,
    skipped: [IntCounter; SkipReason::ALL.len()],
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    r.register(Box::new(m.clone())).expect("metric registered once");
    m
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(r, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    register(r, IntGauge::new(name, help).expect("valid metric"))
}

/// A counter by error code (after `labels`' values, if any), shown at
/// zero for each of `codes` from the start so an alert rule has a series.
fn errors(r: &Registry, name: &str, help: &str, labels: &[(&str, &[&str])], codes: &[ErrorCode]) -> IntCounterVec {
    let names: Vec<&str> = labels.iter().map(|(n, _)| *n).chain(["code"]).collect();
    let c = counter_vec(r, name, help, &names);
    let mut prefixes: Vec<Vec<&str>> = vec![Vec::new()];
    for (_, values) in labels {
        prefixes = prefixes.iter().flat_map(|p| values.iter().map(move |v| [p.as_slice(), &[*v]].concat())).collect();
    }
    for p in &prefixes {
        for code in codes {
            c.with_label_values(&[p.as_slice(), &[code.as_str()]].concat());
        }
    }
    c
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

/// Buckets from 1 ms to about 65 s.
fn latency(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(prometheus::exponential_buckets(0.001, 2.0, 17).expect("valid buckets"))
}

impl Metrics {
    /// A fresh registry with every metric registered; `sources` names the
    /// engine's input sources in index order.
    pub fn new(sources: &[&str]) -> Metrics {
        let r = Registry::new();
        // The standard process_* metrics (CPU, memory, open files), Linux only.
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("metric registered once");
        let info = IntGaugeVec::new(Opts::new("care_build_info", "The care build: version and git commit (always 1)"), &["version", "git_sha"]).expect("valid metric");
        register(&r, info.clone()).with_label_values(&[env!("CARGO_PKG_VERSION"), env!("CARE_GIT_SHA")]).set(1);
        let buckets = prometheus::exponential_buckets(1e-7, 4.0, 12).expect("valid buckets");
        let processing = HistogramOpts::new("care_event_processing_seconds", "Decode, fold and detect time per record").buckets(buckets);
        let restore = HistogramOpts::new("care_restore_seconds", "Time to restore a task from its changelog")
            .buckets(prometheus::exponential_buckets(0.01, 4.0, 9).expect("valid buckets"));
        let consumed = counter_vec(&r, "care_events_consumed_total", "Records read from sources", &["source"]);
        let folded = counter_vec(&r, "care_events_folded_total", "Events folded into state", &["source", "kind"]);
        let rejected = counter_vec(&r, "care_events_rejected_total", "Records sent to the DLQ", &["source", "code"]);
        let late = counter_vec(&r, "care_events_late_total", "Events behind allowed lateness (lifetime totals only)", &["source"]);
        let duplicate = counter_vec(&r, "care_events_duplicate_total", "Re-sent events skipped by event_id", &["source"]);
        let skipped = counter_vec(&r, "care_events_skipped_total", "Records carrying no event for care (unknown or ignored types, tombstones)", &["source", "reason"]);
        let outputs = counter_vec(&r, "care_signals_emitted_total", "Alerts and triggers emitted", &["type"]);
        let suppressed = counter_vec(&r, "care_signals_suppressed_total", "Signals older than emit_from, not emitted", &["type"]);
        let sources = sources
            .iter()
            .map(|s| SourceCounters {
                consumed: consumed.with_label_values(&[s]),
                folded: Kind::ALL.map(|k| folded.with_label_values(&[s, k.as_str()])),
                rejected: RejectCode::ALL.map(|c| rejected.with_label_values(&[s, c.as_str()])),
                late: late.with_label_values(&[s]),
                duplicate: duplicate.with_label_values(&[s]),
                skipped: SkipReason::ALL.map(|r| skipped.with_label_values(&[s, r.as_str()])),
            })
            .collect();
        Metrics {
            sources,
            emitted: signal_types().iter().map(|t| outputs.with_label_values(&[t.as_str()])).collect(),
            suppressed: signal_types().iter().map(|t| suppressed.with_label_values(&[t.as_str()])).collect(),
            withheld: {
                let withheld = counter_vec(&r, "care_signals_withheld_total", "Openings and closings the outage guard withheld", &["type"]);
                signal_types().iter().filter(|t| t.0.outage_guarded).map(|t| (t.idx(), withheld.with_label_values(&[t.as_str()]))).collect()
            },
            source_anomalies: counter(&r, "care_source_anomalies_total", "Outage guard trips and clears (source anomaly records)"),
            customers: gauge(&r, "care_customers", "Customers held in state"),
            timers_fired: counter(&r, "care_timers_fired_total", "Per-customer timers fired"),
            dedup_evictions: counter(
                &r,
                "care_dedup_evictions_total",
                "Event-id fingerprints dropped while within the allowed lateness (a re-send of that event would be folded again)",
            ),
            processing_seconds: register(&r, Histogram::with_opts(processing).expect("valid metric")),
            enforced_processing: counter(
                &r,
                "care_enforced_processing_total",
                "Records processed while another source partition of their task was empty (caught up, idle for max_task_idle_ms)",
            ),
            produced: counter_vec(&r, "care_records_produced_total", "Output records acknowledged by Kafka", &["topic"]),
            produce_errors: errors(&r, "care_produce_errors_total", "Output and state records Kafka failed to deliver, by code", &[], &ErrorCode::KAFKA),
            producer_errors: errors(&r, "care_producer_errors_total", "Errors the producer client reported (librdkafka retries them), by code", &[], &ErrorCode::KAFKA),
            inflight: gauge(&r, "care_inflight_records", "Output records awaiting acknowledgement"),
            commits: counter(&r, "care_offset_commits_total", "Batches committed: outputs, state and offsets"),
            aborts: counter(&r, "care_transactions_aborted_total", "Transactions aborted and rolled back"),
            commit_errors: {
                let codes = [&ErrorCode::KAFKA[..], &[ErrorCode::Delivery, ErrorCode::Stuck]].concat();
                errors(&r, "care_commit_errors_total", "Batches that failed to commit, by when and code", &[("during", &["batch", "revoke"])], &codes)
            },
            consumer_errors: errors(&r, "care_consumer_errors_total", "Errors reported by the consumer, by code", &[], &ErrorCode::KAFKA),
            restore_errors: {
                let codes = [&ErrorCode::KAFKA[..], &[ErrorCode::CorruptRecord, ErrorCode::StaleRead]].concat();
                errors(&r, "care_restore_errors_total", "Errors restoring a task from its changelog, by code", &[], &codes)
            },
            restore_remaining: register(
                &r,
                IntGaugeVec::new(Opts::new("care_restore_records_remaining", "Changelog records a restoring task has still to read"), &["task"]).expect("valid metric"),
            ),
            restore_customers: register(
                &r,
                IntGaugeVec::new(Opts::new("care_restore_customers", "Customers a restoring task has read back so far"), &["task"]).expect("valid metric"),
            ),
            producers_replaced: counter(&r, "care_producers_replaced_total", "Producers replaced after a transactional call never returned"),
            retention: register(
                &r,
                IntGaugeVec::new(Opts::new("care_retention_customers", "Customers of a task counted for the last complete month's retention, by figure"), &["task", "figure"]).expect("valid metric"),
            ),
            buyers: register(&r, IntGaugeVec::new(Opts::new("care_buyers", "Customers of a task with at least one purchase day"), &["task"]).expect("valid metric")),
            repeat_buyers: register(&r, IntGaugeVec::new(Opts::new("care_repeat_buyers", "Customers of a task with two purchase days or more"), &["task"]).expect("valid metric")),
            tier_customers: register(&r, IntGaugeVec::new(Opts::new("care_tier_customers", "Customers of a task in each loyalty tier"), &["task", "tier"]).expect("valid metric")),
            satisfaction: register(
                &r,
                IntGaugeVec::new(Opts::new("care_satisfaction_customers", "Customers of a task whose latest CSAT or NPS answer is in the trailing window, by figure"), &["task", "figure"]).expect("valid metric"),
            ),
            partitions_assigned: gauge(&r, "care_partitions_assigned", "Input partitions assigned"),
            tasks: register(&r, IntGaugeVec::new(Opts::new("care_tasks", "Tasks of this instance by phase"), &["phase"]).expect("valid metric")),
            state_bytes: gauge(&r, "care_state_bytes", "Approximate bytes of customer state"),
            restore_records: counter(&r, "care_restore_records_total", "Changelog records read back by restores"),
            restore_seconds: register(&r, Histogram::with_opts(restore).expect("valid metric")),
            consumer_lag: register(
                &r,
                IntGaugeVec::new(Opts::new("care_consumer_lag", "Records not yet read, per source partition (last stable offset minus position)"), &["source", "partition"])
                    .expect("valid metric"),
            ),
            consumer_lag_max: gauge(&r, "care_consumer_lag_max", "The largest care_consumer_lag of this instance"),
            stream_time: register(
                &r,
                GaugeVec::new(Opts::new("care_stream_time_seconds", "Stream time of a task: the largest event time it has seen (Unix seconds)"), &["task"]).expect("valid metric"),
            ),
            stream_time_lag: register(
                &r,
                GaugeVec::new(Opts::new("care_stream_time_lag_seconds", "Wall clock minus a task's stream time"), &["task"]).expect("valid metric"),
            ),
            commit_seconds: register(&r, Histogram::with_opts(latency("care_commit_seconds", "Time to close a batch: changelog, offsets and the commit")).expect("valid metric")),
            flush_seconds: register(&r, Histogram::with_opts(latency("care_flush_seconds", "Time to flush the producer within a batch")).expect("valid metric")),
            registry: r,
        }
    }

    /// Adds a committed batch's tally.
    pub fn record(&self, t: &Tally) {
        for (c, s) in self.sources.iter().zip(&t.sources) {
            c.consumed.inc_by(s.consumed);
            c.late.inc_by(s.late);
            c.duplicate.inc_by(s.duplicate);
            c.folded.iter().zip(s.folded).for_each(|(c, n)| c.inc_by(n));
            c.rejected.iter().zip(s.rejected).for_each(|(c, n)| c.inc_by(n));
            c.skipped.iter().zip(s.skipped).for_each(|(c, n)| c.inc_by(n));
        }
        self.emitted.iter().zip(t.emitted).for_each(|(c, n)| c.inc_by(n));
        self.suppressed.iter().zip(t.suppressed).for_each(|(c, n)| c.inc_by(n));
        self.withheld.iter().for_each(|(i, c)| c.inc_by(t.withheld[*i]));
        self.source_anomalies.inc_by(t.anomalies);
        self.timers_fired.inc_by(t.timers_fired);
        self.dedup_evictions.inc_by(t.dedup_evictions);
    }

    /// Sets the task gauge of every phase from `count(phase)`.
    pub fn set_tasks(&self, count: impl Fn(Phase) -> usize) {
        for p in [Phase::Assigned, Phase::Restoring, Phase::Active, Phase::Revoking] {
            self.tasks.with_label_values(&[p.as_str()]).set(count(p) as i64);
        }
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_tally_shows_under_its_source_and_labels_stay_bounded() {
        let m = Metrics::new(&["web", "canonical"]);
        let mut t = Tally::new(2);
        t.sources[0].consumed = 3;
        t.sources[0].folded[Kind::Login.idx()] = 2;
        t.sources[0].rejected[RejectCode::InvalidJson.idx()] = 1;
        t.sources[0].skipped[SkipReason::Tombstone.idx()] = 1;
        t.emitted[care_core::detect::dormancy::DORMANT.idx()] = 1;
        m.record(&t);
        m.record(&t);
        let text = m.render();
        assert!(text.contains("care_events_consumed_total{source=\"web\"} 6"), "{text}");
        assert!(text.contains("care_events_folded_total{kind=\"login\",source=\"web\"} 4"), "{text}");
        assert!(text.contains("care_events_rejected_total{code=\"invalid_json\",source=\"web\"} 2"), "{text}");
        assert!(text.contains("care_signals_emitted_total{type=\"dormant\"} 2"), "{text}");
        assert!(text.contains("care_events_skipped_total{reason=\"tombstone\",source=\"web\"} 2"), "{text}");
    }
}
