//! The worker's intake: fetched records decoded into their task's merge
//! buffer, and processed in event-time order once the merge says a task is
//! ready (see [`crate::shell::merge`]).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use care_core::engine::{Input, Outcome, Prepared};
use care_core::task::{Phase, TaskId};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Statistics, TopicPartitionList};

use super::Worker;
use crate::shell::clock::wall_clock_ms;
use crate::shell::consumer::ShellContext;
use crate::shell::durability::requires_abort;
use crate::shell::events;
use crate::shell::merge::{monotonic_us, LagSample, Pending};
use crate::shell::source;

/// How often tasks are checked for a partition that has been idle long
/// enough, when `max_task_idle_ms` is set.
const IDLE_CHECK: Duration = Duration::from_millis(10);

impl Worker {
    /// Decodes a fetched record into its task's merge buffer (pausing its
    /// partition when the buffer is full), then processes what is ready.
    pub(super) fn feed(&mut self, consumer: &BaseConsumer<ShellContext>, msg: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        let Some(&source) = self.sources.get(msg.topic()) else { return Ok(()) };
        let id = TaskId::source(msg.partition());
        let Some(slot) = self.tasks.get_mut(&id).filter(|s| s.phase == Phase::Active) else {
            // Fetched before its partition was revoked or paused: its next
            // owner, or this task once restored, seeks back and reads it.
            tracing::debug!(topic = msg.topic(), partition = msg.partition(), "Record of an inactive task skipped");
            return Ok(());
        };
        self.status.kafka_answered();
        let input = Input { source, partition: msg.partition(), offset: msg.offset(), key: msg.key(), payload: msg.payload().unwrap_or_default() };
        let started = Instant::now();
        let prepared = self.rules.prepare(&input, msg.payload().is_none(), wall_clock_ms());
        // Only a dead letter needs the record itself (key, value, headers,
        // timestamp) later: only it is copied.
        let raw = matches!(prepared, Prepared::Reject(_)).then(|| msg.detach());
        let pending = Pending { offset: msg.offset(), prepared, raw, decode_time: started.elapsed() };
        slot.last_record = Instant::now();
        if slot.input.push(source, pending, monotonic_us()) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(msg.topic(), msg.partition());
            consumer.pause(&tpl).with_context(|| format!("pausing {} partition {}", msg.topic(), msg.partition()))?;
        }
        self.drain(consumer, id)
    }

    /// Processes the records of task `id` that the merge says are ready,
    /// publishes what they caused, and resumes partitions that drained.
    fn drain(&mut self, consumer: &BaseConsumer<ShellContext>, id: TaskId) -> anyhow::Result<()> {
        let Some(slot) = self.tasks.get_mut(&id).filter(|s| s.phase == Phase::Active) else { return Ok(()) };
        let now = Instant::now();
        while let Some(next) = slot.input.next(now, self.settings.max_task_idle) {
            let started = Instant::now();
            let p = next.record;
            let raw = p.raw.as_ref();
            let input = Input {
                source: next.source,
                partition: id.partition,
                offset: p.offset,
                key: raw.and_then(Message::key),
                payload: raw.and_then(Message::payload).unwrap_or_default(),
            };
            let headers = raw.and_then(source::headers);
            let env = raw.map(|m| source::envelope(m, headers.as_ref())).unwrap_or_default();
            let outcome = slot.engine.apply(&input, env, &p.prepared, &mut self.out);
            self.metrics.processing_seconds.observe((p.decode_time + started.elapsed()).as_secs_f64());
            if let Outcome::Rejected(code) = outcome {
                let reason: &dyn std::fmt::Display = match &p.prepared {
                    Prepared::Reject(e) => e,
                    _ => &"not on the partition murmur2(customer_id) gives",
                };
                let source = &self.rules.mapping(next.source).name;
                events::RecordRejected { code, source, partition: id.partition, offset: p.offset, reason }.emit(&mut self.rejected_log);
            }
            self.routing.observe(&self.cfg, next.source, outcome)?;
            if next.enforced {
                self.metrics.enforced_processing.inc();
            }
            self.uncommitted += 1;
        }
        let mut resume = TopicPartitionList::new();
        for source in slot.input.take_resumable() {
            resume.add_partition(&self.topics[source], id.partition);
        }
        if resume.count() > 0 {
            consumer.resume(&resume).context("resuming a drained partition")?;
        }
        self.publish()
    }

    /// Processes whatever became ready without a new record: a lag sample
    /// arrived, or an empty partition has been idle long enough.
    ///
    /// # Errors
    /// Kafka refused an output record for good.
    pub fn drain_all(&mut self, consumer: &BaseConsumer<ShellContext>) -> anyhow::Result<()> {
        // Runs between polls, so after every record: only a lag sample or
        // the passing of an idle time can make another task ready.
        let idle_check = !self.settings.max_task_idle.is_zero() && self.last_drain_all.elapsed() >= IDLE_CHECK;
        if !std::mem::take(&mut self.lag_observed) && !idle_check {
            return Ok(());
        }
        self.last_drain_all = Instant::now();
        let mut next = self.tasks.keys().next().copied();
        while let Some(id) = next {
            match self.drain(consumer, id) {
                Err(e) if self.exactly_once() && requires_abort(&e) => return self.abort(consumer, &e),
                r => r?,
            }
            next = self.tasks.range(id..).nth(1).map(|(id, _)| *id);
        }
        Ok(())
    }

    /// Takes librdkafka's lag figures for the merge and the lag metrics.
    pub fn observe_stats(&mut self, stats: &Statistics) {
        let now = Instant::now();
        let mut max = 0;
        self.metrics.consumer_lag.reset();
        for (topic, t) in &stats.topics {
            let Some(&source) = self.sources.get(topic) else { continue };
            for (&partition, p) in &t.partitions {
                if let Some(slot) = self.tasks.get_mut(&TaskId::source(partition)).filter(|s| s.phase == Phase::Active) {
                    let sample = LagSample { sample_us: stats.ts, position: p.app_offset, end: p.ls_offset, low: p.lo_offset, fetch_position: p.next_offset };
                    let lag = slot.input.observe_lag(source, sample, now);
                    self.lag_observed = true;
                    if let Some(lag) = lag {
                        self.metrics.consumer_lag.with_label_values(&[&self.rules.mapping(source).name, &partition.to_string()]).set(lag);
                        max = max.max(lag);
                    }
                }
            }
        }
        self.metrics.consumer_lag_max.set(max);
    }
}
