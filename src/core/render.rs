//! Output records: signals and dead letters rendered to what goes on a topic.
//!
//! Pure: a record is a topic role, a key, CloudEvents binary-mode headers and
//! a JSON value, all derived from event time and state, never from the wall
//! clock, so the same input always renders the same bytes. `publish` ships
//! them to Kafka, `replay` and `demo` print them.

pub use bytes::Bytes;
use bytes::BytesMut;

use crate::config::Config;
use crate::decode::DecodeError;
use crate::detect::{registry, Destination, Signal, SignalType, Status};
pub use crate::detect::signal::{round, Head, WindowInfo};
pub use crate::time::rfc3339;

/// Namespace of every `ce_id` (UUIDv5 of customer, signal, episode, status).
pub const CE_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("3c1b5c1e-7a55-5b6e-9d4e-ca4ec0de0001");

/// Which configured topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicRole {
    Alerts,
    Reactivation,
    Dlq,
    /// Source anomalies from the outage guard, keyed by task id.
    Anomalies,
    /// Customer profiles, compacted, keyed by customer id.
    Profiles,
}

impl TopicRole {
    /// The topic a signal type's messages go to.
    pub fn of(t: SignalType) -> TopicRole {
        match t.destination() {
            Destination::Alerts => TopicRole::Alerts,
            Destination::Reactivation => TopicRole::Reactivation,
        }
    }

    pub const ALL: [TopicRole; 5] = [TopicRole::Alerts, TopicRole::Reactivation, TopicRole::Dlq, TopicRole::Anomalies, TopicRole::Profiles];

    /// The configured topic of this role.
    pub fn topic(self, o: &crate::config::OutputsConfig) -> &str {
        match self {
            TopicRole::Alerts => &o.alerts,
            TopicRole::Reactivation => &o.reactivation,
            TopicRole::Dlq => &o.dlq,
            TopicRole::Anomalies => &o.anomalies,
            TopicRole::Profiles => &o.profiles,
        }
    }

    /// Whether care creates it compacted: it holds the latest value per key.
    pub fn compacted(self) -> bool {
        self == TopicRole::Profiles
    }

    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicRole::Alerts => "alerts",
            TopicRole::Reactivation => "reactivation",
            TopicRole::Dlq => "dlq",
            TopicRole::Anomalies => "anomalies",
            TopicRole::Profiles => "profiles",
        }
    }
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub role: TopicRole,
    /// The customer id; a dead letter keeps its record's key, null included.
    pub key: Option<Bytes>,
    pub headers: Headers,
    pub value: Bytes,
    /// Event time of the trigger (for emit_from and ordering checks).
    pub trigger_ms: i64,
    /// A dead letter's original headers and timestamp; `None` for a signal.
    pub original: Option<Box<Original>>,
}

/// A record's headers: the CloudEvents attributes of a signal, profile or
/// anomaly, then any others (a dead letter's). The attributes are held as
/// they are made (shared where every record has the same, the rest slices
/// of the record's own bytes), so a record takes no allocation for them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Headers {
    ce: Option<CloudEvent>,
    other: Vec<(&'static str, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
struct CloudEvent {
    ce_type: &'static str,
    id: Bytes,
    source: Bytes,
    time: Bytes,
    subject: Bytes,
    schema: Bytes,
}

impl Headers {
    /// Headers that are not CloudEvents attributes, in order.
    pub fn other(other: Vec<(&'static str, Bytes)>) -> Headers {
        Headers { ce: None, other }
    }

    /// Every header, in the order they go on the record.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        let ce = self.ce.iter().flat_map(|c| {
            [
                ("ce_specversion", &b"1.0"[..]),
                ("ce_id", &c.id[..]),
                ("ce_source", &c.source[..]),
                ("ce_type", c.ce_type.as_bytes()),
                ("ce_time", &c.time[..]),
                ("ce_subject", &c.subject[..]),
                ("ce_dataschema", &c.schema[..]),
                ("content-type", &b"application/json"[..]),
            ]
        });
        ce.chain(self.other.iter().map(|(k, v)| (*k, &v[..])))
    }

    pub fn len(&self) -> usize {
        self.ce.as_ref().map_or(0, |_| 8) + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a task's output records are written: chunks of 64 KB that the
/// records written in them share, by reference count, so rendering a
/// record takes no heap allocation of its own (profiles are rendered on
/// the hot path). A chunk is freed with the last record in it.
#[derive(Debug, Default)]
pub struct Arena(BytesMut);

impl Arena {
    const CHUNK: usize = 64 * 1024;

    /// Appends `parts` and returns them as one `Bytes`.
    pub fn put(&mut self, parts: &[&[u8]]) -> Bytes {
        let n = parts.iter().map(|p| p.len()).sum();
        if self.0.capacity() < n {
            self.0.reserve(n.max(Arena::CHUNK));
        }
        parts.iter().for_each(|p| self.0.extend_from_slice(p));
        self.0.split().freeze()
    }
}

/// What a dead letter keeps of its source record besides key and value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Original {
    /// The source record's headers, in order, before care's own (a null
    /// value stays null). Empty when they were too large to keep.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The source record's timestamp (epoch ms), published as the dead
    /// letter's own; `None` when it had none (the broker then stamps it).
    pub timestamp_ms: Option<i64>,
}

