//! The synchronous core: a record in, output records out.
//!
//! [`Rules`] is the compiled config (source mappings, detector parameters,
//! renderer), built once and shared. An [`Engine`] is one task: it owns that
//! task's state and works on it through `&mut self`. `process` decodes a
//! record, advances the task's stream time, fires the timers that became
//! due, folds the event into the customer's state and runs the detectors; it
//! appends the output records it caused and counts what happened in its
//! [`Tally`]. It never reads the wall clock (the caller hands `now_wall_ms`
//! in) and knows nothing of Kafka, so `run`, `replay`, `demo`, tests and
//! benches all drive this one type.

use std::sync::Arc;

use crate::changelog::{Meta, META_KEY};
use crate::config::Config;
use crate::decode::{self, DecodeError, Decoded, Limits, SourceMapping};
use crate::detect::registry::{self, indexes};
use crate::detect::{ActivityEvent, Enabled, Hooks, Signal};
use crate::event::{Event, Kind, KindSet};
use crate::render::{OutputRecord, Renderer};
use crate::scorecard::{CardParams, Scorecard};
use crate::state::codec::encode_customer;
use crate::state::dump::CustomerDump;
use crate::state::{Customer, IdCheck, TaskState};
use crate::tally::Tally;
use crate::task::TaskId;
use crate::time::Buckets;

mod emit;
pub mod guard;
mod intake;
mod passes;
mod profiles;
mod routed;
pub use intake::{Envelope, Input, Outcome, Prepared};
pub use routed::Routed;

/// The compiled config every task of a process shares.
#[derive(Debug)]
pub struct Rules {
    mappings: Vec<SourceMapping>,
    limits: Limits,
    buckets: Buckets,
    lateness_ms: i64,
    activity: KindSet,
    /// The enabled detectors, in registry order, with their supersession.
    detectors: Enabled,
    card: CardParams,
    width: usize,
    renderer: Renderer,
    emit_from_ms: Option<i64>,
    /// Partitions of the source topics, when records are checked to be on
    /// the partition murmur2(customer_id) gives (`run`); `None` in `replay`
    /// and `demo`, which route by it themselves.
    routed_by_customer: Option<i32>,
    guard: guard::GuardParams,
    /// When profiles are sent; `None` with them off.
    profiles: Option<crate::profile::Params>,
}

impl Rules {
    /// Compiles a validated config. Source `i` of the config is input source
    /// `i`; one more, the canonical mapping, follows them.
    pub fn new(cfg: &Config) -> Rules {
        let mut mappings: Vec<SourceMapping> = cfg.sources.iter().map(SourceMapping::new).collect();
        mappings.push(SourceMapping::canonical());
        let e = &cfg.engine;
        let activity = e.activity_set();
        Rules {
            mappings,
            limits: Limits::new(e),
            buckets: Buckets {
                bucket_ms: i64::from(e.bucket_secs) * 1000,
                offset_ms: e.utc_offset_ms(),
            },
            lateness_ms: i64::from(e.allowed_lateness_secs) * 1000,
            activity,
            width: registry::window_width(cfg),
            detectors: registry::enabled(cfg),
            card: CardParams::new(cfg),
            renderer: Renderer::new(cfg),
            emit_from_ms: e.emit_from.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp_millis()),
            routed_by_customer: None,
            guard: guard::GuardParams { factor: e.outage_guard_factor, min_openings: e.outage_guard_min_openings, activity },
            profiles: crate::profile::Params::new(cfg),
        }
    }

    /// Checks every configured source's records against murmur2(customer
    /// id) over `partitions`: a record elsewhere is dead-lettered as
    /// `misrouted`, since folding it would start a second state for its
    /// customer on the wrong task.
    #[must_use]
    pub fn with_routing_check(mut self, partitions: i32) -> Rules {
        self.routed_by_customer = Some(partitions);
        self
    }

    /// Number of input sources, the canonical mapping included.
    pub fn source_count(&self) -> usize {
        self.mappings.len()
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

    /// Buckets of activity each customer keeps (restores size rings to it).
    pub fn window_width(&self) -> usize {
        self.width
    }

    /// `engine.emit_from` of the config, if set.
    pub fn configured_emit_from(&self) -> Option<i64> {
        self.emit_from_ms
    }

    /// Decodes a record with its source's mapping.
    ///
    /// # Errors
    /// The record is rejected; the error's code goes in DLQ headers.
    pub fn decode(&self, input: &Input<'_>, now_wall_ms: i64) -> Result<Decoded, DecodeError> {
        decode::decode(input.payload, &self.mappings[input.source], self.limits, now_wall_ms)
    }

    /// A `misrouted` error if `input` is not on the partition murmur2 gives
    /// `customer` (configured sources only, when checked).
    fn misrouted(&self, input: &Input<'_>, customer: &str) -> Option<DecodeError> {
        let n = self.routed_by_customer.filter(|_| input.source != self.canonical_source())?;
        let expected = crate::partition::for_key(customer.as_bytes(), n);
        (expected != input.partition).then_some(DecodeError::Misrouted { partition: input.partition, expected })
    }
}

