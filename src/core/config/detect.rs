//! The `[detect.*]` tables: one per detector, with defaults and validation.

use serde::{Deserialize, Serialize};

use super::{invalid, yes, ConfigError};

/// Detector thresholds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    #[serde(default)]
    pub decline: DeclineConfig,
    #[serde(default)]
    pub silence: SilenceConfig,
    #[serde(default)]
    pub dormancy: DormancyConfig,
}

/// Silence / overdue: quiet for longer than the customer's own rate makes
/// plausible.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At most this many false alerts per 1,000 steady customer-months if
    /// gaps were exponential at the customer's rate (replaces a per-gap
    /// quantile, which at 1.5 events a day raised 0.45 a customer-month).
    #[serde(default = "default_silence_false_alerts")]
    pub false_alerts_per_1000_customer_months: f64,
    /// Fewer lifetime activity events than this: never overdue.
    #[serde(default = "default_silence_min_events")]
    pub min_events: u32,
    /// Less history (first seen to last activity) than this: never overdue.
    #[serde(default = "default_silence_min_history_days")]
    pub min_history_days: u32,
    /// Never overdue after less quiet than this, however busy the customer.
    /// A week by default: any 7 days hold one whole weekly cycle, so a quiet
    /// weekend cannot make a steady customer look overdue (busy customers'
    /// declines are caught sooner by the decline detector anyway).
    #[serde(default = "default_silence_min_gap_secs")]
    pub min_gap_secs: u64,
}

fn default_silence_false_alerts() -> f64 {
    0.05
}
fn default_silence_min_events() -> u32 {
    10
}
fn default_silence_min_history_days() -> u32 {
    28
}
fn default_silence_min_gap_secs() -> u64 {
    7 * 86_400
}

impl Default for SilenceConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// How activity decline is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclineMethod {
    /// A CUSUM on each sealed bucket's count against the customer's own
    /// rate; false alerts are a setting (`false_alerts_per_1000_customer_months`).
    Sequential,
    /// The recent window against the baseline window, with a per-check
    /// significance test (`io.care.activity_decline.v1`).
    Window,
}

/// Activity decline: recent rate significantly below the customer's baseline.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `sequential` (the default) or `window` (the per-check test of
    /// `io.care.activity_decline.v1`, for configs that rely on it).
    #[serde(default = "default_decline_method")]
    pub method: DeclineMethod,
    /// Sequential: how many false alerts per 1,000 steady customer-months
    /// the threshold allows at most (Lorden's bound: CUSUM threshold
    /// h = ln(average run length in buckets)).
    #[serde(default = "default_false_alerts")]
    pub false_alerts_per_1000_customer_months: f64,
    /// Sequential: the drop the statistic is tuned to detect fastest.
    #[serde(default = "default_design_drop")]
    pub design_drop: f64,
    /// Sequential: customers whose baseline is below this many events per
    /// bucket are not judged (silence covers them).
    #[serde(default = "default_min_baseline_rate")]
    pub min_baseline_rate: f64,
    /// Complete buckets in the recent window.
    #[serde(default = "default_recent_buckets")]
    pub recent_buckets: u16,
    /// Complete buckets in the baseline, just before the recent window.
    #[serde(default = "default_baseline_buckets")]
    pub baseline_buckets: u16,
    /// Fewer baseline events than this: never a decline (too little data).
    #[serde(default = "default_min_baseline_events")]
    pub min_baseline_events: u32,
    /// Open when recent ÷ expected is at most this ...
    #[serde(default = "default_open_ratio")]
    pub open_ratio: f64,
    /// ... and P(this few recent events | unchanged rate) is below this
    /// (conditional binomial test; it runs daily, so keep it small).
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// Resolve when recent ÷ frozen expected is back to at least this.
    #[serde(default = "default_resolve_ratio")]
    pub resolve_ratio: f64,
    /// Buckets after an episode closes during which no new one opens.
    #[serde(default = "default_cooldown_buckets")]
    pub cooldown_buckets: u16,
}

