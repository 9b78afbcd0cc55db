//! Activity decline: a customer's recent activity falls significantly below
//! their own baseline.
//!
//! Windows, in buckets, relative to the bucket `now` falls in (never counted,
//! it is still filling): recent = the `recent_buckets` complete buckets before
//! it, baseline = the `baseline_buckets` before those. They never overlap.
//!
//! Enter: the customer was seen before the baseline began, the baseline holds
//! at least `min_baseline_events`, recent ≤ `open_ratio` × expected, and a
//! significance test says so little is unlikely by chance (P < `significance`),
//! which keeps low-volume customers from flapping. The test is the exact
//! conditional test of two Poisson rates: given n events in both windows and
//! an unchanged rate, the recent count is Binomial(n, recent share of time).
//! Testing against the baseline as if it were exact would flag a large share
//! of steady customers, whose baseline is itself a noisy count. The expected
//! count is then frozen. Exit: recent ≥ `resolve_ratio` × frozen expected, then a cooldown
//! of `cooldown_buckets` during which no new episode opens.

use serde::Serialize;

use crate::config::DeclineConfig;
use crate::detect::stats::binomial_cdf;
use crate::detect::{ActivityEvent, Detector, DetectorId, Moment, Signal};
use crate::event::{Kind, KindSet};
use crate::state::codec::StateBlock;
use crate::state::Customer;
use crate::wire::{put_zigzag, CodecError, Reader};

/// A detector episode: normal → open → cooldown → normal.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Episode {
    #[default]
    Normal,
    /// Opened by the trigger at `episode_ms`; `expected` is the frozen
    /// baseline expectation for the recent window.
    Open { episode_ms: i64, expected: f32 },
    /// No new episode before bucket `until`.
    Cooldown {
        #[serde(rename = "until_bucket")]
        until: i64,
    },
}

/// The decline episode's changelog block; the window and the sequential
/// methods share it.
pub(crate) const EPISODE_BLOCK: StateBlock = StateBlock { id: 1, version: 1, name: "decline episode", encode: encode_episode, decode: decode_episode };

fn encode_episode(c: &Customer, out: &mut Vec<u8>) {
    match c.decline {
        Episode::Normal => {}
        Episode::Open { episode_ms, expected } => {
            out.push(1);
            put_zigzag(out, episode_ms);
            out.extend_from_slice(&expected.to_le_bytes());
        }
        Episode::Cooldown { until } => {
            out.push(2);
            put_zigzag(out, until);
        }
    }
}

fn decode_episode(c: &mut Customer, _version: u8, p: &mut Reader<'_>) -> Result<(), CodecError> {
    c.decline = match p.u8("episode tag")? {
        0 => Episode::Normal,
        1 => Episode::Open { episode_ms: p.zigzag("episode_ms")?, expected: p.f32_le("expected")? },
        2 => Episode::Cooldown { until: p.zigzag("cooldown until")? },
        tag => return Err(CodecError::Corrupt(format!("unknown episode tag {tag}"))),
    };
    Ok(())
}

/// Thresholds, copied from config once.
#[derive(Debug, Clone)]
pub struct Params {
    pub recent_buckets: i64,
    pub baseline_buckets: i64,
    pub min_baseline_events: u32,
    pub open_ratio: f64,
    pub significance: f64,
    pub resolve_ratio: f64,
    pub cooldown_buckets: i64,
    pub kinds: KindSet,
}

impl Params {
    pub fn new(cfg: &DeclineConfig, kinds: KindSet) -> Params {
        Params {
            recent_buckets: i64::from(cfg.recent_buckets),
            baseline_buckets: i64::from(cfg.baseline_buckets),
            min_baseline_events: cfg.min_baseline_events,
            open_ratio: cfg.open_ratio,
            significance: cfg.significance,
            resolve_ratio: cfg.resolve_ratio,
            cooldown_buckets: i64::from(cfg.cooldown_buckets),
            kinds,
        }
    }

    /// Buckets of history the detector reads, plus the one filling now.
    pub fn window_width(&self) -> usize {
        (self.recent_buckets + self.baseline_buckets + 1) as usize
    }
}

