//! The JSON payload of each signal: one struct per payload deriving
//! `Serialize`, its fields the schema's (`src/core/schemas/<ce_type>.json`).
//!
//! A payload is serialised through a `serde_json::Value`, whose objects
//! keep their keys sorted, so the bytes never depend on field order here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{rfc3339, round};
use crate::detect::{decline, dormancy, first_order, sequential, silence, Signal, Status};

/// What a payload reads from the config besides the signal.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct WindowInfo {
    pub bucket_secs: u32,
    pub recent_buckets: u16,
    pub baseline_buckets: u16,
}

/// The parts of every episode message.
#[derive(Serialize)]
struct Head<'a> {
    customer_id: &'a str,
    status: Status,
    at: String,
}

impl<'a> Head<'a> {
    fn new(customer: &'a str, s: &Signal) -> Head<'a> {
        Head { customer_id: customer, status: s.status(), at: rfc3339(s.trigger_ms()) }
    }
}

/// `io.care.activity_decline.v1`: the window test's figures.
#[derive(Serialize)]
struct WindowDecline<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    recent_events: u32,
    baseline_events: u32,
    expected_events: f64,
    ratio: f64,
    p_value: f64,
    window: WindowInfo,
    by_kind: BTreeMap<&'static str, RecentBaseline>,
}

#[derive(Serialize)]
struct RecentBaseline {
    recent: u32,
    baseline: u32,
}

/// `io.care.activity_decline.v2`: the sequential statistic's evidence.
#[derive(Serialize)]
struct SequentialDecline<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    method: &'static str,
    baseline_rate: f64,
    recent_events: u32,
    recent_rate: f64,
    drop: f64,
    statistic: f64,
    threshold: f64,
    window: WindowInfo,
    by_kind: BTreeMap<&'static str, Recent>,
}

#[derive(Serialize)]
struct Recent {
    recent: u32,
}

/// `io.care.silence.v1`.
#[derive(Serialize)]
struct Silence<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    episode_started_at: String,
    last_activity_at: String,
    days_silent: f64,
    rate_per_day: f64,
    expected_gap_days: f64,
}

/// `io.care.dormant.v1`: the reactivation trigger.
#[derive(Serialize)]
struct Dormant<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    last_activity_at: String,
    days_inactive: f64,
    reactivation_score: f64,
    score_components: ScoreComponents,
}

#[derive(Serialize)]
struct ScoreComponents {
    recency: f64,
    frequency: f64,
    monetary: f64,
    satisfaction: f64,
}

/// `io.care.reactivated.v1`.
#[derive(Serialize)]
struct Reactivated<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    dormant_since: String,
    days_away: f64,
}

/// The payload of `s` about `customer`.
pub(super) fn payload(window: WindowInfo, customer: &str, s: &Signal) -> Value {
    let head = Head::new(customer, s);
    let started = rfc3339(s.episode_ms());
    match s {
        Signal::DeclineOpened { report, .. } | Signal::DeclineResolved { report, .. } => to_value(window_decline(head, started, window, report)),
        Signal::SequentialOpened { evidence, .. } | Signal::SequentialResolved { evidence, .. } => {
            to_value(sequential_decline(head, started, window, evidence))
        }
        Signal::SilenceOpened { overdue, .. } | Signal::SilenceResolved { overdue, .. } => to_value(silence(head, started, overdue)),
        Signal::Dormant { episode_ms, last_activity_ms, score } => to_value(dormant(head, *episode_ms, *last_activity_ms, score)),
        Signal::Reactivated { days_away, .. } => to_value(Reactivated { head, dormant_since: started, days_away: round(*days_away, 3) }),
        Signal::FirstOrder { at_ms, first_seen_ms, amount } => to_value(first_order::Payload::new(customer, *at_ms, *first_seen_ms, *amount)),
    }
}

fn to_value(p: impl Serialize) -> Value {
    serde_json::to_value(p).expect("payloads serialise")
}

fn window_decline<'a>(head: Head<'a>, started: String, window: WindowInfo, r: &decline::Report) -> WindowDecline<'a> {
    WindowDecline {
        head,
        episode_started_at: started,
        recent_events: r.recent_events,
        baseline_events: r.baseline_events,
        expected_events: round(r.expected_events, 4),
        ratio: round(r.ratio, 4),
        p_value: r.p_value,
        window,
        by_kind: r.by_kind.iter().map(|&(k, recent, baseline)| (k.as_str(), RecentBaseline { recent, baseline })).collect(),
    }
}

fn sequential_decline<'a>(head: Head<'a>, started: String, window: WindowInfo, e: &sequential::Evidence) -> SequentialDecline<'a> {
    SequentialDecline {
        head,
        episode_started_at: started,
        method: "cusum",
        baseline_rate: round(e.baseline_rate, 4),
        recent_events: e.recent_events,
        recent_rate: round(e.recent_rate(), 4),
        drop: round(e.drop(), 4),
        statistic: round(e.statistic, 4),
        threshold: round(e.threshold, 4),
        window,
        by_kind: e.by_kind.iter().map(|&(k, recent)| (k.as_str(), Recent { recent })).collect(),
    }
}

fn silence<'a>(head: Head<'a>, started: String, o: &silence::Overdue) -> Silence<'a> {
    Silence {
        head,
        episode_started_at: started,
        last_activity_at: rfc3339(o.last_activity_ms),
        days_silent: round(o.days_silent, 3),
        rate_per_day: round(o.rate_per_day, 4),
        expected_gap_days: round(1.0 / o.rate_per_day.max(1e-9), 3),
    }
}

fn dormant<'a>(head: Head<'a>, episode_ms: i64, last_activity_ms: i64, score: &dormancy::Score) -> Dormant<'a> {
    Dormant {
        head,
        last_activity_at: rfc3339(last_activity_ms),
        days_inactive: round((episode_ms - last_activity_ms) as f64 / 86_400_000.0, 3),
        reactivation_score: round(score.score, 4),
        score_components: ScoreComponents {
            recency: round(score.recency, 4),
            frequency: round(score.frequency, 4),
            monetary: round(score.monetary, 4),
            satisfaction: round(score.satisfaction, 4),
        },
    }
}
