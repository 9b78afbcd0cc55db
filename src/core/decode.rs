//! Pure decoding: a source record's bytes and its source mapping in, a
//! canonical [`Event`] or a [`DecodeError`] with a bounded code out.
//!
//! No I/O and no clock: the caller passes `now_ms` for the future-skew check,
//! so `run`, `replay`, `demo` and tests decode alike.
//!
//! Ambiguous input, decided once here:
//! - a record of a type the kind map does not know is [`Decoded::Unknown`]
//!   (skipped and counted) unless its source says `unknown_kinds = "dlq"`;
//!   one mapped to `ignore` is [`Decoded::Ignored`]. The type is read
//!   before any other field, so an anonymous `scroll` is skipped, not
//!   dead-lettered for its missing customer id;
//! - canonical kind names match in any letter case (`Order` is an order);
//!   kind map keys match exactly, being the source's own vocabulary;
//! - an object naming a key twice is rejected (`duplicate_key`): readers
//!   differ on which one wins;
//! - a leading UTF-8 byte-order mark is ignored (some producers write one);
//! - integer customer ids are kept as decimal text, so `42` and `"42"` are
//!   one customer; other numbers are `wrong_type`;
//! - control characters (NUL included) in a customer id are rejected: it
//!   becomes a Kafka key and a `ce_subject` header.

use std::collections::HashMap;

use serde_json::Value;

use crate::config::{EngineConfig, SourceConfig, TimestampFormat, UnknownKinds};
use crate::event::{Event, Kind, MAX_CUSTOMER_ID_BYTES};

/// Why a record was rejected: the code is what DLQ headers and metric labels
/// carry; the message is for humans.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {len} bytes, more than max_record_bytes {max}")]
    Oversized { len: usize, max: usize },
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    #[error("not valid JSON: {0}")]
    DuplicateKey(String),
    #[error("top-level JSON value is not an object")]
    NotAnObject,
    #[error("required field `{0}` is missing or null")]
    MissingField(&'static str),
    #[error("field `{field}` should be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("customer_id {0}")]
    InvalidCustomerId(&'static str),
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    #[error("amount must be a number from 0 to engine.max_amount")]
    InvalidAmount,
    #[error("csat must be an integer from 1 to 5")]
    InvalidCsat,
    #[error("nps must be an integer from 0 to 10")]
    InvalidNps,
    #[error("event time is {ahead_secs} s ahead of the wall clock (max_future_skew_secs {max_secs})")]
    FutureTimestamp { ahead_secs: i64, max_secs: u32 },
    #[error("record is on partition {partition} but murmur2(customer_id) gives partition {expected}: its producer does not partition by murmur2 of the customer id")]
    Misrouted { partition: i32, expected: i32 },
}

/// The bounded set of rejection codes, for metric labels and DLQ headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    Oversized,
    InvalidJson,
    NotAnObject,
    MissingField,
    WrongType,
    InvalidCustomerId,
    InvalidTimestamp,
    UnknownKind,
    InvalidAmount,
    InvalidCsat,
    InvalidNps,
    FutureTimestamp,
    DuplicateKey,
    Misrouted,
}

impl RejectCode {
    /// Every code, in index order.
    pub const ALL: [RejectCode; 14] = [
        RejectCode::Oversized,
        RejectCode::InvalidJson,
        RejectCode::NotAnObject,
        RejectCode::MissingField,
        RejectCode::WrongType,
        RejectCode::InvalidCustomerId,
        RejectCode::InvalidTimestamp,
        RejectCode::UnknownKind,
        RejectCode::InvalidAmount,
        RejectCode::InvalidCsat,
        RejectCode::InvalidNps,
        RejectCode::FutureTimestamp,
        RejectCode::DuplicateKey,
        RejectCode::Misrouted,
    ];