/// The activity decline detector.
#[derive(Debug, Clone)]
pub struct Decline(pub Params);

impl Decline {
    fn check(&self, c: &mut Customer, at: Moment) -> Option<Signal> {
        if at.superseded {
            return None;
        }
        let first = at.buckets.of(c.first_seen_ms);
        evaluate(&self.0, c, first, at.buckets.of(at.now_ms), at.trigger_ms)
    }
}

impl Detector for Decline {
    fn id(&self) -> DetectorId {
        DetectorId::Decline
    }

    fn on_activity(&self, c: &mut Customer, at: Moment, _: ActivityEvent, out: &mut Vec<Signal>) {
        out.extend(self.check(c, at));
    }

    fn on_timer(&self, c: &mut Customer, at: Moment, out: &mut Vec<Signal>) {
        out.extend(self.check(c, at));
    }

    /// The next bucket boundary, while the customer has enough history to
    /// decline or an episode is in progress: windows move only there.
    fn next_deadline(&self, c: &Customer, at: Moment) -> Option<i64> {
        let now = at.buckets.of(at.now_ms);
        (!at.superseded && is_candidate(&self.0, c, now)).then(|| at.buckets.start_ms(now + 1))
    }

    fn is_open(&self, c: &Customer) -> bool {
        matches!(c.decline, Episode::Open { .. })
    }

    fn supersede(&self, c: &mut Customer) {
        c.decline = Episode::Normal;
    }
}

/// The figures behind a decline decision, carried in the alert payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub recent_events: u32,
    pub baseline_events: u32,
    pub expected_events: f64,
    pub ratio: f64,
    pub p_value: f64,
    /// Per activity kind: (kind, recent events, baseline events).
    pub by_kind: Vec<(Kind, u32, u32)>,
}

/// Whether the customer needs a bucket-boundary check: they have enough
/// history to decline, or an episode is in progress.
pub fn is_candidate(p: &Params, c: &Customer, now_bucket: i64) -> bool {
    c.decline != Episode::Normal || c.activity.sum(now_bucket - p.recent_buckets - p.baseline_buckets, now_bucket, p.kinds) >= p.min_baseline_events
}

/// Runs the state machine at `now_bucket` for a trigger at `trigger_ms`
/// (the event's time or the timer's deadline).
pub fn evaluate(p: &Params, c: &mut Customer, first_seen_bucket: i64, now_bucket: i64, trigger_ms: i64) -> Option<Signal> {
    if let Episode::Cooldown { until } = c.decline {
        if now_bucket < until {
            return None;
        }
        c.decline = Episode::Normal;
    }
    let recent_from = now_bucket - p.recent_buckets;
    let baseline_from = recent_from - p.baseline_buckets;
    let recent = c.activity.sum(recent_from, now_bucket, p.kinds);
    match c.decline {
        Episode::Open { episode_ms, expected } => {
            let expected = f64::from(expected);
            if f64::from(recent) < p.resolve_ratio * expected {
                return None;
            }
            c.decline = Episode::Cooldown { until: now_bucket + p.cooldown_buckets };
            let report = report(p, c, recent, expected, now_bucket);
            Some(Signal::DeclineResolved { episode_ms, at_ms: trigger_ms, report })
        }
        _ => {
            if first_seen_bucket > baseline_from {
                return None; // not observed over the whole baseline yet
            }
            let baseline = c.activity.sum(baseline_from, recent_from, p.kinds);
            if baseline < p.min_baseline_events {
                return None;
            }
            let expected = f64::from(baseline) * p.recent_buckets as f64 / p.baseline_buckets as f64;
            if f64::from(recent) > p.open_ratio * expected || p_value(p, recent, baseline) >= p.significance {
                return None;
            }
            c.decline = Episode::Open { episode_ms: trigger_ms, expected: expected as f32 };
            let report = report(p, c, recent, expected, now_bucket);
            Some(Signal::DeclineOpened { episode_ms: trigger_ms, report })
        }
    }
}

