//! Event-time merge of a task's source partitions, as Kafka Streams does it
//! (KIP-695, `PartitionGroup`).
//!
//! A task holds partition *n* of every source topic. Processing records in
//! fetch order would let whichever topic is fetched first move stream time
//! and make the other's events late, so the alerts would depend on fetch
//! order. Instead each source partition keeps a small FIFO of decoded
//! records, and the task takes the record with the smallest event time
//! among the heads, but only when it is *ready*: every partition has a
//! buffered record, or is known to be caught up and has stayed empty for
//! `max_task_idle_ms`. A partition whose lag is unknown (just assigned or
//! re-positioned, or a record arrived since the last lag sample) or
//! positive is waited for without a time-out: a slow fetch must not read as
//! an empty topic.
//!
//! Lag comes from librdkafka's statistics (the application position against
//! the last stable offset, which under read_committed steps over
//! transaction markers). A sample only counts if librdkafka took it after
//! the partition's last reset or arrival, so a sample queued before a seek
//! cannot declare a re-positioned partition caught up.
//!
//! This module decides; the worker polls, decodes, folds and pauses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use care_core::engine::Prepared;
use rdkafka::message::OwnedMessage;

/// Records buffered per source partition before it is paused (Kafka
/// Streams' `buffered.records.per.partition`): bounds memory while one
/// partition waits for another.
pub const MAX_BUFFERED: usize = 1_000;
/// A paused partition resumes once its buffer is down to this.
const RESUME_AT: usize = MAX_BUFFERED / 2;

/// One fetched, decoded record waiting for its turn.
#[derive(Debug)]
pub struct Pending {
    pub offset: i64,
    pub prepared: Prepared,
    /// The record itself, kept only for a dead letter (which carries its
    /// key, value, headers and timestamp); `None` otherwise, so buffering
    /// a good record copies nothing.
    pub raw: Option<OwnedMessage>,
    /// Decoding time, reported with the fold's as processing time.
    pub decode_time: Duration,
}

impl Pending {
    /// The merge order: event time; a record without an event (a dead
    /// letter, a skipped type) has none and goes first: it changes no
    /// customer, and its partition's records behind it wait for it.
    fn order(&self) -> i64 {
        self.prepared.event_time_ms().unwrap_or(i64::MIN)
    }
}

/// What is known of a partition's lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lag {
    /// Nothing since the last reset or arrival: wait.
    Unknown,
    /// Records exist beyond what was fetched: wait.
    Behind,
    /// Fetched up to the last stable offset.
    CaughtUp,
}

#[derive(Debug)]
struct Part {
    queue: VecDeque<Pending>,
    lag: Lag,
    /// Samples librdkafka took before this (its monotonic clock, µs) are stale.
    fresh_after_us: i64,
    /// Since when it is empty and known caught up.
    idle_since: Option<Instant>,
    /// Paused because its buffer is full.
    paused: bool,
    /// The offset after the last record fetched (or where the input was
    /// positioned): the position when librdkafka has handed nothing out
    /// since the seek and so reports none.
    next_offset: i64,
}

impl Part {
    fn new(now_us: i64, next_offset: i64) -> Part {
        Part { queue: VecDeque::new(), lag: Lag::Unknown, fresh_after_us: now_us, idle_since: None, paused: false, next_offset }
    }
}

/// librdkafka's figures for one partition, from one statistics sample.
#[derive(Debug, Clone, Copy)]
pub struct LagSample {
    /// When librdkafka took it (its monotonic clock, µs).
    pub sample_us: i64,
    /// The next offset the application gets; negative when librdkafka has
    /// handed out nothing since the last seek.
    pub position: i64,
    /// The last stable offset; negative when not yet fetched.
    pub end: i64,
    /// The low watermark; negative when unknown.
    pub low: i64,
    /// The next offset librdkafka fetches.
    pub fetch_position: i64,
}

/// What [`TaskInput::next`] hands out.
#[derive(Debug)]
pub struct Next {
    pub source: usize,
    pub record: Pending,
    /// Taken while another partition was empty (caught up and idle long
    /// enough): Kafka Streams' "enforced processing".
    pub enforced: bool,
}

/// The buffered input of one task: one FIFO per source partition.
#[derive(Debug)]
pub struct TaskInput {
    parts: Vec<Part>,
}

