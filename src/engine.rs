//! The synchronous core: a record in, output records out.
//!
//! `Engine::process` decodes a record, advances its partition's stream time,
//! fires the timers that became due, folds the event into the customer's
//! state and runs the detectors. It never reads the wall clock (the caller
//! hands `now_wall_ms` in) and knows nothing of Kafka, so `run`, `replay`,
//! `demo`, tests and benches all drive this one type.

use std::sync::Arc;

use dashmap::DashMap;

use crate::config::Config;
use crate::decode::{self, Limits, SourceMapping};
use crate::detect::{decline, dormancy, Signal, SignalType};
use crate::event::{Event, KindSet};
use crate::metrics::{Metrics, SignalCounters, SourceCounters};
use crate::output::{Origin, OutputRecord, Renderer};
use crate::scorecard::Scorecard;
use crate::state::{Episode, PartitionState};

/// One input record as the shell hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Index of the source in the config (or of the canonical mapping).
    pub source: usize,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// What became of one record; consumed = folded + late + duplicate + rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Folded,
    Late,
    Duplicate,
    Rejected,
}

/// Bucket arithmetic in the configured timezone.
#[derive(Debug, Clone, Copy)]
pub struct Buckets {
    pub bucket_ms: i64,
    pub offset_ms: i64,
}

impl Buckets {
    /// The bucket an instant falls in.
    pub fn of(&self, ms: i64) -> i64 {
        (ms + self.offset_ms).div_euclid(self.bucket_ms)
    }

    /// The instant a bucket starts.
    pub fn start_ms(&self, bucket: i64) -> i64 {
        bucket * self.bucket_ms - self.offset_ms
    }
}

/// The engine: source mappings, detector parameters and partition states.
pub struct Engine {
    mappings: Vec<SourceMapping>,
    counters: Vec<SourceCounters>,
    signals: SignalCounters,
    metrics: Arc<Metrics>,
    limits: Limits,
    buckets: Buckets,
    lateness_ms: i64,
    activity: KindSet,
    decline: Option<decline::Params>,
    dormancy: Option<dormancy::Params>,
    width: usize,
    renderer: Renderer,
    emit_from_ms: Option<i64>,
    /// Keyed by input partition. The hot path takes one partition's entry per
    /// record; the HTTP query path reads alongside. Nothing holds an entry
    /// across an `.await`: the engine is synchronous.
    partitions: DashMap<i32, PartitionState>,
}