/// P(recent ≤ observed) if the rate had not changed, conditional on the
/// total over both windows.
fn p_value(p: &Params, recent: u32, baseline: u32) -> f64 {
    let share = p.recent_buckets as f64 / (p.recent_buckets + p.baseline_buckets) as f64;
    binomial_cdf(recent, recent.saturating_add(baseline), share)
}

fn report(p: &Params, c: &Customer, recent: u32, expected: f64, now_bucket: i64) -> Report {
    let recent_from = now_bucket - p.recent_buckets;
    let baseline_from = recent_from - p.baseline_buckets;
    let by_kind = p
        .kinds
        .iter()
        .map(|k| (k, c.activity.sum_kind(recent_from, now_bucket, k), c.activity.sum_kind(baseline_from, recent_from, k)))
        .collect();
    Report {
        recent_events: recent,
        baseline_events: c.activity.sum(baseline_from, recent_from, p.kinds),
        expected_events: expected,
        ratio: if expected > 0.0 { f64::from(recent) / expected } else { 1.0 },
        p_value: p_value(p, recent, c.activity.sum(baseline_from, recent_from, p.kinds)),
        by_kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Customer;

    fn params() -> Params {
        Params::new(&DeclineConfig::default(), KindSet::ALL)
    }

    /// A customer with `per_day` clicks on each of `days` days starting at day 0.
    fn steady(p: &Params, days: i64, per_day: u32) -> Customer {
        let mut c = Customer::new("c".into(), 0, p.window_width());
        for d in 0..days {
            for _ in 0..per_day {
                c.activity.add(d, Kind::Click);
            }
        }
        c
    }

    #[test]
    fn steady_customer_never_declines() {
        let p = params();
        let mut c = steady(&p, 40, 3);
        assert_eq!(evaluate(&p, &mut c, 0, 40, 0), None);
    }

    #[test]
    fn a_stop_opens_once_then_resolves_on_recovery() {
        let p = params();
        let mut c = steady(&p, 28, 3); // active days 0..28, silent from day 28
        // Day 30: recent = days 23..30 → 5 active days of 3 = 15 of 21 expected: not yet.
        assert_eq!(evaluate(&p, &mut c, 0, 30, 1), None);
        // Day 33: recent = days 26..33 → 6 events of 21 expected: ratio 0.29, p ≈ 0.0002.
        let opened = evaluate(&p, &mut c, 0, 33, 2).expect("opens");
        let Signal::DeclineOpened { episode_ms, report } = opened else { panic!("{opened:?}") };
        assert_eq!(episode_ms, 2);
        assert_eq!((report.recent_events, report.baseline_events), (6, 63));
        assert!((report.expected_events - 21.0).abs() < 1e-9);
        assert!(report.p_value < 0.01);
        assert_eq!(evaluate(&p, &mut c, 0, 34, 3), None, "one alert per episode");
        // Activity comes back: 20 clicks in days 34..41.
        for d in 34..41 {
            for _ in 0..3 {
                c.activity.add(d, Kind::Click);
            }
        }
        let resolved = evaluate(&p, &mut c, 0, 41, 4).expect("resolves");
        assert!(matches!(resolved, Signal::DeclineResolved { episode_ms: 2, at_ms: 4, .. }), "{resolved:?}");
        assert_eq!(c.decline, Episode::Cooldown { until: 48 });
    }

    #[test]
    fn low_volume_customers_are_not_judged() {
        let p = params();
        let mut c = steady(&p, 28, 0);
        for d in (0..21).step_by(2) {
            c.activity.add(d, Kind::Login); // 11 baseline events < 20
        }
        assert_eq!(evaluate(&p, &mut c, 0, 35, 0), None);
    }

    #[test]
    fn customers_newer_than_the_baseline_are_not_judged() {
        let p = params();
        // Active days 0..28 then silent; at day 40 the baseline starts on day 12.
        let mut c = steady(&p, 28, 5);
        assert!(evaluate(&p, &mut c, 12, 40, 0).is_some(), "seen since the baseline began: judged");
        let mut c = steady(&p, 28, 5);
        assert_eq!(evaluate(&p, &mut c, 13, 40, 0), None, "first seen inside the baseline: not judged");
    }
}
