//! The changelog value of one customer: compact, versioned, and readable by
//! every later binary.
//!
//! Layout (format 1), all integers LEB128 varints unless said otherwise,
//! signed ones zigzagged, and times as wrapping deltas from `first_seen_ms`
//! (small, and any i64 round-trips):
//!
//! ```text
//! u8 format | first_seen_ms | u8 presence mask | present deltas
//! activity_events | orders: count, total f64 LE, present first/last deltas
//! csat: responses, satisfied | nps: responses, promoters, detractors
//! event ids: count, u32 LE each, next u8 | u8 flags | timer delta if flagged
//! window: stored width, then if flagged: head, entries, each (back from head, kind u8, count)
//! blocks to the end: [id u8][version u8][len][payload]
//! ```
//!
//! Detector state lives in blocks ([`StateBlock`]), each defined by its
//! detector, written only when not at its default and read as the default
//! when absent, so adding a detector needs no new format.

use crate::event::Kind;
use std::sync::LazyLock;

use serde::Serialize;

use crate::detect::registry::REGISTRY;
use crate::state::{Activity, Customer, RECENT_IDS};
use crate::wire::{put_varint, put_zigzag, CodecError, Reader};

/// Version of the customer value layout this binary writes and reads.
pub const CUSTOMER_FORMAT: u8 = 1;

/// Block of the event times of the remembered event ids: the customer's
/// own, not a detector's.
const ID_TIMES: StateBlock = StateBlock { id: 5, version: 1, name: "event id times", encode: encode_id_times, decode: decode_id_times };

/// Block of the episodes the outage guard withheld: the customer's own,
/// so their `resolved` stays silent across a restart.
const WITHHELD: StateBlock = StateBlock { id: 14, version: 1, name: "withheld episodes", encode: encode_withheld, decode: decode_withheld };

/// The signal types (by index) whose open episode's `opened` the outage
/// guard withheld, kept in `Customer::detectors` under this name.
pub const WITHHELD_KEY: &str = "outage_guard";

/// The withheld episodes' signal types, a bit each (`SignalType::idx`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Withheld {
    pub types: u32,
}

fn encode_withheld(c: &Customer, out: &mut Vec<u8>) {
    if let Some(w) = c.detectors.get::<Withheld>(WITHHELD_KEY).filter(|w| w.types != 0) {
        put_varint(out, u64::from(w.types));
    }
}

fn decode_withheld(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.detectors.insert(WITHHELD_KEY, Withheld { types: p.u32("withheld types")? });
    Ok(())
}

/// Every state block this binary reads and writes, in id order (the order
/// they are written in): the customer's own and every registered
/// detector's, each defined in the detector's file next to the state it
/// holds and listed in its registry entry. Ids are never reused: a retired
/// block's id stays taken.
fn blocks() -> &'static [&'static StateBlock] {
    static BLOCKS: LazyLock<Vec<&'static StateBlock>> = LazyLock::new(|| {
        let mut all: Vec<&'static StateBlock> = [&ID_TIMES, &WITHHELD, &crate::profile::BLOCK].into_iter().chain(REGISTRY.iter().flat_map(|e| e.blocks.iter().copied())).collect();
        all.sort_by_key(|b| b.id);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "state block ids are unique");
        assert!(all.len() <= 64, "at most 64 state blocks");
        all
    });
    &BLOCKS
}