fn default_decline_method() -> DeclineMethod {
    DeclineMethod::Sequential
}
fn default_false_alerts() -> f64 {
    0.3
}
fn default_design_drop() -> f64 {
    0.7
}
fn default_min_baseline_rate() -> f64 {
    0.5
}
fn default_recent_buckets() -> u16 {
    7
}
fn default_baseline_buckets() -> u16 {
    21
}
fn default_min_baseline_events() -> u32 {
    20
}
fn default_open_ratio() -> f64 {
    0.5
}
fn default_significance() -> f64 {
    0.001
}
fn default_resolve_ratio() -> f64 {
    0.8
}
fn default_cooldown_buckets() -> u16 {
    7
}

impl Default for DeclineConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// Dormancy: no activity for a long time → reactivation trigger.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DormancyConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days after the last activity at which a customer turns dormant.
    #[serde(default = "default_after_days")]
    pub after_days: u16,
    /// Lifetime spend at which the score's monetary part reaches 63% (1 − 1/e).
    #[serde(default = "default_monetary_scale")]
    pub monetary_scale: f64,
}

fn default_monetary_scale() -> f64 {
    100.0
}

fn default_after_days() -> u16 {
    60
}

impl Default for DormancyConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl DetectConfig {
    /// Checks every detector's keys, naming the first bad one.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_decline()?;
        let s = &self.silence;
        if !(s.false_alerts_per_1000_customer_months > 0.0 && s.false_alerts_per_1000_customer_months <= 1000.0) {
            return Err(invalid("detect.silence.false_alerts_per_1000_customer_months", "must be in (0, 1000]"));
        }
        if s.min_events < 2 {
            return Err(invalid("detect.silence.min_events", "must be at least 2 (a rate needs a gap)"));
        }
        if self.dormancy.after_days == 0 {
            return Err(invalid("detect.dormancy.after_days", "must be at least 1"));
        }
        if !(self.dormancy.monetary_scale > 0.0) {
            return Err(invalid("detect.dormancy.monetary_scale", "must be greater than 0"));
        }
        Ok(())
    }

    fn validate_decline(&self) -> Result<(), ConfigError> {
        let d = &self.decline;
        let key = |k: &str| format!("detect.decline.{k}");
        if d.recent_buckets == 0 || d.baseline_buckets == 0 {
            return Err(invalid(key("recent_buckets"), "and baseline_buckets must be at least 1"));
        }
        if u32::from(d.recent_buckets) + u32::from(d.baseline_buckets) > 1_000 {
            return Err(invalid(key("baseline_buckets"), "plus recent_buckets must be at most 1000"));
        }
        if !(0.0..1.0).contains(&d.open_ratio) {
            return Err(invalid(key("open_ratio"), "must be in [0, 1)"));
        }
        if !(d.open_ratio..=1.0).contains(&d.resolve_ratio) {
            return Err(invalid(key("resolve_ratio"), "must be in [open_ratio, 1]"));
        }
        if !(d.significance > 0.0 && d.significance < 1.0) {
            return Err(invalid(key("significance"), "must be in (0, 1)"));
        }
        if !(d.false_alerts_per_1000_customer_months > 0.0 && d.false_alerts_per_1000_customer_months <= 1000.0) {
            return Err(invalid(key("false_alerts_per_1000_customer_months"), "must be in (0, 1000]"));
        }
        if !(d.design_drop >= 0.1 && d.design_drop <= 0.99) {
            return Err(invalid(key("design_drop"), "must be in [0.1, 0.99]"));
        }
        if !(d.min_baseline_rate > 0.0 && d.min_baseline_rate.is_finite()) {
            return Err(invalid(key("min_baseline_rate"), "must be greater than 0"));
        }
        Ok(())
    }
}