    /// The code as written in the `care_error_code` header and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Oversized => "oversized",
            RejectCode::InvalidJson => "invalid_json",
            RejectCode::NotAnObject => "not_an_object",
            RejectCode::MissingField => "missing_field",
            RejectCode::WrongType => "wrong_type",
            RejectCode::InvalidCustomerId => "invalid_customer_id",
            RejectCode::InvalidTimestamp => "invalid_timestamp",
            RejectCode::UnknownKind => "unknown_kind",
            RejectCode::InvalidAmount => "invalid_amount",
            RejectCode::InvalidCsat => "invalid_csat",
            RejectCode::InvalidNps => "invalid_nps",
            RejectCode::FutureTimestamp => "future_timestamp",
            RejectCode::DuplicateKey => "duplicate_key",
            RejectCode::Misrouted => "misrouted",
        }
    }

    /// Index into per-code arrays.
    pub fn idx(self) -> usize {
        self as usize
    }
}

impl DecodeError {
    /// The bounded code of this error.
    pub fn code(&self) -> RejectCode {
        match self {
            DecodeError::Oversized { .. } => RejectCode::Oversized,
            DecodeError::InvalidJson(_) => RejectCode::InvalidJson,
            DecodeError::NotAnObject => RejectCode::NotAnObject,
            DecodeError::MissingField(_) => RejectCode::MissingField,
            DecodeError::WrongType { .. } => RejectCode::WrongType,
            DecodeError::InvalidCustomerId(_) => RejectCode::InvalidCustomerId,
            DecodeError::InvalidTimestamp(_) => RejectCode::InvalidTimestamp,
            DecodeError::UnknownKind(_) => RejectCode::UnknownKind,
            DecodeError::InvalidAmount => RejectCode::InvalidAmount,
            DecodeError::InvalidCsat => RejectCode::InvalidCsat,
            DecodeError::InvalidNps => RejectCode::InvalidNps,
            DecodeError::FutureTimestamp { .. } => RejectCode::FutureTimestamp,
            DecodeError::DuplicateKey(_) => RejectCode::DuplicateKey,
            DecodeError::Misrouted { .. } => RejectCode::Misrouted,
        }
    }
}

/// Latest event time accepted at all (9999-12-31T23:59:59Z), in millis.
const MAX_TS_MS: i64 = 253_402_300_799_999;
/// Integers at or above this are read as milliseconds by `auto` (year 5138 in seconds).
const AUTO_MILLIS_FROM: f64 = 1e11;

/// Why a record carries no event for care: counted, neither folded nor
/// dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A type the kind map does not know (`unknown_kinds = "skip"`).
    UnknownKind,
    /// A type the kind map sends to `ignore`.
    IgnoredKind,
    /// A null value on a source topic (a compaction tombstone).
    Tombstone,
}

impl SkipReason {
    /// Every reason, in index order.
    pub const ALL: [SkipReason; 3] = [SkipReason::UnknownKind, SkipReason::IgnoredKind, SkipReason::Tombstone];

    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnknownKind => "unknown_kind",
            SkipReason::IgnoredKind => "ignored_kind",
            SkipReason::Tombstone => "tombstone",
        }
    }

    /// Index into per-reason arrays.
    pub fn idx(self) -> usize {
        self as usize
    }
}

/// What a record that is not rejected decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Event(Event),
    /// Its type is mapped to `ignore`.
    Ignored,
    /// Its type is unknown to the kind map, and the source skips unknown
    /// types.
    Unknown(TypeName),
}

/// Bytes of an unknown type's name kept for the operator's log.
const TYPE_NAME_BYTES: usize = 64;

/// The first 64 bytes of an unknown type's name, held inline: in a raw
/// clickstream most records may be of unknown types, and naming each must
/// not cost an allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TypeName {
    len: u8,
    bytes: [u8; TYPE_NAME_BYTES],
}

impl TypeName {
    /// The name, cut at a character boundary.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl From<&str> for TypeName {
    fn from(s: &str) -> TypeName {
        let mut end = TYPE_NAME_BYTES.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; TYPE_NAME_BYTES];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        TypeName { len: end as u8, bytes }
    }
}

impl std::fmt::Debug for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// How the kind of a record is found, resolved from [`crate::config::KindRule`].
#[derive(Debug, Clone)]
enum KindSource {
    Fixed(Kind),
    /// `map` values of `None` are types to ignore.
    Field { pointer: String, map: HashMap<String, Option<Kind>>, unknown: UnknownKinds },
}