impl TaskInput {
    pub fn new(sources: usize, now_us: i64) -> TaskInput {
        TaskInput { parts: (0..sources).map(|_| Part::new(now_us, -1)).collect() }
    }

    /// Buffers a fetched record of `source`. Returns true when its
    /// partition is now full and must be paused (the caller pauses it).
    pub fn push(&mut self, source: usize, record: Pending, now_us: i64) -> bool {
        let Some(p) = self.parts.get_mut(source) else { return false };
        p.next_offset = p.next_offset.max(record.offset + 1);
        p.queue.push_back(record);
        // The end moved at least to this record; what lies beyond it is
        // unknown until librdkafka samples again.
        p.lag = Lag::Unknown;
        p.fresh_after_us = now_us;
        p.idle_since = None;
        if p.queue.len() >= MAX_BUFFERED && !p.paused {
            p.paused = true;
            return true;
        }
        false
    }

    /// The next record to process, if the task is ready (see the module doc).
    pub fn next(&mut self, now: Instant, max_idle: Duration) -> Option<Next> {
        let mut best: Option<(usize, i64)> = None;
        let mut enforced = false;
        for (i, p) in self.parts.iter().enumerate() {
            match p.queue.front() {
                Some(head) if best.is_none_or(|(_, t)| head.order() < t) => best = Some((i, head.order())),
                Some(_) => {}
                None if p.idle_since.is_some_and(|t| now.saturating_duration_since(t) >= max_idle) => enforced = true,
                None => return None,
            }
        }
        let (source, _) = best?;
        let record = self.parts[source].queue.pop_front()?;
        Some(Next { source, record, enforced })
    }

    /// Takes a lag sample of one source partition (see [`LagSample`]).
    /// Returns the lag (records not yet fetched), when known.
    pub fn observe_lag(&mut self, source: usize, s: LagSample, now: Instant) -> Option<i64> {
        let p = self.parts.get_mut(source)?;
        let (end, sample_us) = (s.end, s.sample_us);
        let position = if s.position >= 0 {
            // librdkafka's position steps over transaction markers.
            s.position.max(p.next_offset)
        } else if p.next_offset >= 0 && s.low >= 0 && (p.next_offset < s.low || (end >= 0 && p.next_offset > end)) {
            // Positioned out of range (retention deleted it while care was
            // down): librdkafka reset the fetch position, so that is where
            // the partition stands, not where care asked for.
            s.fetch_position
        } else {
            // Nothing handed out since the seek: where care positioned it.
            p.next_offset
        };
        let lag = (end >= 0 && position >= 0).then(|| (end - position).max(0));
        if sample_us <= p.fresh_after_us {
            return lag;
        }
        p.lag = if end < 0 || position < 0 {
            Lag::Unknown
        } else if position >= end {
            Lag::CaughtUp
        } else {
            Lag::Behind
        };
        if p.lag == Lag::CaughtUp && p.queue.is_empty() {
            p.idle_since.get_or_insert(now);
        } else {
            p.idle_since = None;
        }
        lag
    }

    /// Whether every partition has been read to its end (by a fresh lag
    /// sample) and nothing fetched waits: the task is caught up.
    pub fn caught_up(&self) -> bool {
        self.parts.iter().all(|p| p.lag == Lag::CaughtUp && p.queue.is_empty())
    }

    /// Forgets every buffered record and what was known of the lag: the
    /// input was (re)positioned and will be fetched again. Partitions the
    /// merge had paused count as resumed (a seek resumes them). `starts`
    /// are the offsets each source's input was positioned at.
    pub fn reset(&mut self, now_us: i64, starts: &[Option<i64>]) {
        for (i, p) in self.parts.iter_mut().enumerate() {
            *p = Part::new(now_us, starts.get(i).copied().flatten().unwrap_or(-1));
        }
    }

    /// Sources paused for a full buffer that have drained enough to resume;
    /// marks them resumed.
    pub fn take_resumable(&mut self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter_mut().enumerate().filter_map(|(i, p)| {
            (p.paused && p.queue.len() <= RESUME_AT).then(|| {
                p.paused = false;
                i
            })
        })
    }

    /// Records buffered in all partitions.
    pub fn buffered(&self) -> usize {
        self.parts.iter().map(|p| p.queue.len()).sum()
    }
}

/// librdkafka's clock (`rd_clock()`: CLOCK_MONOTONIC in µs on Linux), so a
/// statistics sample's `ts` can be compared with when a partition was reset.
pub fn monotonic_us() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
