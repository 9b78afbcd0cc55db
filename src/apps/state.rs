//! `care state`: a task's or a customer's state as restored from the
//! changelog, as JSON lines, for operators and tests. `replay --state`
//! writes the same lines for the state a replay ends with, so the two can
//! be compared customer by customer.
//!
//! One line per task, `{"task":"0_1","meta":{…}}` (stream time, `emit_from`,
//! next input offsets), then one per customer, `{"task":"0_1","customer":{…}}`
//! in customer-id order.
//!
//! The lines are a presentation of the state for people: every time is RFC
//! 3339, every bucket number is the time its bucket starts, and every
//! value is named (no positional arrays). It is made here over the
//! customer's own `Serialize` (which stays the raw dump, epoch ms and
//! bucket numbers, so a field added to the state is never left out), and
//! loses nothing: milliseconds are kept, fingerprints are shown as numbers.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use care_core::config::Config;
use care_core::engine::{Engine, Rules};
use care_core::changelog::Meta;
use care_core::event::Kind;
use care_core::render::rfc3339;
use care_core::state::Customer;
use care_core::task::TaskId;
use care_core::time::Buckets;
use serde_json::{json, Map, Value};

use crate::shell::durability::Restore;

const DAY_MS: i64 = 86_400_000;

/// Turns the raw dump into the lines people read: bucket widths from the
/// config make bucket numbers into times.
pub struct View {
    buckets: Buckets,
    /// The low-CSAT window's buckets: `window_days ÷ 6` days, from the epoch.
    csat_bucket_ms: i64,
}

impl View {
    pub fn new(cfg: &Config) -> View {
        let e = &cfg.engine;
        let buckets = Buckets { bucket_ms: i64::from(e.bucket_secs) * 1000, offset_ms: e.utc_offset_ms() };
        let days = cfg.detect.csat_low.window_days.div_ceil(care_core::detect::csat_low::BUCKETS as u32).max(1);
        View { buckets, csat_bucket_ms: i64::from(days) * DAY_MS }
    }

    /// A task's meta record: stream time, `emit_from`, next input offsets.
    pub fn meta(&self, m: &Meta) -> Value {
        let offsets: Vec<Value> = m.offsets.iter().map(|(topic, next)| json!({"topic": topic, "next_offset": next})).collect();
        json!({"stream_time": m.stream_time_ms.map(rfc3339), "emit_from": m.emit_from_ms.map(rfc3339), "offsets": offsets})
    }

    /// One customer's state, every field named, times in RFC 3339.
    pub fn customer(&self, c: &Customer) -> Value {
        // Through the text, not `to_value`: an f32 keeps its short form.
        let raw = serde_json::to_string(c).ok().and_then(|s| serde_json::from_str::<Value>(&s).ok());
        let Some(Value::Object(mut raw)) = raw else { return Value::Null };
        let mut out = Map::new();
        if let Some(seen) = raw.remove("last_seen_ms") {
            let at = |i: usize| seen.get(i).and_then(Value::as_i64).map(rfc3339);
            out.insert("last_seen".into(), Value::Object(Kind::TRACKED_ALL.iter().enumerate().filter_map(|(i, k)| Some((k.as_str().into(), at(i)?.into()))).collect()));
        }
        if let Some(activity) = raw.remove("activity") {
            out.insert("activity".into(), self.activity(&activity));
        }
        if let (Some(ids), Some(secs), Some(next)) = (raw.remove("event_ids"), raw.remove("event_id_secs"), raw.remove("next_event_id")) {
            out.insert("recent_event_ids".into(), recent_ids(&ids, &secs, next.as_u64().unwrap_or(0)));
        }
        if let Some(Value::Object(d)) = raw.remove("detectors") {
            out.insert("detectors".into(), Value::Object(d.into_iter().map(|(k, v)| (k.clone(), self.detector_state(&k, v))).collect()));
        }
        if let Some(Value::Object(mut d)) = raw.remove("decline_stat") {
            let next = d.remove("next").and_then(|n| n.as_i64()).filter(|n| *n != i64::MIN);
            d.insert("next_bucket".into(), next.map(|b| rfc3339(self.buckets.start_ms(b))).into());
            out.insert("decline_stat".into(), self.times(Value::Object(d)));
        }
        for (k, v) in raw {
            out.insert(k, v);
        }
        self.times(Value::Object(out))
    }