/// How one part of a customer's state is written to the changelog: a
/// block `[id u8][version u8][len][payload]` after the core section,
/// written only when not at its default and read as the default when
/// absent, so adding one needs no new format.
pub struct StateBlock {
    pub(crate) id: u8,
    /// The payload version this binary writes; it reads every one up to it.
    pub(crate) version: u8,
    pub(crate) name: &'static str,
    /// Appends the payload; nothing when the state is at its default.
    pub(crate) encode: fn(&Customer, &mut Vec<u8>),
    /// Reads a payload written at `version` (1 to [`StateBlock::version`])
    /// into the customer.
    pub(crate) decode: fn(&mut Customer, u8, &mut Reader<'_>) -> Result<(), CodecError>,
}

/// Presence mask bits: 0 `last_activity_ms`, 1–5 `last_seen_ms` by kind,
/// then these.
const MASK_ORDER_FIRST: u8 = 1 << 6;
const MASK_ORDER_LAST: u8 = 1 << 7;
/// Flags byte bits.
const FLAG_TIMER: u8 = 1;
const FLAG_HEAD: u8 = 1 << 1;

/// Buckets beyond this are corrupt: the ring's arithmetic must not overflow.
pub(crate) const MAX_BUCKET: i64 = i64::MAX / 4;

/// Appends the changelog value of `c`. The record key is the customer id,
/// so the id is not repeated here.
pub fn encode_customer(c: &Customer, out: &mut Vec<u8>) {
    out.push(CUSTOMER_FORMAT);
    put_zigzag(out, c.first_seen_ms);
    let base = c.first_seen_ms;
    let times = std::iter::once(c.last_activity_ms).chain(c.last_seen_ms);
    let mask = times.clone().enumerate().fold(0, |m, (i, t)| m | bit(t.is_some(), 1 << i))
        | bit(c.orders.first_ms.is_some(), MASK_ORDER_FIRST)
        | bit(c.orders.last_ms.is_some(), MASK_ORDER_LAST);
    out.push(mask);
    times.flatten().for_each(|t| put_zigzag(out, t.wrapping_sub(base)));
    put_varint(out, u64::from(c.activity_events));
    encode_tallies(c, out);
    encode_ids(c, out);
    let flags = bit(c.timer_at().is_some(), FLAG_TIMER) | bit(c.activity.head().is_some(), FLAG_HEAD);
    out.push(flags);
    if let Some(t) = c.timer_at() {
        put_zigzag(out, t.wrapping_sub(base));
    }
    encode_activity(&c.activity, out);
    encode_blocks(c, out);
}

fn bit(present: bool, bit: u8) -> u8 {
    if present { bit } else { 0 }
}

fn encode_tallies(c: &Customer, out: &mut Vec<u8>) {
    let o = &c.orders;
    put_varint(out, u64::from(o.count));
    out.extend_from_slice(&o.total_amount.to_le_bytes());
    for t in [o.first_ms, o.last_ms].into_iter().flatten() {
        put_zigzag(out, t.wrapping_sub(c.first_seen_ms));
    }
    for n in [c.csat.responses, c.csat.satisfied, c.nps.responses, c.nps.promoters, c.nps.detractors] {
        put_varint(out, u64::from(n));
    }
}

/// Only up to the last fingerprint held: a customer with fewer than
/// `RECENT_IDS` ids seen has zeros at the end of the ring.
fn encode_ids(c: &Customer, out: &mut Vec<u8>) {
    let held = held_ids(c);
    put_varint(out, held as u64);
    c.recent_ids[..held].iter().for_each(|fp| out.extend_from_slice(&fp.to_le_bytes()));
    out.push(c.next_id);
}

fn encode_activity(a: &Activity, out: &mut Vec<u8>) {
    put_varint(out, a.width() as u64);
    let Some(head) = a.head() else { return };
    put_zigzag(out, head);
    put_varint(out, a.nonzero().count() as u64);
    for (bucket, kind, count) in a.nonzero() {
        put_varint(out, (head - bucket) as u64);
        out.push(kind.idx() as u8);
        put_varint(out, u64::from(count));
    }
}

fn encode_blocks(c: &Customer, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    for block in blocks() {
        (block.encode)(c, &mut payload);
        if !payload.is_empty() {
            out.extend_from_slice(&[block.id, block.version]);
            put_varint(out, payload.len() as u64);
            out.append(&mut payload);
        }
    }
}

fn encode_id_times(c: &Customer, out: &mut Vec<u8>) {
    let held = held_ids(c);
    if c.id_secs[..held].iter().any(|s| *s != 0) {
        c.id_secs[..held].iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
    }
}

fn decode_id_times(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    for i in 0..held_ids(c) {
        c.id_secs[i] = p.u32_le("event id time")?;
    }
    Ok(())
}

/// Fingerprints held: they fill the ring from slot 0.
fn held_ids(c: &Customer) -> usize {
    c.recent_ids.iter().rposition(|&fp| fp != 0).map_or(0, |i| i + 1)
}

/// Decodes the changelog value of customer `id` into a window of `width`
/// buckets, the current config's. If the stored width differs, the newest
/// buckets that fit are kept.
///
/// # Errors
/// The value is truncated or corrupt, or written by a newer binary.
pub fn decode_customer(id: &str, value: &[u8], width: usize) -> Result<Customer, CodecError> {
    let mut r = Reader::new(value);
    match r.u8("format")? {
        0 => return Err(CodecError::Corrupt("customer state format 0 was never written".into())),
        CUSTOMER_FORMAT => {}
        found => return Err(CodecError::NewerFormat { what: "customer state", found, supported: CUSTOMER_FORMAT }),
    }
    let first_seen_ms = r.zigzag("first_seen_ms")?;
    let mut c = Customer::new(id.into(), first_seen_ms, width);
    let mask = r.u8("presence mask")?;
    let base = first_seen_ms;
    c.last_activity_ms = delta(mask & 1 != 0, base, &mut r)?;
    for k in 0..Kind::TRACKED {
        c.last_seen_ms[k] = delta(mask & (1 << (k + 1)) != 0, base, &mut r)?;
    }
    c.activity_events = r.u32("activity_events")?;
    c.orders.count = r.u32("orders.count")?;
    c.orders.total_amount = r.f64_le("orders.total_amount")?;
    c.orders.first_ms = delta(mask & MASK_ORDER_FIRST != 0, base, &mut r)?;
    c.orders.last_ms = delta(mask & MASK_ORDER_LAST != 0, base, &mut r)?;
    decode_surveys(&mut c, &mut r)?;
    decode_ids(&mut c, &mut r)?;
    let flags = r.u8("flags")?;
    if flags & !(FLAG_TIMER | FLAG_HEAD) != 0 {
        return Err(CodecError::Corrupt(format!("unknown flags {flags:#04x}")));
    }
    c.set_timer_at(delta(flags & FLAG_TIMER != 0, base, &mut r)?);
    decode_activity(&mut c.activity, flags & FLAG_HEAD != 0, &mut r)?;
    decode_blocks(&mut c, &mut r)?;
    Ok(c)
}

/// A time stored as a delta from `base`, if `present`.
fn delta(present: bool, base: i64, r: &mut Reader<'_>) -> Result<Option<i64>, CodecError> {
    present.then(|| r.zigzag("time delta").map(|d| base.wrapping_add(d))).transpose()
}

fn decode_surveys(c: &mut Customer, r: &mut Reader<'_>) -> Result<(), CodecError> {
    c.csat.responses = r.u32("csat.responses")?;
    c.csat.satisfied = r.u32("csat.satisfied")?;
    c.nps.responses = r.u32("nps.responses")?;
    c.nps.promoters = r.u32("nps.promoters")?;
    c.nps.detractors = r.u32("nps.detractors")?;
    Ok(())
}

fn decode_ids(c: &mut Customer, r: &mut Reader<'_>) -> Result<(), CodecError> {
    let held = r.usize("event id count")?;
    if held > RECENT_IDS {
        return Err(CodecError::Corrupt(format!("{held} event ids, at most {RECENT_IDS} are kept")));
    }
    for fp in &mut c.recent_ids[..held] {
        *fp = r.u32_le("event id")?;
    }
    c.next_id = r.u8("next event id")?;
    // `remember_event_id` indexes the ring with it.
    if usize::from(c.next_id) >= RECENT_IDS {
        return Err(CodecError::Corrupt(format!("next event id {} outside the {RECENT_IDS}-entry ring", c.next_id)));
    }
    Ok(())
}

/// Reads the window into `a`, already `width` wide: entries further back
/// from the head than that fell off the new ring.
fn decode_activity(a: &mut Activity, has_head: bool, r: &mut Reader<'_>) -> Result<(), CodecError> {
    let stored = r.varint("window width")?;
    if !has_head {
        return Ok(());
    }
    let head = r.zigzag("window head")?;
    if !(-MAX_BUCKET..=MAX_BUCKET).contains(&head) {
        return Err(CodecError::Corrupt(format!("window head bucket {head} out of range")));
    }
    a.reach(head);
    let entries = r.varint("window entry count")?;
    for _ in 0..entries {
        let back = r.varint("window entry bucket")?;
        let kind = r.u8("window entry kind")?;
        let count = r.varint("window entry count")?;
        let kind = Kind::TRACKED_ALL.get(usize::from(kind)).copied().ok_or_else(|| CodecError::Corrupt(format!("unknown kind {kind}")))?;
        let count = u16::try_from(count).map_err(|_| CodecError::Corrupt(format!("window count {count} exceeds u16")))?;
        if back >= stored {
            return Err(CodecError::Corrupt(format!("window entry {back} back from head, stored width is {stored}")));
        }
        if back < a.width() as u64 {
            a.set(head - back as i64, kind, count);
        }
    }
    Ok(())
}

fn decode_blocks(c: &mut Customer, r: &mut Reader<'_>) -> Result<(), CodecError> {
    let all = blocks();
    let mut seen = 0u64;
    let known = all.last().map_or(0, |b| b.id);
    while !r.is_empty() {
        let id = r.u8("block id")?;
        let version = r.u8("block version")?;
        let i = all.iter().position(|b| b.id == id).ok_or(CodecError::UnknownBlock { id, known })?;
        let block = all[i];
        if version > block.version {
            return Err(CodecError::NewerBlock { id, found: version, supported: block.version });
        }
        if version == 0 || seen & 1 << i != 0 {
            return Err(CodecError::Corrupt(format!("block {id}: version {version} or repeated")));
        }
        seen |= 1 << i;
        let len = r.usize("block length")?;
        let mut p = Reader::new(r.take(len, "block payload")?);
        (block.decode)(c, version, &mut p)?;
        p.finish(block.name)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