/// The headers of a source record, read only to copy them onto its dead
/// letter (so the hot path never copies them).
pub trait SourceHeaders {
    /// Calls `f` with each header's name and value (`None`: null), in order.
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>));
}

/// Original headers a dead letter keeps, in bytes of names and values:
/// within the room the DLQ topic has for headers beyond the value, so a
/// record with huge headers still makes a dead letter Kafka takes.
pub const MAX_ORIGINAL_HEADER_BYTES: usize = 32 * 1024;

/// Bytes of a source record's key a dead letter keeps: with the value cut
/// at `max_record_bytes` and the headers bounded, a dead letter always fits
/// the DLQ, whatever key a hostile record carries. A longer key is cut, and
/// `care_original_key_size` says how long it was.
pub const MAX_DEAD_LETTER_KEY_BYTES: usize = 4 * 1024;

/// What each header costs on the wire besides its name and value
/// (length varints, attributes), counted against the header budget.
const HEADER_OVERHEAD_BYTES: usize = 16;

/// Kafka Connect's class name for a record care could not use, in
/// `__connect.errors.exception.class.name`.
pub const CONNECT_EXCEPTION_CLASS: &str = "io.care.DecodeError";

impl OutputRecord {
    /// The `status` of a signal's payload; `None` for a dead letter.
    pub fn status(&self) -> Option<Status> {
        #[derive(serde::Deserialize)]
        struct Payload {
            status: Status,
        }
        serde_json::from_slice::<Payload>(&self.value).ok().map(|p| p.status)
    }

    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| *k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// Where a rejected record came from, for DLQ headers.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp, if it had one.
    pub timestamp_ms: Option<i64>,
    pub headers: Option<&'a dyn SourceHeaders>,
}

impl std::fmt::Debug for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin").field("topic", &self.topic).field("partition", &self.partition).field("offset", &self.offset).finish_non_exhaustive()
    }
}

/// Renders signals and dead letters with the configured constants.
#[derive(Debug, Clone)]
pub struct Renderer {
    ce_source: Bytes,
    /// `ce_dataschema` of every `ce_type`, made once.
    schemas: Vec<(&'static str, Bytes)>,
    window: WindowInfo,
}

/// Every output a signal can become: (signal type, payload version,
/// `ce_type`), from the signal types the detectors declare, each with its
/// schema in `src/core/schemas/<ce_type>.json`.
pub fn ce_types() -> impl Iterator<Item = (SignalType, u8, &'static str)> {
    registry::ce_types()
}

/// The `ce_type` of the outage guard's records: not a customer's signal.
pub const SOURCE_ANOMALY_CE_TYPE: &str = "io.care.source_anomaly.v1";

/// The `ce_type` of a customer profile.
pub const PROFILE_CE_TYPE: &str = "io.care.customer_profile.v1";

/// Every `ce_type` care emits: the signals', the source anomaly's and the
/// profile's.
pub fn all_ce_types() -> impl Iterator<Item = &'static str> {
    ce_types().map(|(_, _, name)| name).chain([SOURCE_ANOMALY_CE_TYPE, PROFILE_CE_TYPE])
}