    /// Nonzero activity counts, newest bucket first: `[{"bucket":…,"counts":{"click":2}}]`.
    fn activity(&self, raw: &Value) -> Value {
        let mut out: Vec<(i64, Map<String, Value>)> = Vec::new();
        for e in raw.as_array().into_iter().flatten() {
            let (Some(bucket), Some(kind), Some(n)) = (e.get(0).and_then(Value::as_i64), e.get(1).and_then(Value::as_str), e.get(2)) else { continue };
            if out.last().is_none_or(|(b, _)| *b != bucket) {
                out.push((bucket, Map::new()));
            }
            if let Some((_, counts)) = out.last_mut() {
                counts.insert(kind.into(), n.clone());
            }
        }
        out.into_iter().map(|(b, counts)| json!({"bucket": rfc3339(self.buckets.start_ms(b)), "counts": counts})).collect()
    }

    /// A detector's own state, by its name: day numbers as dates, bit
    /// sets as the days or answers they stand for.
    fn detector_state(&self, name: &str, raw: Value) -> Value {
        let Value::Object(mut m) = raw else { return raw };
        match name {
            "csat_low" => return self.csat_window(Value::Object(m)),
            "purchases" => {
                let last = m.get("last_day").and_then(Value::as_i64);
                for (key, named) in [("first_day", "first_purchase_day"), ("last_day", "last_purchase_day")] {
                    if let Some(day) = m.remove(key).and_then(|d| d.as_i64()) {
                        m.insert(named.into(), care_core::scorecard::date(day).into());
                    }
                }
                if let (Some(bits), Some(last)) = (m.remove("known_days").and_then(|b| b.as_u64()), last) {
                    let days: Vec<Value> = (0..64).filter(|i| bits >> i & 1 == 1).filter_map(|i| care_core::scorecard::date(last - i)).map(|d| json!({"date": d})).collect();
                    m.insert("recent_purchase_days".into(), days.into());
                }
            }
            "retention" => {
                let newest = m.remove("newest").and_then(|n| n.as_i64()).unwrap_or(0);
                if let Some(Value::Array(secs)) = m.remove("latest_secs") {
                    let months: Vec<Value> = secs
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| {
                            let at = s.as_i64().filter(|s| *s > 0)?;
                            let month = newest - i as i64;
                            Some(json!({"month": format!("{:04}-{:02}", 1970 + month.div_euclid(12), month.rem_euclid(12) + 1), "latest_activity": rfc3339(at * 1000)}))
                        })
                        .collect();
                    m.insert("months".into(), months.into());
                }
            }
            "falling_csat" => {
                let n = m.get("recent").and_then(Value::as_u64).unwrap_or(0);
                if let Some(bits) = m.remove("recent_bits").and_then(|b| b.as_u64()) {
                    let answers: Vec<Value> = (0..n).map(|i| json!({"satisfied": bits >> i & 1 == 1})).collect();
                    m.insert("recent_newest_first".into(), answers.into());
                }
            }
            _ => {}
        }
        Value::Object(m)
    }

    /// The low-CSAT window's buckets held, newest first, and its episode.
    fn csat_window(&self, raw: Value) -> Value {
        let Value::Object(mut w) = raw else { return raw };
        let head = w.remove("head").and_then(|h| h.as_i64()).filter(|h| *h != i64::MIN);
        let (answers, satisfied) = (w.remove("answers").unwrap_or_default(), w.remove("satisfied").unwrap_or_default());
        let n = care_core::detect::csat_low::BUCKETS as i64;
        let buckets: Vec<Value> = head
            .into_iter()
            .flat_map(|h| (0..n).map(move |i| h - i))
            .filter_map(|b| {
                let slot = b.rem_euclid(n) as usize;
                let a = answers.get(slot)?.as_u64()?;
                (a > 0).then(|| json!({"bucket": rfc3339(b * self.csat_bucket_ms), "answers": a, "satisfied": satisfied.get(slot).cloned().unwrap_or_default()}))
            })
            .collect();
        w.insert("buckets".into(), buckets.into());
        Value::Object(w)
    }

    /// Every `…_ms` field, at any depth, as RFC 3339 without the suffix;
    /// every `…_bucket` field as the time its bucket starts.
    fn times(&self, v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        if let Some(name) = k.strip_suffix("_ms").filter(|_| v.is_i64() || v.is_null()) {
                            (name.to_string(), v.as_i64().map(rfc3339).into())
                        } else if k.ends_with("_bucket") && v.is_i64() {
                            (k, v.as_i64().map(|b| rfc3339(self.buckets.start_ms(b))).into())
                        } else {
                            (k, self.times(v))
                        }
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| self.times(v)).collect()),
            v => v,
        }
    }
}

