//! The CARE scorecard of one customer: what `/customers/{id}` returns and
//! what the profiles topic carries (`crate::profile`).

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::config::Config;
use crate::detect::registry::Enabled;
use crate::detect::tiers::{self, Rfm, Tier, Tiers};
use crate::detect::{dormancy, purchases};
use crate::model::value::Figures;
use crate::model::TimeUnit;
use crate::event::{Kind, KindSet};
use crate::detect::registry::REGISTRY;
use crate::state::{Customer, Episode};
use crate::time::{Buckets, Date, Time};

/// A read-only view of a customer's state, with the CARE figures derived.
/// Fields here and in the structs below are in alphabetical order:
/// serialised as they stand they give the sorted keys of every other
/// output, without building a JSON value first. A profile is rendered on
/// the hot path, so nothing here takes a heap allocation of its own but
/// the calibration date of a fit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scorecard {
    /// `normal`, `open` or `cooldown`.
    pub activity_decline: &'static str,
    pub activity_events: u32,
    /// The partition's stream time the figures are as of.
    pub as_of: Option<Time>,
    pub csat: Csat,
    #[serde(serialize_with = "as_str")]
    pub customer_id: Arc<str>,
    pub dormant_since: Option<Time>,
    pub first_seen_at: Time,
    pub last_activity_at: Option<Time>,
    pub last_seen_at: Named<Time, { Kind::TRACKED }>,
    pub nps: Nps,
    /// The customer's open episodes, by detector: when each began (its
    /// episode id, the `ce_time` of its `opened`).
    pub open_episodes: Named<Option<Time>, { REGISTRY.len() }>,
    pub orders: Orders,
    pub partition: i32,
    pub reactivation_score: Option<f64>,
    /// Activity events in the current bucket and the 7 before it, per kind.
    pub recent_activity: Named<u32, { Kind::COUNT }>,
    /// RFM scores (1 to 5) on the day of `as_of`, by the thresholds of
    /// `[detect.tiers]` (on or off), without hysteresis; `None` before the
    /// first order.
    pub rfm: Option<Rfm>,
    /// When the customer turned overdue, while silent.
    pub silent_since: Option<Time>,
    /// The loyalty tier, with `detect.tiers` on; `None` before the first
    /// order.
    pub tier: Option<Tier>,
    /// Purchase days and, with a fit loaded (`[value] params`), the value
    /// figures at the stream time; `None` before the first order.
    pub value: Option<Value>,
}

fn as_str<S: Serializer>(id: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id)
}

/// A map of at most `N` entries under static names, serialised in name
/// order: the scorecard's small maps without a heap node each.
#[derive(Debug, Clone, Copy)]
pub struct Named<V, const N: usize> {
    len: usize,
    items: [(&'static str, V); N],
}

impl<V: Copy + Default, const N: usize> Named<V, N> {
    fn new() -> Self {
        Named { len: 0, items: [("", V::default()); N] }
    }

    /// Adds `name` in its place in name order; past `N` entries (no
    /// caller has more) the rest are left out.
    fn insert(&mut self, name: &'static str, v: V) {
        if self.len == N {
            return;
        }
        let at = self.items[..self.len].partition_point(|(n, _)| *n < name);
        self.items.copy_within(at..self.len, at + 1);
        self.items[at] = (name, v);
        self.len += 1;
    }
}

impl<V, const N: usize> Named<V, N> {
    pub fn get(&self, name: &str) -> Option<&V> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, V)> {
        self.items[..self.len].iter()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<V: Copy + Default, const N: usize> FromIterator<(&'static str, V)> for Named<V, N> {
    fn from_iter<I: IntoIterator<Item = (&'static str, V)>>(it: I) -> Self {
        let mut m = Named::new();
        for (name, v) in it {
            m.insert(name, v);
        }
        m
    }
}

impl<V: Serialize, const N: usize> Serialize for Named<V, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len))?;
        for (name, v) in &self.items[..self.len] {
            m.serialize_entry(name, v)?;
        }
        m.end()
    }
}

/// A buyer's purchase-day summary and value figures.
#[derive(Debug, Clone)]
pub struct Value {
    pub purchase_days: u32,
    /// Calendar dates in the configured timezone.
    pub first_purchase_day: Option<Date>,
    pub last_purchase_day: Option<Date>,
    /// The day count may be off (seeded from lifetime figures, or an order
    /// far out of order): see the README.
    pub approximate: bool,
    /// The models' figures at the stream time's day, flattened in; absent
    /// without a fit.
    pub figures: Option<Figures>,
    /// The date by which another purchase is more likely than not.
    pub expected_next_purchase: Option<Date>,
    /// The fit the figures come from: its last day and time unit.
    pub fit_calibration_end: Option<String>,
    pub time_unit: Option<TimeUnit>,
}

