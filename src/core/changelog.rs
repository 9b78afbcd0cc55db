//! Records of a task's changelog: a compacted topic holding, per customer
//! changed since the last commit, its state keyed by customer id, and one
//! meta record per task with its stream time, `emit_from`, input offsets
//! and the outage guard's history.
//!
//! Restoring reads them back with [`decode_record`]; the value layouts are
//! versioned so a newer binary reads older changelogs and an older binary
//! refuses newer ones with an error saying so, rather than guessing.

use crate::engine::guard::History;
use crate::event::MAX_CUSTOMER_ID_BYTES;
use crate::state::codec::decode_customer;
use crate::state::Customer;
use crate::wire::{put_varint, put_zigzag, Reader};
pub use crate::wire::CodecError;

/// The meta record's key. Customer ids are valid UTF-8 and a 0xFF byte never
/// occurs in UTF-8, so no customer id can collide with it.
pub const META_KEY: &[u8] = b"\xffcare.meta";

/// Version of the meta value layout this binary writes and reads: 2 adds
/// the outage guard's history. A meta without one is written as format 1,
/// which an older binary still reads.
pub const META_FORMAT: u8 = 2;

const META_STREAM_TIME: u8 = 1;
const META_EMIT_FROM: u8 = 1 << 1;
/// Format 2: the guard's history follows the offsets.
const META_GUARD: u8 = 1 << 2;

/// A task's progress, written with every commit of its changelog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub stream_time_ms: Option<i64>,
    pub emit_from_ms: Option<i64>,
    /// (source topic, next offset to read) for the task's partition. Topic
    /// names, not source indexes: the order of sources in config can change.
    pub offsets: Vec<(String, i64)>,
    /// The outage guard's per-day history, so a restored task judges at
    /// once; `None` before the task's first event and in format 1.
    pub guard: Option<History>,
}

impl Meta {
    /// The meta record's value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![if self.guard.is_some() { META_FORMAT } else { 1 }];
        let bit = |t: bool, bit: u8| if t { bit } else { 0 };
        let flags = bit(self.stream_time_ms.is_some(), META_STREAM_TIME) | bit(self.emit_from_ms.is_some(), META_EMIT_FROM) | bit(self.guard.is_some(), META_GUARD);
        out.push(flags);
        for t in [self.stream_time_ms, self.emit_from_ms].into_iter().flatten() {
            put_zigzag(&mut out, t);
        }
        put_varint(&mut out, self.offsets.len() as u64);
        for (topic, offset) in &self.offsets {
            put_varint(&mut out, topic.len() as u64);
            out.extend_from_slice(topic.as_bytes());
            put_zigzag(&mut out, *offset);
        }
        if let Some(g) = &self.guard {
            g.encode(&mut out);
        }
        out
    }

    /// Reads a meta record's value.
    ///
    /// # Errors
    /// The value is truncated or corrupt, or written by a newer binary.
    pub fn decode(value: &[u8]) -> Result<Meta, CodecError> {
        let mut r = Reader::new(value);
        let known = match r.u8("meta format")? {
            0 => return Err(CodecError::Corrupt("meta format 0 was never written".into())),
            1 => META_STREAM_TIME | META_EMIT_FROM,
            META_FORMAT => META_STREAM_TIME | META_EMIT_FROM | META_GUARD,
            found => return Err(CodecError::NewerFormat { what: "changelog meta", found, supported: META_FORMAT }),
        };
        let flags = r.u8("meta flags")?;
        if flags & !known != 0 {
            return Err(CodecError::Corrupt(format!("unknown meta flags {flags:#04x}")));
        }
        let mut time = |bit: u8, what| (flags & bit != 0).then(|| r.zigzag(what)).transpose();
        let stream_time_ms = time(META_STREAM_TIME, "stream time")?;
        let emit_from_ms = time(META_EMIT_FROM, "emit_from")?;
        let n = r.usize("offset count")?;
        // Bounded by the bytes left so a corrupt count cannot allocate much.
        let mut offsets = Vec::with_capacity(n.min(value.len()));
        for _ in 0..n {
            let len = r.usize("topic name length")?;
            let name = std::str::from_utf8(r.take(len, "topic name")?).map_err(|_| CodecError::Corrupt("topic name is not UTF-8".into()))?;
            offsets.push((name.to_owned(), r.zigzag("offset")?));
        }
        let guard = (flags & META_GUARD != 0).then(|| History::decode(&mut r)).transpose()?;
        r.finish("meta")?;
        Ok(Meta { stream_time_ms, emit_from_ms, offsets, guard })
    }
}

/// One changelog record, read back.
#[derive(Debug, Clone, PartialEq)]
// Decoded one at a time and moved straight into the state: a box would
// only cost an allocation per customer restored.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Meta(Meta),
    Customer(Customer),
    /// The customer with this id was removed.
    Tombstone(String),
}

/// Reads one changelog record; `width` is the current config's activity
/// window width. A null value is a tombstone of the customer keyed.
///
/// # Errors
/// The key is neither [`META_KEY`] nor a customer id, or the value does
/// not decode.
pub fn decode_record(key: &[u8], value: Option<&[u8]>, width: usize) -> Result<Record, CodecError> {
    if key == META_KEY {
        let value = value.ok_or_else(|| CodecError::Corrupt("meta record has a null value".into()))?;
        return Meta::decode(value).map(Record::Meta);
    }
    let id = customer_id(key)?;
    match value {
        None => Ok(Record::Tombstone(id.to_owned())),
        Some(v) => decode_customer(id, v, width).map(Record::Customer),
    }
}

fn customer_id(key: &[u8]) -> Result<&str, CodecError> {
    if key.is_empty() {
        return Err(CodecError::BadKey("is empty"));
    }
    if key.len() > MAX_CUSTOMER_ID_BYTES {
        return Err(CodecError::BadKey("is longer than a customer id can be"));
    }
    std::str::from_utf8(key).map_err(|_| CodecError::BadKey("is neither the meta key nor UTF-8"))
}

#[cfg(test)]
#[path = "changelog_tests.rs"]
mod tests;