/// Offsets, meta flag, `caught_up` and guard history a batch starts from.
type BatchStart = (Vec<Option<i64>>, bool, bool, Option<guard::History>);

/// One task's engine: its state, input offsets, `emit_from` and tally.
#[derive(Debug)]
pub struct Engine {
    rules: Arc<Rules>,
    id: TaskId,
    state: TaskState,
    /// Next offset to read per source (indexed like the sources), for
    /// records this task has processed.
    offsets: Vec<Option<i64>>,
    emit_from_ms: Option<i64>,
    tally: Tally,
    /// Whether stream time or offsets moved since the meta record was last
    /// written.
    meta_dirty: bool,
    /// Scratch for timers due at one deadline, reused to avoid allocating.
    due: Vec<u32>,
    /// Scratch for encoding state records and writing profiles.
    encoded: Vec<u8>,
    /// Where output records are written.
    arena: crate::render::Arena,
    /// Scratch for what the detectors decide in one moment.
    signals: Vec<Signal>,
    /// The outage guard, and what it reported not yet rendered.
    guard: guard::Guard,
    anomalies: Vec<guard::Anomaly>,
    /// Offsets, meta flag, `caught_up` and the guard's history at the
    /// start of an undoable batch (the meta record carries the history: a
    /// batch replayed after an abort must not count its events twice).
    batch_start: Option<BatchStart>,
    /// Whether stream time has reached `emit_from` (the backfill is over).
    caught_up: bool,
    /// Signals suppressed in tallies already taken.
    suppressed_taken: u64,
}

impl Engine {
    /// An empty task; `emit_from` starts as the config's.
    pub fn new(rules: Arc<Rules>, id: TaskId) -> Engine {
        let n = rules.source_count();
        Engine {
            emit_from_ms: rules.emit_from_ms,
            id,
            state: TaskState::new(),
            offsets: vec![None; n],
            tally: Tally::new(n),
            meta_dirty: false,
            due: Vec::new(),
            encoded: Vec::new(),
            arena: crate::render::Arena::default(),
            signals: Vec::new(),
            guard: guard::Guard::new(rules.guard),
            anomalies: Vec::new(),
            batch_start: None,
            caught_up: false,
            suppressed_taken: 0,
            rules,
        }
    }