/// `ce_type` of one signal.
///
/// # Panics
/// The signal's version is not among its type's: a bug that a test of
/// every detector's signals catches.
pub fn signal_ce_type(s: &Signal) -> &'static str {
    let (t, v) = (s.signal_type(), s.version());
    t.ce_type(v).unwrap_or_else(|| panic!("no ce_type for {t:?} v{v}"))
}

/// The signal type a `ce_type` names.
pub fn signal_type_of(ce_type: &str) -> Option<SignalType> {
    registry::signal_type_of(ce_type).map(|(t, _)| t)
}

/// The deterministic CloudEvents id of one message of one episode.
pub fn ce_id(customer: &str, t: SignalType, episode_ms: i64, status: Status) -> uuid::Uuid {
    uuid_v5(&[customer.as_bytes(), t.as_str().as_bytes(), itoa::Buffer::new().format(episode_ms).as_bytes(), status.as_str().as_bytes()])
}

/// The UUIDv5 in [`CE_ID_NAMESPACE`] of `parts` joined by newlines,
/// hashed as they come instead of joined in a `String` first: every
/// output record takes one.
fn uuid_v5(parts: &[&[u8]]) -> uuid::Uuid {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(CE_ID_NAMESPACE.as_bytes());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(p);
    }
    let d = h.finalize();
    uuid::Builder::from_sha1_bytes(d[..16].try_into().expect("a SHA-1 has 20 bytes")).into_uuid()
}

impl Renderer {
    pub fn new(cfg: &Config) -> Renderer {
        Renderer {
            ce_source: Bytes::from(cfg.outputs.ce_source.clone()),
            schemas: all_ce_types().map(|t| (t, Bytes::from(format!("urn:care:schema:{t}")))).collect(),
            window: WindowInfo {
                bucket_secs: cfg.engine.bucket_secs,
                recent_buckets: cfg.detect.decline.recent_buckets,
                baseline_buckets: cfg.detect.decline.baseline_buckets,
            },
        }
    }

    /// Renders a detector signal about `customer`.
    pub fn signal(&self, arena: &mut Arena, customer: &str, s: &Signal) -> OutputRecord {
        let t = s.signal_type();
        let ce_type = signal_ce_type(s);
        let trigger_ms = s.trigger_ms();
        let id = ce_id(customer, t, s.episode_ms(), s.status());
        let value = serde_json::to_vec(&s.payload(customer, self.window)).expect("JSON values serialise");
        self.record(arena, TopicRole::of(t), (id, ce_type, trigger_ms), customer, &value)
    }

    /// Renders a customer's profile: their scorecard as of `at_ms`,
    /// written in `scratch` first.
    pub fn profile(&self, arena: &mut Arena, card: &crate::scorecard::Scorecard, at_ms: i64, scratch: &mut Vec<u8>) -> OutputRecord {
        let customer = &*card.customer_id;
        let id = uuid_v5(&[customer.as_bytes(), b"profile", itoa::Buffer::new().format(at_ms).as_bytes()]);
        // The scorecard's fields are in alphabetical order: sorted keys,
        // like every other output. 0.75 KB typically, 1.1 KB at the 99th
        // percentile, about 0.4 KB more with a fit's figures.
        scratch.clear();
        card.write_json(scratch);
        self.record(arena, TopicRole::Profiles, (id, PROFILE_CE_TYPE, at_ms), customer, scratch)
    }