/// A source's compiled mapping from its JSON to the canonical event.
#[derive(Debug, Clone)]
pub struct SourceMapping {
    pub name: String,
    pub topic: String,
    ts_format: TimestampFormat,
    customer_id: String,
    ts: String,
    amount: Option<String>,
    csat: Option<String>,
    nps: Option<String>,
    event_id: Option<String>,
    kind: KindSource,
}

impl SourceMapping {
    /// Compiles a validated source config.
    pub fn new(cfg: &SourceConfig) -> SourceMapping {
        let kind = match (cfg.kind.fixed, &cfg.kind.field) {
            (Some(k), _) => KindSource::Fixed(k),
            (None, field) => KindSource::Field {
                pointer: field.clone().unwrap_or_else(|| "/kind".into()),
                map: cfg.kind.map.iter().map(|(v, k)| (v.clone(), k.kind())).collect(),
                unknown: cfg.unknown_kinds,
            },
        };
        let f = &cfg.fields;
        SourceMapping {
            name: cfg.name.clone(),
            topic: cfg.topic.clone(),
            ts_format: cfg.timestamp_format,
            customer_id: f.customer_id.clone(),
            ts: f.ts.clone(),
            amount: f.amount.clone(),
            csat: f.csat.clone(),
            nps: f.nps.clone(),
            event_id: f.event_id.clone(),
            kind,
        }
    }

    /// The canonical JSON lines format: fields at the top level under their
    /// canonical names, `ts` as RFC 3339 or epoch seconds/millis. An
    /// unknown kind is a dead letter: the format defines its kinds.
    pub fn canonical() -> SourceMapping {
        let p = |s: &str| Some(format!("/{s}"));
        SourceMapping {
            name: "canonical".into(),
            topic: "canonical".into(),
            ts_format: TimestampFormat::Auto,
            customer_id: "/customer_id".into(),
            ts: "/ts".into(),
            amount: p("amount"),
            csat: p("csat"),
            nps: p("nps"),
            event_id: p("event_id"),
            kind: KindSource::Field { pointer: "/kind".into(), map: HashMap::new(), unknown: UnknownKinds::Dlq },
        }
    }
}

/// Limits applied to every record before and after mapping.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_record_bytes: usize,
    pub max_future_skew_ms: i64,
    /// Largest `amount` accepted.
    pub max_amount: f64,
}

impl Limits {
    /// The limits an `[engine]` table sets.
    pub fn new(e: &EngineConfig) -> Limits {
        Limits { max_record_bytes: e.max_record_bytes, max_future_skew_ms: i64::from(e.max_future_skew_secs) * 1000, max_amount: e.max_amount }
    }
}

/// The UTF-8 byte-order mark some producers put before JSON.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes one record into an event, or a record to skip (an unknown or
/// ignored type). `now_ms` is the wall clock handed in by the caller.
///
/// # Errors
/// A [`DecodeError`] naming what is wrong; the record goes to the DLQ.
pub fn decode(bytes: &[u8], map: &SourceMapping, limits: Limits, now_ms: i64) -> Result<Decoded, DecodeError> {
    if bytes.len() > limits.max_record_bytes {
        return Err(DecodeError::Oversized { len: bytes.len(), max: limits.max_record_bytes });
    }
    let root = crate::json::parse(bytes.strip_prefix(BOM).unwrap_or(bytes)).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with(crate::json::DUPLICATE_KEY) { DecodeError::DuplicateKey(msg) } else { DecodeError::InvalidJson(msg) }
    })?;
    if !root.is_object() {
        return Err(DecodeError::NotAnObject);
    }
    let kind = match &map.kind {
        KindSource::Fixed(k) => *k,
        KindSource::Field { pointer, map, unknown } => match kind(required(&root, pointer, "kind")?, map, *unknown)? {
            Typed::Kind(k) => k,
            Typed::Skip(skipped) => return Ok(skipped),
        },
    };
    decode_event(&root, map, kind, limits, now_ms).map(Decoded::Event)
}

