//! Purchase-churn quality, measured the way a probability threshold should
//! be: on buyers drawn from BG/NBD itself ([`super::fit_population`]), whose
//! dropouts are known, streamed as orders through the same engine `run`
//! uses with the true parameters loaded.
//!
//! - *precision*: of the buyers alerted, the share who had truly dropped out
//!   by the alert (a dropout happens right after a repeat purchase);
//! - *recall within 30 and 60 days*: of the buyers who dropped out with
//!   enough repeat purchases to be judged, early enough to be watched for
//!   90 days, the share alerted within 30 (60) days after their last
//!   purchase;
//! - *lead time*: for those caught, days from the alert to the day they
//!   would turn dormant (last purchase + `detect.dormancy.after_days`), the
//!   head start the alert gives over a win-back trigger.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use care_core::config::Config;
use care_core::engine::{Input, Routed, Rules};
use care_core::model::bgnbd::BgNbd;
use care_core::model::gamma_gamma::GammaGamma;
use care_core::model::value::Fitted;
use care_core::model::TimeUnit;
use serde::Serialize;

use super::fit_population::simulate;

const DAY_MS: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z: the population's day 0.
const START_MS: i64 = 1_735_689_600_000;
/// Days after a dropout a buyer is watched before the horizon ends.
const WATCH_DAYS: f64 = 90.0;

/// A population to measure on.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
    pub customers: usize,
    /// Each buyer's first purchase falls uniformly in the first
    /// `horizon_days − 60` days; the stream ends at `horizon_days`.
    pub horizon_days: f64,
    pub seed: u64,
}

/// What the alerts scored against the truth.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub buyers: usize,
    /// Alerts (`opened`), a buyer's later ones included.
    pub alerted: usize,
    /// Alerts about buyers who had dropped out by then.
    pub true_alerts: usize,
    pub precision: f64,
    /// Dropouts with at least `min_repeat_purchases` repeats, watched ≥ 90 days.
    pub eligible_dropouts: usize,
    pub recall_30_days: f64,
    pub recall_60_days: f64,
    /// Alerted at any time after the dropout, before the horizon.
    pub recall_ever: f64,
    pub median_days_after_dropout: Option<f64>,
    pub median_lead_days_before_dormancy: Option<f64>,
}

/// Runs the population through an engine with `cfg` and the true
/// parameters loaded. `None` when a parameter is invalid.
pub fn run(cfg: &Config, opts: &Options) -> Option<Report> {
    let buyers = simulate(&opts.bgnbd, &opts.gamma_gamma, opts.customers, (60.0, opts.horizon_days), opts.seed)?;
    let mut cfg = cfg.clone();
    // Orders are these buyers' only activity, so dormancy (which supersedes
    // the alert) would always come 60 days after the last one; the lead
    // time is measured against the day it would have come instead.
    cfg.detect.dormancy.enabled = false;
    cfg.value.fitted = Some(Arc::new(Fitted { bgnbd: opts.bgnbd, gamma_gamma: opts.gamma_gamma, unit: TimeUnit::Days, calibration_end: String::new() }));
    let end_ms = START_MS + (opts.horizon_days * DAY_MS as f64) as i64;
    // (time, customer, amount) of every order.
    let mut orders: Vec<(i64, usize, f64)> = Vec::new();
    for (i, b) in buyers.iter().enumerate() {
        let born = end_ms - (b.t * DAY_MS as f64) as i64;
        orders.extend(b.purchases.iter().map(|&(at, value)| (born + (at * DAY_MS as f64) as i64, i, value)));
    }
    orders.sort_unstable_by_key(|o| (o.0, o.1));
    let alerts = stream(&cfg, &orders, end_ms);
    Some(score(&cfg, &buyers, &alerts, end_ms))
}