    /// A record keyed by `subject` with CloudEvents binary-mode headers:
    /// its key, `ce_id`, `ce_time` and value written in `arena` together.
    fn record(&self, arena: &mut Arena, role: TopicRole, (id, ce_type, at_ms): (uuid::Uuid, &'static str, i64), subject: &str, value: &[u8]) -> OutputRecord {
        // A `ce_type` is one of the constants the schemas were made from:
        // found by its address without comparing text, nearly always.
        let schema = (self.schemas.iter().find(|(t, _)| std::ptr::eq(*t, ce_type)).or_else(|| self.schemas.iter().find(|(t, _)| *t == ce_type)))
            .map_or_else(|| Bytes::from(format!("urn:care:schema:{ce_type}")), |(_, s)| s.clone());
        let mut id_text = uuid::Uuid::encode_buffer();
        let id_text = id.hyphenated().encode_lower(&mut id_text).as_bytes();
        let time = crate::time::Time(at_ms).digits();
        let time_text = time.as_ref().map_or_else(|| std::borrow::Cow::Owned(rfc3339(at_ms).into_bytes()), |t| std::borrow::Cow::Borrowed(&t[..]));
        let all = arena.put(&[value, subject.as_bytes(), id_text, &time_text]);
        let (v, k, i) = (value.len(), subject.len(), id_text.len());
        let key = all.slice(v..v + k);
        let ce = CloudEvent {
            ce_type,
            id: all.slice(v + k..v + k + i),
            source: self.ce_source.clone(),
            time: all.slice(v + k + i..),
            subject: key.clone(),
            schema,
        };
        OutputRecord { role, key: Some(key), headers: Headers { ce: Some(ce), other: Vec::new() }, value: all.slice(..v), trigger_ms: at_ms, original: None }
    }

    /// Renders a change of task `task`'s outage guard.
    pub fn anomaly(&self, arena: &mut Arena, task: &str, a: &crate::engine::guard::Anomaly) -> OutputRecord {
        let status = if a.tripped { Status::Opened } else { Status::Resolved };
        let id = uuid_v5(&[task.as_bytes(), b"source_anomaly", itoa::Buffer::new().format(a.since_ms).as_bytes(), status.as_str().as_bytes()]);
        let payload = serde_json::json!({
            "task": task,
            "status": status,
            "at": rfc3339(a.at_ms),
            "episode_started_at": rfc3339(a.since_ms),
            "openings_withheld": a.withheld,
            "openings_allowed_per_day": round(a.threshold, 3),
            "openings_expected_per_day": round(a.expected_per_day, 3),
            "kinds_affected": a.kinds_affected,
        });
        let value = serde_json::to_vec(&payload).expect("JSON values serialise");
        self.record(arena, TopicRole::Anomalies, (id, SOURCE_ANOMALY_CE_TYPE, a.at_ms), task, &value)
    }

    /// Renders a rejected record the way Kafka Connect's DLQ does, so
    /// tools built for one read the other: original key (null stays null),
    /// bytes, headers and timestamp; `care_*` headers naming where it came
    /// from and why it was rejected, and the same as Connect's
    /// `__connect.errors.*` headers. An oversized record keeps only its
    /// first `max_record_bytes` bytes, with its original size in
    /// `care_original_size`, so the dead letter always fits the DLQ topic
    /// and can never block the pipeline.
    pub fn dead_letter(&self, origin: Origin<'_>, key: Option<&[u8]>, payload: &[u8], err: &DecodeError) -> OutputRecord {
        let (code, message) = (Bytes::from_static(err.code().as_str().as_bytes()), Bytes::from(err.to_string()));
        let (partition, offset) = (Bytes::from(origin.partition.to_string()), Bytes::from(origin.offset.to_string()));
        let topic = Bytes::copy_from_slice(origin.topic.as_bytes());
        let mut headers = vec![
            ("care_source_topic", topic.clone()),
            ("care_source_partition", partition.clone()),
            ("care_source_offset", offset.clone()),
            ("care_error_code", code),
            ("care_error_message", message.clone()),
            ("__connect.errors.topic", topic),
            ("__connect.errors.partition", partition),
            ("__connect.errors.offset", offset),
            ("__connect.errors.exception.class.name", Bytes::from_static(CONNECT_EXCEPTION_CLASS.as_bytes())),
            ("__connect.errors.exception.message", message),
        ];
        let value = match err {
            DecodeError::Oversized { len, max } => {
                headers.push(("care_original_size", Bytes::from(len.to_string())));
                Bytes::copy_from_slice(&payload[..(*max).min(payload.len())])
            }
            _ => Bytes::copy_from_slice(payload),
        };
        let key = key.map(|k| {
            if k.len() > MAX_DEAD_LETTER_KEY_BYTES {
                headers.push(("care_original_key_size", Bytes::from(k.len().to_string())));
            }
            Bytes::copy_from_slice(&k[..k.len().min(MAX_DEAD_LETTER_KEY_BYTES)])
        });
        let original = Original { headers: original_headers(origin.headers, &mut headers), timestamp_ms: origin.timestamp_ms.filter(|t| *t >= 0) };
        OutputRecord { role: TopicRole::Dlq, key, headers: Headers::other(headers), value, trigger_ms: 0, original: Some(Box::new(original)) }
    }
}

/// The source record's headers, unless together larger than
/// [`MAX_ORIGINAL_HEADER_BYTES`]: then none, and `care_headers_dropped`
/// says how many there were.
fn original_headers(source: Option<&dyn SourceHeaders>, care: &mut Vec<(&'static str, Bytes)>) -> Vec<(String, Option<Vec<u8>>)> {
    let Some(source) = source else { return Vec::new() };
    let (mut kept, mut bytes, mut count) = (Vec::new(), 0usize, 0usize);
    source.each(&mut |name, value| {
        count += 1;
        bytes += HEADER_OVERHEAD_BYTES + name.len() + value.map_or(0, <[u8]>::len);
        if bytes <= MAX_ORIGINAL_HEADER_BYTES {
            kept.push((name.to_string(), value.map(<[u8]>::to_vec)));
        }
    });
    if bytes > MAX_ORIGINAL_HEADER_BYTES {
        care.push(("care_headers_dropped", Bytes::from(count.to_string())));
        kept.clear();
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn uuid_v5_is_the_uuid_crates_of_the_joined_name(parts in proptest::collection::vec(".*", 1..5)) {
            let joined = parts.join("\n");
            let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
            proptest::prop_assert_eq!(uuid_v5(&bytes), uuid::Uuid::new_v5(&CE_ID_NAMESPACE, joined.as_bytes()));
        }
    }

    #[test]
    fn ce_id_is_deterministic_and_distinguishes_messages() {
        let a = ce_id("c1", crate::detect::decline::ACTIVITY_DECLINE, 1_000, Status::Opened);
        assert_eq!(a, ce_id("c1", crate::detect::decline::ACTIVITY_DECLINE, 1_000, Status::Opened));
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, ce_id("c1", crate::detect::decline::ACTIVITY_DECLINE, 1_000, Status::Resolved));
        assert_ne!(a, ce_id("c2", crate::detect::decline::ACTIVITY_DECLINE, 1_000, Status::Opened));
        assert_ne!(a, ce_id("c1", crate::detect::decline::ACTIVITY_DECLINE, 1_001, Status::Opened));
    }

    #[test]
    fn an_oversized_dead_letter_keeps_its_head_and_original_size_and_a_null_key() {
        let r = Renderer::new(&Config::parse("", "t").unwrap());
        let origin = Origin { topic: "in", partition: 2, offset: 9, timestamp_ms: None, headers: None };
        let big = vec![b'x'; 5000];
        let d = r.dead_letter(origin, None, &big, &DecodeError::Oversized { len: 5000, max: 1024 });
        assert_eq!(d.key, None, "a null key stays null");
        assert_eq!(d.value.len(), 1024);
        assert_eq!(d.header("care_original_size"), Some("5000"));
        assert_eq!(d.header("care_error_code"), Some("oversized"));
        let small = r.dead_letter(origin, Some(b"k"), b"{", &DecodeError::InvalidJson("eof".into()));
        assert_eq!((small.key.as_deref(), &small.value[..]), (Some(&b"k"[..]), &b"{"[..]));
        assert_eq!(small.header("care_original_size"), None);
    }

    struct Source(Vec<(&'static str, Option<Vec<u8>>)>);

    impl SourceHeaders for Source {
        fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
            self.0.iter().for_each(|(k, v)| f(k, v.as_deref()));
        }
    }

    #[test]
    fn a_dead_letter_reads_like_a_kafka_connect_one() {
        let r = Renderer::new(&Config::parse("", "t").unwrap());
        let source = Source(vec![("trace", Some(b"t-1".to_vec())), ("empty", None)]);
        let origin = Origin { topic: "web", partition: 1, offset: 42, timestamp_ms: Some(1_700_000_000_000), headers: Some(&source) };
        let d = r.dead_letter(origin, None, b"{", &DecodeError::InvalidJson("eof".into()));
        let o = d.original.as_deref().unwrap();
        assert_eq!(o.timestamp_ms, Some(1_700_000_000_000), "the original timestamp");
        assert_eq!(o.headers, [("trace".to_string(), Some(b"t-1".to_vec())), ("empty".to_string(), None)], "original headers, null kept");
        assert_eq!(d.header("__connect.errors.topic"), Some("web"));
        assert_eq!(d.header("__connect.errors.partition"), Some("1"));
        assert_eq!(d.header("__connect.errors.offset"), Some("42"));
        assert_eq!(d.header("__connect.errors.exception.class.name"), Some(CONNECT_EXCEPTION_CLASS));
        assert_eq!(d.header("__connect.errors.exception.message"), d.header("care_error_message"));
        assert_eq!(d.header("care_error_code"), Some("invalid_json"));
        let none = Origin { timestamp_ms: Some(-1), headers: None, ..origin };
        assert_eq!(r.dead_letter(none, None, b"{", &DecodeError::NotAnObject).original.unwrap().timestamp_ms, None, "no timestamp: the broker's");
    }

    #[test]
    fn huge_original_headers_are_dropped_and_counted() {
        let r = Renderer::new(&Config::parse("", "t").unwrap());
        let source = Source(vec![("a", Some(vec![b'x'; MAX_ORIGINAL_HEADER_BYTES])), ("b", Some(b"y".to_vec()))]);
        let origin = Origin { topic: "web", partition: 0, offset: 0, timestamp_ms: None, headers: Some(&source) };
        let d = r.dead_letter(origin, Some(b"k"), b"[]", &DecodeError::NotAnObject);
        assert!(d.original.as_deref().unwrap().headers.is_empty());
        assert_eq!(d.header("care_headers_dropped"), Some("2"));
    }

    #[test]
    fn a_huge_key_is_cut_so_the_dead_letter_still_fits_the_dlq() {
        let r = Renderer::new(&Config::parse("", "t").unwrap());
        let origin = Origin { topic: "web", partition: 0, offset: 0, timestamp_ms: None, headers: None };
        let key = vec![b'k'; 150_000];
        let d = r.dead_letter(origin, Some(&key), b"{", &DecodeError::InvalidJson("eof".into()));
        assert_eq!(d.key.as_ref().map(Bytes::len), Some(MAX_DEAD_LETTER_KEY_BYTES));
        assert_eq!(d.header("care_original_key_size"), Some("150000"));
    }

    #[test]
    fn records_keep_their_bytes_whatever_the_arena_writes_after_them() {
        // Records kept and dropped in turn, some larger than a chunk: a
        // kept one shares its chunk with those after it, and a chunk its
        // records left is written again.
        let mut arena = Arena::default();
        let part = |i: usize| vec![(i % 251) as u8; (i * 37) % 3_000 + usize::from(i % 97 == 0) * 100_000];
        let mut kept = Vec::new();
        for i in 0..5_000 {
            let (p, b) = (part(i), arena.put(&[&part(i), b"|", &part(i)]));
            assert_eq!((&b[..p.len()], b[p.len()], &b[p.len() + 1..]), (&p[..], b'|', &p[..]), "record {i} as written");
            if i % 3 == 0 {
                kept.push((i, b));
            }
        }
        for (i, b) in kept {
            let p = part(i);
            assert_eq!((&b[..p.len()], b[p.len()], &b[p.len() + 1..]), (&p[..], b'|', &p[..]), "record {i} after the rest");
        }
    }

    #[test]
    fn rfc3339_is_utc_millis() {
        assert_eq!(rfc3339(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }
}