/// Decodes one record that must be an event (benches, tests): a skipped
/// one is an `unknown_kind` error.
///
/// # Errors
/// As [`decode`]; a record it skips is [`DecodeError::UnknownKind`].
pub fn decode_event_only(bytes: &[u8], map: &SourceMapping, limits: Limits, now_ms: i64) -> Result<Event, DecodeError> {
    match decode(bytes, map, limits, now_ms)? {
        Decoded::Event(e) => Ok(e),
        Decoded::Ignored => Err(DecodeError::UnknownKind("(ignored)".into())),
        Decoded::Unknown(name) => Err(DecodeError::UnknownKind(name.as_str().to_string())),
    }
}

fn decode_event(root: &Value, map: &SourceMapping, kind: Kind, limits: Limits, now_ms: i64) -> Result<Event, DecodeError> {
    let customer_id = customer_id(required(root, &map.customer_id, "customer_id")?)?;
    let ts_ms = timestamp(required(root, &map.ts, "ts")?, map.ts_format)?;
    if ts_ms - now_ms > limits.max_future_skew_ms {
        let max_secs = u32::try_from(limits.max_future_skew_ms / 1000).unwrap_or(u32::MAX);
        return Err(DecodeError::FutureTimestamp { ahead_secs: (ts_ms - now_ms) / 1000, max_secs });
    }
    let amount = optional(root, map.amount.as_deref()).map(|v| amount(v, limits.max_amount)).transpose()?;
    let csat = optional(root, map.csat.as_deref()).map(|v| small_int(v, 1, 5, DecodeError::InvalidCsat)).transpose()?;
    let nps = optional(root, map.nps.as_deref()).map(|v| small_int(v, 0, 10, DecodeError::InvalidNps)).transpose()?;
    let event_id = optional(root, map.event_id.as_deref()).map(|v| scalar_string(v, "event_id")).transpose()?;
    if kind == Kind::Survey && csat.is_none() && nps.is_none() {
        // A survey record is nothing but its answer: without one it would
        // be folded and vanish without a trace.
        return Err(DecodeError::MissingField("csat or nps"));
    }
    Ok(Event { customer_id, kind, ts_ms, amount, csat, nps, event_id })
}

fn required<'v>(root: &'v Value, pointer: &str, field: &'static str) -> Result<&'v Value, DecodeError> {
    match at_pointer(root, pointer) {
        None | Some(Value::Null) => Err(DecodeError::MissingField(field)),
        Some(v) => Ok(v),
    }
}

fn optional<'v>(root: &'v Value, pointer: Option<&str>) -> Option<&'v Value> {
    pointer.and_then(|p| at_pointer(root, p)).filter(|v| !v.is_null())
}

/// `Value::pointer`, without the two `String`s it makes of every token
/// (it unescapes `~1` and `~0` with `replace` even when there is nothing
/// to unescape): a mapping's pointers are looked up on every event. A
/// pointer with a `~` goes to `Value::pointer`.
pub(crate) fn at_pointer<'v>(root: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.contains('~') {
        return root.pointer(pointer);
    }
    if pointer.is_empty() {
        return Some(root);
    }
    pointer.strip_prefix('/')?.split('/').try_fold(root, |v, token| match v {
        Value::Object(m) => m.get(token),
        // As serde_json reads an index: no sign, no leading zero.
        Value::Array(a) if !token.starts_with('+') && (token == "0" || !token.starts_with('0')) => token.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Strings and integers are both common customer ids.
fn scalar_string(v: &Value, field: &'static str) -> Result<String, DecodeError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(DecodeError::WrongType { field, expected: "a string or an integer" }),
    }
}

fn customer_id(v: &Value) -> Result<String, DecodeError> {
    let id = scalar_string(v, "customer_id")?;
    if id.is_empty() {
        return Err(DecodeError::InvalidCustomerId("is empty"));
    }
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return Err(DecodeError::InvalidCustomerId("is longer than 128 bytes"));
    }
    // It becomes a Kafka key and a header value: a NUL or a newline there
    // breaks tools downstream.
    if id.chars().any(char::is_control) {
        return Err(DecodeError::InvalidCustomerId("contains a control character"));
    }
    Ok(id)
}

