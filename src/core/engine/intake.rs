//! A record's way into a task: decoded, then folded, skipped (unknown or
//! ignored type, tombstone) or dead-lettered (undecodable, misrouted), and
//! counted either way: consumed = folded + late + duplicate + skipped +
//! rejected.

use super::Engine;
use crate::decode::{DecodeError, Decoded, RejectCode, SkipReason};
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

impl Engine {
    /// Decodes and folds one record, appending what it caused to `out`.
    pub fn process(&mut self, input: &Input<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        self.process_with(input, Envelope::default(), now_wall_ms, out)
    }

    /// [`Engine::process`] for a Kafka record, whose envelope a dead letter
    /// keeps.
    pub fn process_with(&mut self, input: &Input<'_>, env: Envelope<'_>, now_wall_ms: i64, out: &mut Vec<OutputRecord>) -> Outcome {
        if env.tombstone {
            return self.skip(input, SkipReason::Tombstone, None);
        }
        match self.rules.decode(input, now_wall_ms) {
            Ok(Decoded::Event(event)) => match self.rules.misrouted(input, &event.customer_id) {
                Some(err) => self.reject_with(input, env, &err, out),
                None => self.fold(input, &event, out),
            },
            Ok(Decoded::Ignored) => self.skip(input, SkipReason::IgnoredKind, None),
            Ok(Decoded::Unknown(name)) => self.skip(input, SkipReason::UnknownKind, Some(name.as_str())),
            Err(err) => self.reject_with(input, env, &err, out),
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