/// The recent `event_id` fingerprints, oldest first, with their events' times.
fn recent_ids(ids: &Value, secs: &Value, next: u64) -> Value {
    let len = ids.as_array().map_or(0, Vec::len);
    (0..len)
        .map(|i| (i + next as usize) % len)
        .filter_map(|i| {
            let id = ids.get(i)?.as_u64().filter(|id| *id != 0)?;
            let at = secs.get(i).and_then(Value::as_i64).filter(|s| *s > 0).map(|s| rfc3339(s * 1000));
            Some(json!({"fingerprint": id, "event_time": at}))
        })
        .collect()
}

/// Writes a task's meta line and its customers' lines (only `customer` if given).
pub fn write_task(view: &View, engine: &Engine, customer: Option<&str>, w: &mut dyn Write) -> std::io::Result<()> {
    let task = engine.id().to_string();
    if customer.is_none() {
        serde_json::to_writer(&mut *w, &json!({"task": task, "meta": view.meta(&engine.meta())}))?;
        w.write_all(b"\n")?;
    }
    for c in engine.dump().iter().filter(|c| customer.is_none_or(|id| &*c.id == id)) {
        serde_json::to_writer(&mut *w, &json!({"task": task, "customer": view.customer(c)}))?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Restores the tasks of `partitions` (default: every partition of the
/// changelog) and writes their state; with `customer`, only that customer
/// (found on the partition murmur2 gives it).
///
/// # Errors
/// Kafka unreachable, the changelog missing, or a record that cannot be read.
pub fn run(cfg: &Config, partitions: Option<Vec<i32>>, customer: Option<&str>, out: &mut dyn Write) -> anyhow::Result<()> {
    let topic = cfg.kafka.changelog();
    // As `run` reaches it: a wait says so, and a TLS or SASL failure is named.
    let md = crate::shell::admin::first_contact(cfg)?;
    let count = md.topics().iter().find(|t| t.name() == topic && t.error().is_none()).map(|t| t.partitions().len() as i32).filter(|n| *n > 0);
    let count = count.ok_or_else(|| anyhow!("changelog topic {topic:?} does not exist on {}", cfg.kafka.brokers))?;
    let partitions = match (partitions, customer) {
        (Some(ps), _) => ps,
        (None, Some(id)) => vec![care_core::partition::for_key(id.as_bytes(), count)],
        (None, None) => (0..count).collect(),
    };
    let rules = Arc::new(Rules::new(cfg));
    let view = View::new(cfg);
    for p in partitions {
        if !(0..count).contains(&p) {
            return Err(anyhow!("--partition {p}: changelog {topic:?} has partitions 0..{count}"));
        }
        let mut engine = Engine::new(rules.clone(), TaskId::source(p));
        let mut restore = Restore::begin(cfg, engine.id(), Vec::new(), None)?;
        let no_faults = crate::shell::faults::Faults::default();
        while !restore.step(&mut engine, Duration::from_millis(500), &no_faults)? {}
        write_task(&view, &engine, customer, out)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
