//! A record's way into a task: decoded, then folded, skipped (unknown or
//! ignored type, tombstone) or dead-lettered (undecodable, misrouted), and
//! counted either way: consumed = folded + late + duplicate + skipped +
//! rejected.

use super::{Engine, Rules};
use crate::decode::{DecodeError, Decoded, RejectCode, SkipReason, TypeName};
use crate::event::Event;
use crate::render::{Origin, OutputRecord, SourceHeaders};

/// One input record as the shell hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Index of the source in the config (or of the canonical mapping).
    pub source: usize,
    /// The record's own partition and offset (for DLQ headers and offsets).
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// What a Kafka record carries besides key and value: read only when the
/// record is skipped or dead-lettered. `replay` and `demo` have none.
#[derive(Clone, Copy, Default)]
pub struct Envelope<'a> {
    /// The value was null: a tombstone, skipped and counted.
    pub tombstone: bool,
    /// The record's timestamp (epoch ms), kept on its dead letter.
    pub timestamp_ms: Option<i64>,
    /// The record's headers, kept on its dead letter.
    pub headers: Option<&'a dyn SourceHeaders>,
}

/// What became of one record; consumed = folded + late + duplicate +
/// skipped + rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Folded,
    Late,
    Duplicate,
    Skipped(SkipReason),
    Rejected(RejectCode),
}

/// A record decoded, checked and classified, not yet applied to a task.
#[derive(Debug)]
pub enum Prepared {
    Event(Event),
    /// A tombstone, an ignored or an unknown type (named, to be logged).
    Skip(SkipReason, Option<TypeName>),
    Reject(DecodeError),
}

impl Prepared {
    /// The event time it is merged by; a record without an event has none
    /// and may go first (it changes no customer).
    pub fn event_time_ms(&self) -> Option<i64> {
        match self {
            Prepared::Event(e) => Some(e.ts_ms),
            _ => None,
        }
    }
}

impl Rules {
    /// Decodes a record and classifies it, without touching any task.
    pub fn prepare(&self, input: &Input<'_>, tombstone: bool, now_wall_ms: i64) -> Prepared {
        if tombstone {
            return Prepared::Skip(SkipReason::Tombstone, None);
        }
        match self.decode(input, now_wall_ms) {
            Ok(Decoded::Event(event)) => match self.misrouted(input, &event.customer_id) {
                Some(err) => Prepared::Reject(err),
                None => Prepared::Event(event),
            },
            Ok(Decoded::Ignored) => Prepared::Skip(SkipReason::IgnoredKind, None),
            Ok(Decoded::Unknown(name)) => Prepared::Skip(SkipReason::UnknownKind, Some(name)),
            Err(err) => Prepared::Reject(err),
        }
    }
}

impl Engine {
    /// Decodes and folds one record, appending what it caused to `out`.
    pub fn process(&mut self, input: &Input<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        self.process_with(input, Envelope::default(), now_wall_ms, out)
    }

    /// [`Engine::process`] for a Kafka record, whose envelope a dead letter
    /// keeps.
    pub fn process_with(&mut self, input: &Input<'_>, env: Envelope<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        let prepared = self.rules.prepare(input, env.tombstone, now_wall_ms);
        self.apply(input, env, &prepared, out)
    }

    /// Applies a record [`Rules::prepare`] decoded: folds, skips or
    /// dead-letters it. `run` prepares a record when it is fetched (its
    /// event time decides when it is merged in) and applies it in turn.
    pub fn apply(&mut self, input: &Input<'_>, env: Envelope<'_>, prepared: &Prepared, out: &mut Vec<OutputRecord>) -> Outcome {
        match prepared {
            Prepared::Event(event) => self.fold(input, event, out),
            Prepared::Skip(reason, name) => self.skip(input, *reason, name.as_ref().map(TypeName::as_str)),
            Prepared::Reject(err) => self.reject_with(input, env, err, out),
        }
    }

    /// Counts a record that carries no event for care; `unknown` names an
    /// unknown type, kept for the operator's log.
    pub fn skip(&mut self, input: &Input<'_>, reason: SkipReason, unknown: Option<&str>) -> Outcome {
        self.consumed(input);
        self.tally.sources[input.source].skipped[reason.idx()] += 1;
        if let Some(name) = unknown {
            self.tally.note_unknown_kind(input.source, name);
        }
        Outcome::Skipped(reason)
    }

    /// Dead-letters a record that did not decode.
    pub fn reject(&mut self, input: &Input<'_>, err: &DecodeError, out: &mut Vec<OutputRecord>) -> Outcome {
        self.reject_with(input, Envelope::default(), err, out)
    }

    fn reject_with(&mut self, input: &Input<'_>, env: Envelope<'_>, err: &DecodeError, out: &mut Vec<OutputRecord>) -> Outcome {
        self.consumed(input);
        let code = err.code();
        self.tally.sources[input.source].rejected[code.idx()] += 1;
        let topic = &self.rules.mappings[input.source].topic;
        let origin = Origin { topic, partition: input.partition, offset: input.offset, timestamp_ms: env.timestamp_ms, headers: env.headers };
        out.push(self.rules.renderer.dead_letter(origin, input.key, input.payload, err));
        Outcome::Rejected(code)
    }

    pub(super) fn consumed(&mut self, input: &Input<'_>) {
        self.tally.sources[input.source].consumed += 1;
        self.offsets[input.source] = Some(input.offset + 1);
        self.meta_dirty = true;
    }
}