/// Each buyer's purchase-churn alerts, by index.
fn stream(cfg: &Config, orders: &[(i64, usize, f64)], end_ms: i64) -> HashMap<usize, Vec<i64>> {
    let mut engine = Routed::new(Arc::new(Rules::new(cfg)), 4);
    let source = engine.rules().canonical_source();
    let (mut out, mut line, mut first) = (Vec::new(), String::new(), HashMap::new());
    let mut take = |out: &mut Vec<care_core::render::OutputRecord>| {
        for r in out.drain(..) {
            if r.header("ce_type") == Some("io.care.purchase_churn_risk.v1") && r.status() == Some(care_core::detect::Status::Opened) {
                let id = r.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()).and_then(|k| k.strip_prefix("b-")?.parse().ok());
                if let Some(i) = id {
                    first.entry(i).or_insert_with(Vec::new).push(r.trigger_ms);
                }
            }
        }
    };
    for (n, &(ts, i, amount)) in orders.iter().enumerate() {
        line.clear();
        let _ = write!(line, r#"{{"customer_id":"b-{i}","kind":"order","ts":{ts},"amount":{amount:.2}}}"#);
        let input = Input { source, partition: 0, offset: n as i64, key: None, payload: line.as_bytes() };
        engine.process(&input, i64::MAX / 4, &mut out);
        take(&mut out);
    }
    engine.advance(end_ms, &mut out);
    take(&mut out);
    first
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

fn score(cfg: &Config, buyers: &[super::fit_population::Customer], alerts: &HashMap<usize, Vec<i64>>, end_ms: i64) -> Report {
    let days = |ms: i64| ms as f64 / DAY_MS as f64;
    let end = days(end_ms);
    let min_repeat = cfg.detect.purchase_churn.min_repeat_purchases as usize;
    let after_days = f64::from(cfg.detect.dormancy.after_days);
    let mut r = Report { buyers: buyers.len(), alerted: alerts.values().map(Vec::len).sum(), ..Report::default() };
    let (mut within_30, mut within_60, mut ever, mut after, mut lead) = (0, 0, 0, Vec::new(), Vec::new());
    for (i, b) in buyers.iter().enumerate() {
        let born = end - b.t;
        let dropout = b.dropped.then(|| born + b.purchases.last().map_or(0.0, |p| p.0));
        let times: Vec<f64> = alerts.get(&i).into_iter().flatten().map(|&ms| days(ms)).collect();
        r.true_alerts += times.iter().filter(|a| dropout.is_some_and(|d| d <= **a)).count();
        let Some(d) = dropout.filter(|d| b.purchases.len() > min_repeat && *d + WATCH_DAYS <= end) else { continue };
        r.eligible_dropouts += 1;
        // Caught by the first alert after the dropout (an earlier one was
        // about a pause the buyer came back from).
        if let Some(a) = times.iter().copied().find(|a| *a >= d) {
            within_30 += usize::from(a - d <= 30.0);
            within_60 += usize::from(a - d <= 60.0);
            ever += 1;
            after.push(a - d);
            lead.push(d + after_days - a);
        }
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    r.precision = share(r.true_alerts, r.alerted);
    (r.recall_30_days, r.recall_60_days, r.recall_ever) = (share(within_30, r.eligible_dropouts), share(within_60, r.eligible_dropouts), share(ever, r.eligible_dropouts));
    (r.median_days_after_dropout, r.median_lead_days_before_dormancy) = (median(after), median(lead));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_mostly_name_buyers_who_left_and_the_threshold_trades_precision_for_recall() {
        let opts = Options {
            bgnbd: BgNbd { r: 1.0, alpha: 20.0, a: 0.8, b: 2.5 },
            gamma_gamma: GammaGamma { p: 6.0, q: 3.8, v: 15.0 },
            customers: 4_000,
            horizon_days: 730.0,
            seed: 11,
        };
        let at = |theta: f64| run(&Config::parse(&format!("[detect.purchase_churn]\np_alive_threshold = {theta}\n"), "t").unwrap(), &opts).unwrap();
        let r = at(0.3);
        assert!(r.alerted > 500 && r.eligible_dropouts > 500, "{r:?}");
        assert!(r.precision > 0.6, "most alerted buyers had left: {r:?}");
        assert!(r.recall_60_days > 0.3 && r.recall_60_days >= r.recall_30_days && r.recall_ever >= r.recall_60_days, "{r:?}");
        let eager = at(0.5);
        assert!(eager.precision < r.precision && eager.recall_30_days > r.recall_30_days, "a higher threshold alerts sooner and more wrongly: {eager:?} vs {r:?}");
        assert_eq!(at(0.3).true_alerts, r.true_alerts, "deterministic per seed");
    }
}
