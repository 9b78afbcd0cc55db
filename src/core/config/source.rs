//! The `[[sources]]` tables: a topic and how its JSON maps to the canonical
//! event, with their validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};
use crate::event::Kind;

/// One input topic and the mapping of its JSON to the canonical event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Short name used in metric labels and `replay --source`.
    pub name: String,
    /// One topic per source: two sources on one topic are an error.
    pub topic: String,
    /// Timestamp encoding of the `ts` field.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// JSON pointers (RFC 6901) of the canonical fields.
    pub fields: FieldPointers,
    /// How the event kind is found.
    pub kind: KindRule,
    /// What becomes of a record whose type the kind map does not know:
    /// `skip` (default: counted, neither folded nor dead-lettered; a real
    /// clickstream has dozens of types care has no use for) or `dlq`.
    #[serde(default)]
    pub unknown_kinds: UnknownKinds,
    /// What a run does when more than 1 % of this source's first 10,000
    /// records are not on the partition murmur2(customer id) gives: `stop`
    /// (default: its producers partition differently, and care would
    /// dead-letter much of the topic) or `dlq`, which only dead-letters
    /// them (`misrouted`). Once the producers are fixed, the records they
    /// already wrote stay in the topic: `dlq` lets care get past them.
    #[serde(default)]
    pub on_misrouted: OnMisrouted,
}

/// What a run does about a source whose producers partition differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMisrouted {
    #[default]
    Stop,
    Dlq,
}

/// JSON pointers of each canonical field in a source's records.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldPointers {
    pub customer_id: String,
    pub ts: String,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub csat: Option<String>,
    #[serde(default)]
    pub nps: Option<String>,
    #[serde(default)]
    pub event_id: Option<String>,
}

/// How a record's kind is decided: fixed per topic, or read from a field
/// (optionally through a value → kind map).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KindRule {
    /// Every record of the topic has this kind.
    #[serde(default)]
    pub fixed: Option<Kind>,
    /// JSON pointer of the field holding the kind.
    #[serde(default)]
    pub field: Option<String>,
    /// Field value → kind, or `ignore` to skip records of that type
    /// explicitly (counted as ignored, never logged as unknown). Values not
    /// in the map are read as canonical kind names, in any letter case;
    /// anything else is an unknown kind (see `unknown_kinds`).
    #[serde(default)]
    pub map: BTreeMap<String, KindTarget>,
}

/// What a kind map entry maps a type to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KindTarget {
    Click,
    Login,
    Chat,
    Ticket,
    Order,
    /// A survey answer that is not activity.
    Survey,
    /// Skip records of this type.
    Ignore,
}

impl KindTarget {
    /// The kind, or `None` for `ignore`.
    pub fn kind(self) -> Option<Kind> {
        match self {
            KindTarget::Click => Some(Kind::Click),
            KindTarget::Login => Some(Kind::Login),
            KindTarget::Chat => Some(Kind::Chat),
            KindTarget::Ticket => Some(Kind::Ticket),
            KindTarget::Order => Some(Kind::Order),
            KindTarget::Survey => Some(Kind::Survey),
            KindTarget::Ignore => None,
        }
    }
}

/// Policy for event types the kind map does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownKinds {
    #[default]
    Skip,
    Dlq,
}

/// Encoding of event time in a source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339 string, or an integer read as seconds or milliseconds by
    /// magnitude (≥ 10^11 is milliseconds). The canonical JSON lines format.
    #[default]
    Auto,
    Rfc3339,
    EpochSecs,
    EpochMillis,
}

/// Rules across the sources: unique names, one source per topic, JSON
/// pointers, exactly one way to find the kind.
pub(super) fn validate(sources: &[SourceConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    let mut topics: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        let key = |k: &str| format!("sources[{i}].{k}");
        if s.name.is_empty() || !names.insert(s.name.as_str()) {
            return Err(invalid(key("name"), format!("must be unique and non-empty, got {:?}", s.name)));
        }
        if s.topic.is_empty() {
            return Err(invalid(key("topic"), "must not be empty"));
        }
        // Each record is read once and decoded by one mapping: a second
        // source on a topic would silently win over the first.
        if let Some(first) = topics.insert(&s.topic, &s.name) {
            let reason = format!(
                "{:?} is the topic of both source `{first}` and source `{}`: a topic can have one source only (merge their kind maps into one source)",
                s.topic, s.name
            );
            return Err(invalid(key("topic"), reason));
        }
        let f = &s.fields;
        let pointers = [("customer_id", Some(&f.customer_id)), ("ts", Some(&f.ts)), ("amount", f.amount.as_ref()),
            ("csat", f.csat.as_ref()), ("nps", f.nps.as_ref()), ("event_id", f.event_id.as_ref())];
        for (name, p) in pointers {
            check_pointer(p, &key(&format!("fields.{name}")))?;
        }
        check_pointer(s.kind.field.as_ref(), &key("kind.field"))?;
        match (&s.kind.fixed, &s.kind.field) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(invalid(key("kind"), "needs exactly one of `fixed` or `field`")),
        }
    }
    Ok(())
}

fn check_pointer(p: Option<&String>, key: &str) -> Result<(), ConfigError> {
    match p {
        Some(p) if !p.is_empty() && !p.starts_with('/') => {
            Err(invalid(key, format!("must be a JSON pointer starting with `/`, got {p:?}")))
        }
        _ => Ok(()),
    }
}