impl Engine {
    /// Builds an engine for a validated config. Source `i` of the config is
    /// input source `i`; one more, the canonical mapping, follows them.
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Engine {
        let mut mappings: Vec<SourceMapping> = cfg.sources.iter().map(SourceMapping::new).collect();
        mappings.push(SourceMapping::canonical());
        let counters = mappings.iter().map(|m| metrics.source(&m.name)).collect();
        let e = &cfg.engine;
        let activity = e.activity_set();
        let decline = decline::Params::new(&cfg.detect.decline, activity);
        Engine {
            counters,
            signals: metrics.signals(),
            limits: Limits { max_record_bytes: e.max_record_bytes, max_future_skew_ms: i64::from(e.max_future_skew_secs) * 1000 },
            buckets: Buckets {
                bucket_ms: i64::from(e.bucket_secs) * 1000,
                offset_ms: i64::from(e.utc_offset_secs().unwrap_or(0)) * 1000,
            },
            lateness_ms: i64::from(e.allowed_lateness_secs) * 1000,
            activity,
            width: decline.window_width(),
            decline: cfg.detect.decline.enabled.then_some(decline),
            dormancy: cfg.detect.dormancy.enabled.then(|| dormancy::Params::new(&cfg.detect.dormancy)),
            renderer: Renderer::new(cfg),
            emit_from_ms: e.emit_from.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp_millis()),
            partitions: DashMap::new(),
            mappings,
            metrics,
        }
    }

    /// Index of the canonical JSON lines mapping.
    pub fn canonical_source(&self) -> usize {
        self.mappings.len() - 1
    }

    /// The mapping of input source `i`.
    pub fn mapping(&self, i: usize) -> &SourceMapping {
        &self.mappings[i]
    }

    /// Index of the source named `name`.
    pub fn source_index(&self, name: &str) -> Option<usize> {
        self.mappings.iter().position(|m| m.name == name)
    }

    /// Signals triggered before this instant are folded but not emitted.
    pub fn set_emit_from(&mut self, ms: Option<i64>) {
        self.emit_from_ms = ms;
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Signals of type `t` emitted so far (suppressed ones not counted).
    pub fn emitted(&self, t: SignalType) -> u64 {
        self.signals.emitted[t.idx()].get()
    }

    /// Counters of input source `i`.
    pub fn counters(&self, i: usize) -> &SourceCounters {
        &self.counters[i]
    }

    /// Decodes and folds one record into `input.partition`, appending what
    /// it caused to `out`.
    pub fn process(&self, input: &Input<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        self.process_with(input, now_wall_ms, out, |_| input.partition)
    }

    /// Like [`Engine::process`], but folds into the partition the Java
    /// clients' partitioner gives the customer id among `partitions`, as a
    /// topic keyed by customer would (`replay`, `demo`).
    pub fn process_routed(&self, input: &Input<'_>, partitions: i32, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        self.process_with(input, now_wall_ms, out, |e| crate::partition::for_key(e.customer_id.as_bytes(), partitions))
    }

    fn process_with(&self, input: &Input<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>, route: impl Fn(&Event) -> i32) -> Outcome {
        let counters = &self.counters[input.source];
        counters.consumed.inc();
        let mapping = &self.mappings[input.source];
        match decode::decode(input.payload, mapping, self.limits, now_wall_ms) {
            Ok(event) => self.fold(input.source, route(&event), &event, out),
            Err(err) => {
                counters.rejected[err.code().idx()].inc();
                let origin = Origin { topic: &mapping.topic, partition: input.partition, offset: input.offset };
                out.push(self.renderer.dead_letter(origin, input.key, input.payload, &err));
                Outcome::Rejected
            }
        }
    }

    /// Folds an already decoded event (counted as consumed by the caller).
    pub fn fold(&self, source: usize, partition: i32, ev: &Event, out: &mut Vec<OutputRecord>) -> Outcome {
        let counters = &self.counters[source];
        let mut part = self.partitions.entry(partition).or_insert_with(|| PartitionState::new(partition));
        let late = part.stream_time_ms.is_some_and(|st| ev.ts_ms < st - self.lateness_ms);
        if !late && part.stream_time_ms.is_none_or(|st| ev.ts_ms > st) {
            part.stream_time_ms = Some(ev.ts_ms);
            self.fire_timers(&mut part, ev.ts_ms, out);
        }
        let (slot, created) = part.slot_or_insert(&ev.customer_id, ev.ts_ms, self.width);
        if created {
            self.metrics.customers.inc();
        }
        let c = part.customer_mut(slot);
        if ev.event_id.as_deref().is_some_and(|id| !c.remember_event_id(id)) {
            counters.duplicate.inc();
            return Outcome::Duplicate;
        }
        c.fold_lifetime(ev.kind, ev.ts_ms, ev.amount, ev.csat, ev.nps);
        if late {
            counters.late.inc();
            return Outcome::Late;
        }
        counters.folded[ev.kind.idx()].inc();
        let k = ev.kind.idx();
        c.last_seen_ms[k] = Some(c.last_seen_ms[k].map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
        c.activity.add(self.buckets.of(ev.ts_ms), ev.kind);
        let now_ms = part.stream_time_ms.unwrap_or(ev.ts_ms);
        if self.activity.contains(ev.kind) {
            let c = part.customer_mut(slot);
            if let Some(s) = dormancy::on_activity(c, ev.ts_ms) {
                self.emit(&c.id.clone(), &s, out);
            }
            c.last_activity_ms = Some(c.last_activity_ms.map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
            c.activity_events = c.activity_events.saturating_add(1);
            self.check_decline(&mut part, slot, now_ms, ev.ts_ms, out);
        }
        self.reschedule(&mut part, slot, now_ms);
        Outcome::Folded
    }

    /// Advances a partition's stream time without an event (idle advance,
    /// `replay --advance-to`), firing the timers that became due.
    pub fn advance(&self, partition: i32, to_ms: i64, out: &mut Vec<OutputRecord>) {
        let Some(mut part) = self.partitions.get_mut(&partition) else { return };
        if part.stream_time_ms.is_none_or(|st| to_ms > st) {
            part.stream_time_ms = Some(to_ms);
            self.fire_timers(&mut part, to_ms, out);
        }
    }

    /// Partitions that hold state.
    pub fn partitions(&self) -> Vec<i32> {
        let mut ps: Vec<i32> = self.partitions.iter().map(|p| *p.key()).collect();
        ps.sort_unstable();
        ps
    }

    /// Drops a partition's state (on revoke).
    pub fn drop_partition(&self, partition: i32) {
        if let Some((_, p)) = self.partitions.remove(&partition) {
            self.metrics.customers.sub(p.len() as i64);
        }
    }

    /// Customers held across partitions.
    pub fn customer_count(&self) -> usize {
        self.partitions.iter().map(|p| p.len()).sum()
    }

    /// Sum over customers of days from first seen to their partition's
    /// stream time: the denominator of alert rates.
    pub fn customer_days(&self) -> f64 {
        self.partitions
            .iter()
            .map(|p| {
                let end = p.stream_time_ms.unwrap_or(0);
                p.customers().map(|c| ((end - c.first_seen_ms).max(0) as f64 / 86_400_000.0).max(1.0)).sum::<f64>()
            })
            .sum()
    }

    /// Approximate bytes of state across partitions.
    pub fn state_bytes(&self) -> usize {
        self.partitions.iter().map(|p| p.approx_bytes()).sum()
    }

    /// The current CARE scorecard of a customer, if held here.
    pub fn scorecard(&self, id: &str) -> Option<Scorecard> {
        self.partitions.iter().find_map(|p| {
            p.get(id).map(|c| Scorecard::new(c, p.partition, p.stream_time_ms, self.buckets, self.activity, self.dormancy.as_ref()))
        })
    }

    /// Fires due timers. A timer for logical time `t` is due once stream
    /// time reaches `t + allowed_lateness`: until then an on-time event may
    /// still arrive that would have changed the decision (e.g. activity just
    /// before a dormancy deadline).
    fn fire_timers(&self, part: &mut PartitionState, now_ms: i64, out: &mut Vec<OutputRecord>) {
        while let Some((due, slot)) = part.pop_due(now_ms) {
            let at = due - self.lateness_ms;
            self.metrics.timers_fired.inc();
            if let Some(p) = &self.dormancy {
                let c = part.customer_mut(slot);
                if let Some(s) = dormancy::on_time(p, c, at) {
                    // Dormancy supersedes decline: an open decline closes silently.
                    c.decline = Episode::Normal;
                    self.emit(&c.id.clone(), &s, out);
                }
            }
            self.check_decline(part, slot, at, at, out);
            self.reschedule(part, slot, at);
        }
    }

    fn check_decline(&self, part: &mut PartitionState, slot: u32, now_ms: i64, trigger_ms: i64, out: &mut Vec<OutputRecord>) {
        let Some(p) = &self.decline else { return };
        let c = part.customer_mut(slot);
        if c.dormant_since.is_some() {
            return;
        }
        let first = self.buckets.of(c.first_seen_ms);
        if let Some(s) = decline::evaluate(p, c, first, self.buckets.of(now_ms), trigger_ms) {
            self.emit(&c.id.clone(), &s, out);
        }
    }

    /// The customer's next timer: the earlier of their dormancy deadline and,
    /// while a decline candidate, the next bucket boundary.
    fn reschedule(&self, part: &mut PartitionState, slot: u32, now_ms: i64) {
        let c = part.customer(slot);
        let dormant_at = self.dormancy.as_ref().and_then(|p| dormancy::deadline(p, c));
        let now_bucket = self.buckets.of(now_ms);
        let boundary = self
            .decline
            .as_ref()
            .filter(|p| c.dormant_since.is_none() && decline::is_candidate(p, c, now_bucket))
            .map(|_| self.buckets.start_ms(now_bucket + 1));
        let next = match (dormant_at, boundary) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        part.schedule(slot, next.map(|t| t + self.lateness_ms));
    }

    fn emit(&self, customer: &str, s: &Signal, out: &mut Vec<OutputRecord>) {
        let t = s.signal_type().idx();
        if self.emit_from_ms.is_some_and(|from| s.trigger_ms() < from) {
            self.signals.suppressed[t].inc();
            return;
        }
        self.signals.emitted[t].inc();
        out.push(self.renderer.signal(customer, s));
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
