//! What the core's tests share: an engine over canonical lines, fed as a
//! task would be fed, and its outputs read back.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::{Engine, Input, Rules};
use crate::model::bgnbd::BgNbd;
use crate::model::gamma_gamma::GammaGamma;
use crate::model::value::Fitted;
use crate::model::TimeUnit;
use crate::render::OutputRecord;
use crate::task::TaskId;

pub const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z: canonical integer timestamps this large read as millis.
pub const T0: i64 = 1_767_225_600_000;
/// A wall clock far ahead of every test event: nothing is "from the future".
pub const FAR_FUTURE: i64 = i64::MAX / 4;

/// Task 0 with the config `cfg` (TOML; "" for the defaults).
pub fn engine(cfg: &str) -> Engine {
    engine_with(&config(cfg))
}

/// The config `cfg`, with profiles off unless it has a `[profiles]`
/// table: most tests look at signals, and profiles have tests of their own.
pub fn config(cfg: &str) -> Config {
    let off = if cfg.contains("[profiles]") { "" } else { "[profiles]\nenabled = false\n" };
    Config::parse(&format!("{off}{cfg}"), "test").unwrap()
}

/// Task 0 with a config already made.
pub fn engine_with(cfg: &Config) -> Engine {
    Engine::new(Arc::new(Rules::new(cfg)), TaskId::source(0))
}

/// A fit in days of a typical retail population (the fit bench's truth:
/// a few repeat purchases a year, most buyers gone within two years).
pub fn fit_in_days() -> Fitted {
    Fitted {
        bgnbd: BgNbd { r: 0.25, alpha: 28.0, a: 0.8, b: 2.5 },
        gamma_gamma: GammaGamma { p: 6.0, q: 3.8, v: 15.0 },
        unit: TimeUnit::Days,
        calibration_end: "2025-12-31".into(),
    }
}

/// The config `cfg` with [`fit_in_days`] loaded, as `[value] params` would.
pub fn with_fit(cfg: &str) -> Config {
    let mut c = config(cfg);
    c.value.fitted = Some(Arc::new(fit_in_days()));
    c
}

/// A canonical line at `T0 + ts_ms`, with `extra` fields (`,"csat":2`).
pub fn line(customer: &str, kind: &str, ts_ms: i64, extra: &str) -> String {
    format!(r#"{{"customer_id":"{customer}","kind":"{kind}","ts":{}{extra}}}"#, T0 + ts_ms)
}

/// Feeds canonical lines to the task, returning every output.
pub fn feed(e: &mut Engine, lines: &[String]) -> Vec<OutputRecord> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let input = Input { source: e.rules().canonical_source(), partition: 0, offset: i as i64, key: None, payload: l.as_bytes() };
        e.process(&input, FAR_FUTURE, &mut out);
    }
    out
}

/// The payloads of the outputs of one `ce_type`.
pub fn payloads(out: &[OutputRecord], ce_type: &str) -> Vec<serde_json::Value> {
    out.iter().filter(|r| r.header("ce_type") == Some(ce_type)).map(|r| serde_json::from_slice(&r.value).unwrap()).collect()
}