fn timestamp(v: &Value, format: TimestampFormat) -> Result<i64, DecodeError> {
    let ms = match (format, v) {
        (TimestampFormat::Rfc3339 | TimestampFormat::Auto, Value::String(s)) => match rfc3339_ms(s) {
            Some(ms) => ms,
            None if format == TimestampFormat::Auto => auto_number(number_in_string(s)?)?,
            None => return Err(DecodeError::InvalidTimestamp(format!("{s:?} is not RFC 3339"))),
        },
        (TimestampFormat::Rfc3339, _) => return Err(DecodeError::WrongType { field: "ts", expected: "an RFC 3339 string" }),
        (TimestampFormat::Auto, Value::Number(n)) => auto_number(n.as_f64().unwrap_or(f64::NAN))?,
        (TimestampFormat::EpochSecs, _) => epoch(v, 1000.0)?,
        (TimestampFormat::EpochMillis, _) => epoch(v, 1.0)?,
        (TimestampFormat::Auto, _) => return Err(DecodeError::WrongType { field: "ts", expected: "a string or a number" }),
    };
    if !(0..=MAX_TS_MS).contains(&ms) {
        return Err(DecodeError::InvalidTimestamp(format!("{ms} ms is outside 1970..9999")));
    }
    Ok(ms)
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

fn number_in_string(s: &str) -> Result<f64, DecodeError> {
    s.trim().parse::<f64>().map_err(|_| DecodeError::InvalidTimestamp(format!("{s:?} is neither RFC 3339 nor a number")))
}

fn auto_number(x: f64) -> Result<i64, DecodeError> {
    let scale = if x.abs() >= AUTO_MILLIS_FROM { 1.0 } else { 1000.0 };
    finite_ms(x * scale)
}

fn epoch(v: &Value, scale: f64) -> Result<i64, DecodeError> {
    let x = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => number_in_string(s)?,
        _ => return Err(DecodeError::WrongType { field: "ts", expected: "a number" }),
    };
    finite_ms(x * scale)
}

fn finite_ms(ms: f64) -> Result<i64, DecodeError> {
    if ms.is_finite() && ms.abs() < 1e16 {
        Ok(ms.floor() as i64)
    } else {
        Err(DecodeError::InvalidTimestamp(format!("{ms} is not a usable epoch")))
    }
}

/// A record's kind, or why it is skipped.
enum Typed {
    Kind(Kind),
    Skip(Decoded),
}

fn kind(v: &Value, map: &HashMap<String, Option<Kind>>, unknown: UnknownKinds) -> Result<Typed, DecodeError> {
    let s = v.as_str().ok_or(DecodeError::WrongType { field: "kind", expected: "a string" })?;
    match map.get(s).copied().or_else(|| Kind::parse_any_case(s).map(Some)) {
        Some(Some(k)) => Ok(Typed::Kind(k)),
        Some(None) => Ok(Typed::Skip(Decoded::Ignored)),
        None if unknown == UnknownKinds::Skip => Ok(Typed::Skip(Decoded::Unknown(s.into()))),
        None => Err(DecodeError::UnknownKind(truncate(s, TYPE_NAME_BYTES))),
    }
}

/// Money often arrives as a decimal string; both forms are accepted.
fn amount(v: &Value, max: f64) -> Result<f64, DecodeError> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    x.filter(|x| (0.0..=max).contains(x)).ok_or(DecodeError::InvalidAmount)
}

fn small_int(v: &Value, lo: u8, hi: u8, err: DecodeError) -> Result<u8, DecodeError> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match x {
        Some(x) if x.fract() == 0.0 && x >= f64::from(lo) && x <= f64::from(hi) => Ok(x as u8),
        _ => Err(err),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[path = "decode_canonical.rs"]
mod canonical;
pub use canonical::decode_canonical;

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
