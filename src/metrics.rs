//! Prometheus metrics: every name defined once, labels from fixed lists.
//!
//! Labels are source names (from config), kinds, reject codes, signal types
//! and output topics: all bounded. A customer id is never a label.
//! Hot-path counters are resolved to handles once, so counting an event is
//! an atomic add, not a label lookup.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::decode::RejectCode;
use crate::detect::SignalType;
use crate::event::Kind;

/// The registry and every metric care exports.
pub struct Metrics {
    pub registry: Registry,
    consumed: IntCounterVec,
    folded: IntCounterVec,
    rejected: IntCounterVec,
    late: IntCounterVec,
    duplicate: IntCounterVec,
    outputs: IntCounterVec,
    suppressed: IntCounterVec,
    /// Customers held in state, all partitions.
    pub customers: IntGauge,
    /// Timers fired (decline boundary checks and dormancy deadlines).
    pub timers_fired: IntCounter,
    /// Time to decode, fold and detect one record, in the shell's measure.
    pub processing_seconds: Histogram,
    /// Records acknowledged by Kafka, by output topic role.
    pub produced: IntCounterVec,
    /// Records Kafka failed to deliver after librdkafka's retries.
    pub produce_errors: IntCounter,
    /// Output records sent but not yet acknowledged.
    pub inflight: IntGauge,
    /// Offset commits after a flushed batch.
    pub commits: IntCounter,
    /// Input partitions currently assigned to this instance.
    pub partitions_assigned: IntGauge,
    /// Approximate bytes of customer state.
    pub state_bytes: IntGauge,
}

/// Per-source counter handles, resolved once.
pub struct SourceCounters {
    pub consumed: IntCounter,
    pub folded: [IntCounter; Kind::COUNT],
    pub rejected: [IntCounter; RejectCode::ALL.len()],
    pub late: IntCounter,
    pub duplicate: IntCounter,
}

/// Per-signal output handles, resolved once.
pub struct SignalCounters {
    pub emitted: [IntCounter; SignalType::ALL.len()],
    pub suppressed: [IntCounter; SignalType::ALL.len()],
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("metric registered once");
    c
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let buckets = prometheus::exponential_buckets(1e-7, 4.0, 12).expect("valid buckets");
        let processing_seconds = Histogram::with_opts(
            HistogramOpts::new("care_event_processing_seconds", "Decode, fold and detect time per record").buckets(buckets),
        )
        .expect("valid metric");
        r.register(Box::new(processing_seconds.clone())).expect("metric registered once");
        Metrics {
            consumed: counter_vec(&r, "care_events_consumed_total", "Records read from sources", &["source"]),
            folded: counter_vec(&r, "care_events_folded_total", "Events folded into state", &["source", "kind"]),
            rejected: counter_vec(&r, "care_events_rejected_total", "Records sent to the DLQ", &["source", "code"]),
            late: counter_vec(&r, "care_events_late_total", "Events behind allowed lateness (lifetime totals only)", &["source"]),
            duplicate: counter_vec(&r, "care_events_duplicate_total", "Re-sent events skipped by event_id", &["source"]),
            outputs: counter_vec(&r, "care_signals_emitted_total", "Alerts and triggers emitted", &["type"]),
            suppressed: counter_vec(&r, "care_signals_suppressed_total", "Signals older than emit_from, not emitted", &["type"]),
            customers: gauge(&r, "care_customers", "Customers held in state"),
            timers_fired: counter(&r, "care_timers_fired_total", "Per-customer timers fired"),
            processing_seconds,
            produced: counter_vec(&r, "care_records_produced_total", "Output records acknowledged by Kafka", &["topic"]),
            produce_errors: counter(&r, "care_produce_errors_total", "Output records Kafka failed to deliver"),
            inflight: gauge(&r, "care_inflight_records", "Output records awaiting acknowledgement"),
            commits: counter(&r, "care_offset_commits_total", "Offset commits"),
            partitions_assigned: gauge(&r, "care_partitions_assigned", "Input partitions assigned"),
            state_bytes: gauge(&r, "care_state_bytes", "Approximate bytes of customer state"),
            registry: r,
        }
    }

    /// Resolves the counters of one source.
    pub fn source(&self, source: &str) -> SourceCounters {
        SourceCounters {
            consumed: self.consumed.with_label_values(&[source]),
            folded: Kind::ALL.map(|k| self.folded.with_label_values(&[source, k.as_str()])),
            rejected: RejectCode::ALL.map(|c| self.rejected.with_label_values(&[source, c.as_str()])),
            late: self.late.with_label_values(&[source]),
            duplicate: self.duplicate.with_label_values(&[source]),
        }
    }

    /// Resolves the per-signal counters.
    pub fn signals(&self) -> SignalCounters {
        SignalCounters {
            emitted: SignalType::ALL.map(|t| self.outputs.with_label_values(&[t.as_str()])),
            suppressed: SignalType::ALL.map(|t| self.suppressed.with_label_values(&[t.as_str()])),
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

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl SourceCounters {
    /// consumed = folded + late + duplicate + rejected: the accounting
    /// identity, read back (tests and `--report` use it).
    pub fn totals(&self) -> (u64, u64, u64, u64, u64) {
        let folded = self.folded.iter().map(IntCounter::get).sum();
        let rejected = self.rejected.iter().map(IntCounter::get).sum();
        (self.consumed.get(), folded, self.late.get(), self.duplicate.get(), rejected)
    }
}