    pub fn id(&self) -> TaskId {
        self.id
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Signals triggered before this instant are folded but not emitted.
    /// Remembered in the next meta record.
    pub fn set_emit_from(&mut self, ms: Option<i64>) {
        self.emit_from_ms = ms;
        self.meta_dirty = true;
        self.caught_up = self.past_emit_from();
    }

    fn past_emit_from(&self) -> bool {
        matches!((self.state.stream_time_ms, self.emit_from_ms), (Some(st), Some(from)) if st >= from)
    }

    /// The first time stream time reaches `emit_from`, puts in the tally
    /// how many messages were suppressed before it, for the shell to say
    /// once that the backfill is over, and sends every profile.
    fn check_caught_up(&mut self, out: &mut Vec<OutputRecord>) {
        if !self.caught_up && self.past_emit_from() {
            self.caught_up = true;
            self.tally.backfill_suppressed = Some(self.suppressed_taken + self.tally.suppressed.iter().sum::<u64>());
            self.send_every_profile(out);
        }
    }

    /// Pins where a source's input starts for a task that has not read it
    /// yet (a first start), so a rollback returns there, not to a moving
    /// `latest`.
    pub fn set_start_offset(&mut self, source: usize, offset: i64) {
        if let Some(o) = self.offsets.get_mut(source) {
            *o = Some(offset);
            self.meta_dirty = true;
        }
    }

    pub fn emit_from(&self) -> Option<i64> {
        self.emit_from_ms
    }

    /// Max event time seen, `None` before the first event.
    pub fn stream_time(&self) -> Option<i64> {
        self.state.stream_time_ms
    }

    /// Next offset to read per source, for records processed so far.
    pub fn offsets(&self) -> &[Option<i64>] {
        &self.offsets
    }

    /// What happened since the tally was last taken.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Takes the tally, leaving an empty one.
    pub fn take_tally(&mut self) -> Tally {
        let empty = Tally::new(self.tally.sources.len());
        self.suppressed_taken += self.tally.suppressed.iter().sum::<u64>();
        std::mem::replace(&mut self.tally, empty)
    }

    /// Folds a decoded event from `input` into this task.
    pub fn fold(&mut self, input: &Input<'_>, ev: &Event, out: &mut Vec<OutputRecord>) -> Outcome {
        self.consumed(input);
        // Copied out (all Copy) so the rules are not borrowed across `emit`.
        let (lateness_ms, width, buckets, activity) = (self.rules.lateness_ms, self.rules.width, self.rules.buckets, self.rules.activity);
        let st = self.state.stream_time_ms;
        let late = st.is_some_and(|st| ev.ts_ms < st - lateness_ms);
        if !late && st.is_none_or(|st| ev.ts_ms > st) {
            self.state.stream_time_ms = Some(ev.ts_ms);
            self.fire_timers(ev.ts_ms, out);
            self.check_caught_up(out);
        }
        let (slot, created) = self.state.slot_or_insert(&ev.customer_id, ev.ts_ms, width);
        self.tally.customers_created += u64::from(created);
        let horizon_ms = self.state.stream_time_ms.map_or(i64::MIN, |st| st - lateness_ms);
        let counts = &mut self.tally.sources[input.source];
        let c = self.state.customer_mut(slot);
        match ev.event_id.as_deref().map(|id| c.remember_event_id(id, ev.ts_ms, horizon_ms)) {
            Some(IdCheck::Duplicate) => {
                counts.duplicate += 1;
                return Outcome::Duplicate;
            }
            Some(IdCheck::NewEvicting) => self.tally.dedup_evictions += 1,
            Some(IdCheck::New) | None => {}
        }
        c.fold_lifetime(ev.kind, ev.ts_ms, ev.amount, ev.csat, ev.nps);
        if ev.csat.is_some() || ev.nps.is_some() {
            crate::profile::note_answers(c, ev.csat, ev.nps, ev.ts_ms);
        }
        if late {
            counts.late += 1;
            let ds = &self.rules.detectors;
            indexes(ds.with(Hooks::EVENTS)).for_each(|i| ds.get(i).on_late_event(c, ev));
            return Outcome::Late;
        }
        counts.folded[ev.kind.idx()] += 1;
        self.guard.event(ev.kind, ev.ts_ms, &mut self.anomalies);
        let now_ms = self.state.stream_time_ms.unwrap_or(ev.ts_ms);
        // Buckets sealed by the stream time are decided before this event
        // moves the window on.
        let at = self.moment(now_ms, ev.ts_ms, now_ms - lateness_ms);
        // Whether a profile may have changed: what the event carried, or a
        // signal decided.
        let mut touched = created || ev.kind == Kind::Order || ev.csat.is_some() || ev.nps.is_some();
        touched |= self.detect(slot, at, out, Hooks::ADVANCE, |d, c, at, s| d.advance(c, at, s));
        let c = self.state.customer_mut(slot);
        c.seen_at(ev.ts_ms);
        // A survey answer keeps no last time or bucket count (Kind::TRACKED).
        if let Some(seen) = c.last_seen_ms.get_mut(ev.kind.idx()) {
            *seen = Some(seen.map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
            c.activity.add(buckets.of(ev.ts_ms), ev.kind);
        }
        if activity.contains(ev.kind) {
            let c = self.state.customer_mut(slot);
            let previous_ms = c.last_activity_ms;
            c.last_activity_ms = Some(previous_ms.map_or(ev.ts_ms, |t| t.max(ev.ts_ms)));
            c.activity_events = c.activity_events.saturating_add(1);
            let act = ActivityEvent { ts_ms: ev.ts_ms, previous_ms };
            touched |= self.detect(slot, at, out, Hooks::ACTIVITY, |d, c, at, s| d.on_activity(c, at, act, s));
        }
        touched |= self.detect(slot, at, out, Hooks::EVENTS, |d, c, at, s| d.on_event(c, at, ev, s));
        self.profile(slot, now_ms, touched, out);
        self.reschedule(slot, now_ms, now_ms - lateness_ms);
        self.render_anomalies(out);
        Outcome::Folded
    }

    /// Renders what the outage guard reported.
    fn render_anomalies(&mut self, out: &mut Vec<OutputRecord>) {
        if self.anomalies.is_empty() {
            return;
        }
        let task = self.id.to_string();
        for a in self.anomalies.drain(..) {
            self.tally.anomalies += 1;
            out.push(self.rules.renderer.anomaly(&mut self.arena, &task, &a));
        }
    }

    /// Advances stream time without an event (idle advance,
    /// `replay --advance-to`), firing the timers that became due.
    pub fn advance(&mut self, to_ms: i64, out: &mut Vec<OutputRecord>) {
        if self.state.stream_time_ms.is_none_or(|st| to_ms > st) {
            self.state.stream_time_ms = Some(to_ms);
            self.meta_dirty = true;
            self.fire_timers(to_ms, out);
            self.check_caught_up(out);
            self.render_anomalies(out);
        }
    }

    /// Hands the changelog records of everything changed since the last
    /// call to `emit`: each changed customer (key = id, value = encoded
    /// state), then the task's meta record (stream time, `emit_from`, next
    /// input offsets by topic). Returns how many records were emitted.
    ///
    /// # Errors
    /// The first error `emit` returns; the changes are then lost from this
    /// engine, whose caller must not commit the batch.
    pub fn write_changes<E>(&mut self, mut emit: impl FnMut(&[u8], Option<&[u8]>) -> Result<(), E>) -> Result<usize, E> {
        let dirty = self.state.take_dirty();
        let mut buf = std::mem::take(&mut self.encoded);
        let mut written = 0;
        for &slot in &dirty {
            let c = self.state.customer(slot);
            buf.clear();
            encode_customer(c, &mut buf);
            emit(c.id.as_bytes(), Some(&buf))?;
            written += 1;
        }
        self.encoded = buf;
        if self.meta_dirty || written > 0 {
            emit(META_KEY, Some(&self.meta().encode()))?;
            self.meta_dirty = false;
            written += 1;
        }
        Ok(written)
    }

    /// The task's meta record as of now.
    pub fn meta(&self) -> Meta {
        let offsets = self.offsets.iter().enumerate().filter_map(|(i, o)| Some((self.rules.mappings[i].topic.clone(), (*o)?))).collect();
        Meta { stream_time_ms: self.state.stream_time_ms, emit_from_ms: self.emit_from_ms, offsets, guard: self.guard.history() }
    }

    /// Opens a batch that [`Engine::rollback`] can undo (exactly-once: a
    /// transaction that may abort).
    pub fn begin_batch(&mut self) {
        self.state.begin_undo();
        self.batch_start = Some((self.offsets.clone(), self.meta_dirty, self.caught_up, self.guard.history()));
    }

    /// Undoes everything since [`Engine::begin_batch`]: state, stream time,
    /// offsets and the tally, in time proportional to the customers the
    /// batch touched. The next batch opens at once.
    ///
    /// # Errors
    /// A saved customer does not decode (a bug).
    pub fn rollback(&mut self) -> Result<(), crate::changelog::CodecError> {
        self.state.rollback()?;
        if let Some((offsets, meta_dirty, caught_up, history)) = &self.batch_start {
            self.offsets.clone_from(offsets);
            self.meta_dirty = *meta_dirty;
            self.caught_up = *caught_up;
            self.guard.restore(history.clone());
            self.anomalies.clear();
        }
        self.tally.clear();
        self.begin_batch();
        Ok(())
    }

    /// Takes back a meta record read from the changelog. An `emit_from` set
    /// in the config wins over the remembered one. A meta without the
    /// guard's history (format 1) leaves the guard to learn the task again.
    pub fn restore_meta(&mut self, meta: &Meta) {
        self.state.stream_time_ms = meta.stream_time_ms;
        self.guard.restore(meta.guard.clone());
        self.emit_from_ms = self.rules.emit_from_ms.or(meta.emit_from_ms);
        self.caught_up = self.past_emit_from();
        for (topic, next) in &meta.offsets {
            if let Some(i) = self.rules.mappings.iter().position(|m| &m.topic == topic) {
                self.offsets[i] = Some(*next);
            }
        }
    }

    /// Takes back a customer read from the changelog, timer included.
    pub fn restore_customer(&mut self, c: Customer) {
        self.state.restore(c);
    }

    /// Drops a customer (a changelog tombstone).
    pub fn forget(&mut self, id: &str) {
        self.state.remove(id);
    }

    /// Customers held.
    pub fn customer_count(&self) -> usize {
        self.state.len()
    }

    /// Sum over customers of days from first seen to stream time: the
    /// denominator of alert rates.
    pub fn customer_days(&self) -> f64 {
        let end = self.state.stream_time_ms.unwrap_or(0);
        self.state.customers().map(|c| ((end - c.first_seen_ms).max(0) as f64 / 86_400_000.0).max(1.0)).sum()
    }

    /// Approximate bytes of state.
    pub fn state_bytes(&self) -> usize {
        self.state.approx_bytes()
    }

    /// The current CARE scorecard of a customer, if this task holds them.
    pub fn scorecard(&self, id: &str) -> Option<Scorecard> {
        self.state.get(id).map(|c| self.card_of(c))
    }

    fn card_of(&self, c: &Customer) -> Scorecard {
        let r = &self.rules;
        Scorecard::new(c, self.id.partition, self.state.stream_time_ms, &r.card, &r.detectors)
    }

    /// This task's retention and repeat-purchase counts for the last
    /// complete month before its stream time (zeros before any event);
    /// `None` with the retention detector off. Walks every customer.
    pub fn retention_figures(&self, cfg: &Config) -> Option<crate::detect::retention::Figures> {
        if !cfg.detect.retention.enabled {
            return None;
        }
        let Some(st) = self.state.stream_time_ms else { return Some(crate::detect::retention::Figures::default()) };
        Some(crate::detect::retention::figures(cfg, self.state.customers(), st))
    }

    /// Every customer's scorecard, sorted by customer id.
    pub fn scorecards(&self) -> Vec<Scorecard> {
        let mut all: Vec<Scorecard> = self.state.customers().map(|c| self.card_of(c)).collect();
        all.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
        all
    }

    /// Every customer's raw state, sorted by customer id.
    pub fn dump(&self) -> Vec<CustomerDump<'_>> {
        let mut all: Vec<CustomerDump<'_>> = self.state.customers().collect();
        all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Fires due timers in (deadline, customer id) order. A timer for
    /// logical time `t` is due once stream time reaches `t + allowed_lateness`:
    /// until then an on-time event may still arrive that would have changed
    /// the decision (e.g. activity just before a dormancy deadline).
    fn fire_timers(&mut self, now_ms: i64, out: &mut Vec<OutputRecord>) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(deadline) = self.state.pop_due(now_ms, &mut due) {
            let at = deadline - self.rules.lateness_ms;
            for &slot in &due {
                self.on_timer(slot, at, out);
            }
        }
        self.due = due;
    }

    fn on_timer(&mut self, slot: u32, at: i64, out: &mut Vec<OutputRecord>) {
        self.tally.timers_fired += 1;
        // The timer was due once stream time passed `at` by the lateness:
        // everything before `at` is in.
        let m = self.moment(at, at, at);
        // Buckets sealed up to `at` are decided before any detector's state
        // changes at `at`, so a stronger episode opening now cannot pause a
        // weaker one's decisions about the time before it.
        self.detect(slot, m, out, Hooks::ADVANCE, |d, c, at, s| d.advance(c, at, s));
        self.detect(slot, m, out, Hooks::TIMERS, |d, c, at, s| d.on_timer(c, at, s));
        self.profile(slot, at, true, out);
        self.reschedule(slot, at, at);
        self.render_anomalies(out);
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "engine_source_tests.rs"]
mod source_tests;

#[cfg(test)]
#[path = "engine_hooks_tests.rs"]
mod hooks_tests;