/// One of [`Value`]'s fields, as its JSON needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Float(Option<f64>),
    Int(u32),
    Bool(bool),
    Date(Option<Date>),
    Text(Option<&'a str>),
    Unit(Option<TimeUnit>),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Float(v) => v.serialize(s),
            Field::Int(v) => v.serialize(s),
            Field::Bool(v) => v.serialize(s),
            Field::Date(v) => v.serialize(s),
            Field::Text(v) => v.serialize(s),
            Field::Unit(v) => v.serialize(s),
        }
    }
}

impl Value {
    /// Its fields in key order, the figures' keys sorted in with the rest
    /// (in byte order, as a JSON object's keys are everywhere else), the
    /// figures' left out without a fit: the one order its `Serialize` and
    /// the profile's writer both walk.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&'static str, Field<'_>)> {
        let f = self.figures;
        let fig = |get: fn(&Figures) -> Field<'static>| f.as_ref().map(get);
        [
            ("T", fig(|f| Field::Float(Some(f.t)))),
            ("approximate", Some(Field::Bool(self.approximate))),
            ("expected_avg_value", fig(|f| Field::Float(f.expected_avg_value))),
            ("expected_next_purchase", Some(Field::Date(self.expected_next_purchase))),
            ("expected_next_purchase_in_days", fig(|f| Field::Float(f.expected_next_purchase_in_days))),
            ("expected_purchases", fig(|f| Field::Float(f.expected_purchases))),
            ("first_purchase_day", Some(Field::Date(self.first_purchase_day))),
            ("fit_calibration_end", Some(Field::Text(self.fit_calibration_end.as_deref()))),
            ("frequency", fig(|f| Field::Int(f.frequency))),
            ("historic_clv", fig(|f| Field::Float(f.historic_clv))),
            ("last_purchase_day", Some(Field::Date(self.last_purchase_day))),
            ("monetary_value", fig(|f| Field::Float(Some(f.monetary_value)))),
            ("p_alive", fig(|f| Field::Float(f.p_alive))),
            ("predicted_clv", fig(|f| Field::Float(f.predicted_clv))),
            ("purchase_days", Some(Field::Int(self.purchase_days))),
            ("recency", fig(|f| Field::Float(Some(f.recency)))),
            ("time_unit", Some(Field::Unit(self.time_unit))),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.fields() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Orders {
    pub average_order_value: Option<f64>,
    pub count: u32,
    pub first_at: Option<Time>,
    pub last_at: Option<Time>,
    pub total_amount: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Csat {
    /// satisfied ÷ responses × 100.
    pub csat_pct: Option<f64>,
    pub responses: u32,
    pub satisfied: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Nps {
    pub detractors: u32,
    /// The latest answer by event time (0 to 10), and when it was given.
    pub last: Option<u8>,
    pub last_at: Option<Time>,
    /// % promoters − % detractors.
    pub nps: Option<f64>,
    pub promoters: u32,
    pub responses: u32,
}

/// What a scorecard reads from the config: dormancy's parameters for the
/// reactivation score, when dormancy is enabled, and the fit and horizon
/// of the value figures, when one is loaded.
#[derive(Debug, Clone)]
pub struct CardParams {
    dormancy: Option<dormancy::Params>,
    value: Option<purchases::ValueContext>,
    days: Buckets,
    tiers: Tiers,
    buckets: Buckets,
    activity: KindSet,
}

impl CardParams {
    pub fn new(cfg: &Config) -> CardParams {
        CardParams {
            tiers: Tiers::new(cfg),
            buckets: Buckets { bucket_ms: i64::from(cfg.engine.bucket_secs) * 1000, offset_ms: cfg.engine.utc_offset_ms() },
            activity: cfg.engine.activity_set(),
            dormancy: cfg.detect.dormancy.enabled.then(|| dormancy::Params::from_config(cfg)),
            // With purchase days off the scorecard still shows figures, from
            // a summary seeded from the lifetime order figures.
            value: cfg.value.fitted.clone().map(|fit| purchases::ValueContext { fit, horizon: cfg.value.horizon(), days: purchases::day_buckets(cfg) }),
            days: purchases::day_buckets(cfg),
        }
    }
}

/// The calendar date of a day number (days since 1970-01-01).
pub fn date(day: i64) -> Option<String> {
    Date::of_day(day).map(Date::text)
}

fn value(c: &Customer, stream_ms: Option<i64>, p: &CardParams, history: Option<purchases::PurchaseHistory>) -> Option<Value> {
    let at = stream_ms.unwrap_or(c.first_seen_ms);
    let (h, figures) = match &p.value {
        Some(v) => v.figures(c, at).map(|(h, f)| (h, Some(f)))?,
        None => (history?, None),
    };
    let day = p.days.of(at).max(h.days.last_day);
    Some(Value {
        purchase_days: h.days.days,
        first_purchase_day: Date::of_day(h.days.first_day),
        last_purchase_day: Date::of_day(h.days.last_day),
        approximate: h.approximate,
        expected_next_purchase: figures.and_then(|f| f.expected_next_purchase_in_days).and_then(|d| Date::of_day(day.saturating_add(d.ceil() as i64))),
        figures,
        fit_calibration_end: p.value.as_ref().map(|v| v.fit.calibration_end.clone()),
        time_unit: p.value.as_ref().map(|v| v.fit.unit),
    })
}

fn pct(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole) * 100.0)
}

#[path = "scorecard_json.rs"]
mod json;

impl Scorecard {
    /// Appends the scorecard's JSON to `out`: the bytes of
    /// `serde_json::to_vec(self)`, written faster (profiles are rendered
    /// on the hot path).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        json::write(self, out);
    }

    /// The scorecard as of `stream_ms` (the task's stream time, or the
    /// moment a profile is sent), with the open episodes of `detectors`.
    pub fn new(c: &Customer, partition: i32, stream_ms: Option<i64>, d: &CardParams, detectors: &Enabled) -> Scorecard {
        let (b, activity) = (d.buckets, d.activity);
        let now_bucket = b.of(stream_ms.unwrap_or(c.first_seen_ms));
        let o = &c.orders;
        let last_nps = crate::profile::last_nps(c);
        let history = purchases::history(c, d.days);
        let recent = c.activity.sums(now_bucket - 7, now_bucket + 1);
        Scorecard {
            customer_id: Arc::clone(&c.id),
            partition,
            as_of: stream_ms.map(Time),
            first_seen_at: Time(c.first_seen_ms),
            last_activity_at: c.last_activity_ms.map(Time),
            last_seen_at: Kind::TRACKED_ALL.iter().filter_map(|k| c.last_seen_ms[k.idx()].map(|t| (k.as_str(), Time(t)))).collect(),
            recent_activity: activity.iter().map(|k| (k.as_str(), if k.is_tracked() { recent[k.idx()] } else { 0 })).collect(),
            activity_events: c.activity_events,
            orders: Orders {
                count: o.count,
                total_amount: o.total_amount,
                average_order_value: (o.count > 0).then(|| o.total_amount / f64::from(o.count)),
                first_at: o.first_ms.map(Time),
                last_at: o.last_ms.map(Time),
            },
            csat: Csat { responses: c.csat.responses, satisfied: c.csat.satisfied, csat_pct: pct(c.csat.satisfied, c.csat.responses) },
            nps: Nps {
                responses: c.nps.responses,
                promoters: c.nps.promoters,
                detractors: c.nps.detractors,
                nps: pct(c.nps.promoters, c.nps.responses).zip(pct(c.nps.detractors, c.nps.responses)).map(|(p, d)| p - d),
                last: last_nps.map(|(score, _)| score),
                last_at: last_nps.map(|(_, at)| Time(at)),
            },
            activity_decline: match c.decline {
                Episode::Normal => "normal",
                Episode::Open { .. } => "open",
                Episode::Cooldown { .. } => "cooldown",
            },
            silent_since: c.silent_since.map(Time),
            dormant_since: c.dormant_since.map(Time),
            reactivation_score: d.dormancy.as_ref().map(|p| dormancy::score(p, c, stream_ms.unwrap_or(c.first_seen_ms)).score),
            value: value(c, stream_ms, d, history),
            tier: c.detectors.get::<tiers::Current>(tiers::ID.0).map(|t| t.tier),
            rfm: history.map(|h| d.tiers.scores(&h, d.days.of(stream_ms.unwrap_or(c.first_seen_ms)))),
            open_episodes: detectors.with_episodes().filter(|(_, x)| x.is_open(c)).map(|(_, x)| (x.id().0, x.open_since(c).map(Time))).collect(),
        }
    }
}
