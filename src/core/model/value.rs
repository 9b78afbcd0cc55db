//! A customer's value figures from a fitted model: what `care fit
//! --customers` writes at the calibration end, and what the stream
//! computes at its own time for every customer (`/customers/{id}`,
//! `replay --scorecards`). One function for both, so they cannot differ.
//!
//! The figures decay with time alone (T grows while nothing happens), so
//! the stream never stores them: it keeps the purchase-day summary and
//! derives them whenever they are read or emitted.

use serde::{Deserialize, Serialize};

use super::bgnbd::BgNbd;
use super::clv::{historic_clv, historic_terms, predicted_clv, Lifespan};
use super::gamma_gamma::GammaGamma;
use super::summary::PurchaseDays;
use super::TimeUnit;

/// The parameters of a fit, as `care fit` writes them (`--output`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub bgnbd: BgNbd,
    pub gamma_gamma: GammaGamma,
    /// The unit alpha is in, and the figures' recency and T.
    pub unit: TimeUnit,
    /// The last day of the data the fit saw (`YYYY-MM-DD`), shown beside
    /// the figures so a reader knows how old the model is.
    pub calibration_end: String,
}

/// The parts of `care fit`'s output a fit is read from.
#[derive(Deserialize)]
struct FitFile {
    bgnbd: FileBgNbd,
    gamma_gamma: FileGammaGamma,
    time_unit: TimeUnit,
    calibration_end: String,
}

#[derive(Deserialize)]
struct FileBgNbd {
    r: Value,
    alpha: Value,
    a: Value,
    b: Value,
}

#[derive(Deserialize)]
struct FileGammaGamma {
    p: Value,
    q: Value,
    v: Value,
}

#[derive(Deserialize)]
struct Value {
    value: f64,
}

impl Fitted {
    /// Reads `care fit`'s JSON output.
    ///
    /// # Errors
    /// Not that JSON, or a parameter that is not a finite number above 0;
    /// the message names the field.
    pub fn parse(json: &str) -> Result<Fitted, String> {
        let f: FitFile = serde_json::from_str(json).map_err(|e| format!("not the JSON `care fit --output` writes: {e}"))?;
        let params = [
            ("bgnbd.r", f.bgnbd.r.value),
            ("bgnbd.alpha", f.bgnbd.alpha.value),
            ("bgnbd.a", f.bgnbd.a.value),
            ("bgnbd.b", f.bgnbd.b.value),
            ("gamma_gamma.p", f.gamma_gamma.p.value),
            ("gamma_gamma.q", f.gamma_gamma.q.value),
            ("gamma_gamma.v", f.gamma_gamma.v.value),
        ];
        if let Some((name, v)) = params.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            return Err(format!("{name} is {v}: every parameter must be a finite number above 0"));
        }
        let [r, alpha, a, b, p, q, v] = params.map(|(_, v)| v);
        Ok(Fitted { bgnbd: BgNbd { r, alpha, a, b }, gamma_gamma: GammaGamma { p, q, v }, unit: f.time_unit, calibration_end: f.calibration_end })
    }
}

/// What the predictions look ahead to and how historic CLV counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// Days of `expected_purchases` and `predicted_clv`.
    pub days: f64,
    /// Yearly discount rate of `predicted_clv`.
    pub discount_rate_yearly: f64,
    pub lifespan: Lifespan,
}

/// One customer's value figures at one day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// x: repeat purchase days.
    pub frequency: u32,
    /// t_x, in the fit's unit.
    pub recency: f64,
    /// T: first purchase day to the day of the figures, in the fit's unit.
    #[serde(rename = "T")]
    pub t: f64,
    /// Mean value of the repeat purchase days (0 without repeats).
    pub monetary_value: f64,
    /// BG/NBD's probability that the customer is still a buyer; 1 for a
    /// customer with no repeat purchase, by the model's construction.
    pub p_alive: Option<f64>,
    /// Purchases expected over the horizon.
    pub expected_purchases: Option<f64>,
    /// Gamma-Gamma's expected value of a purchase; the population mean for
    /// a customer without repeats.
    pub expected_avg_value: Option<f64>,
    pub predicted_clv: Option<f64>,
    /// Days from the figures' day until the chance of another purchase
    /// reaches one half; `None` when P(alive) ≤ 0.5.
    pub expected_next_purchase_in_days: Option<f64>,
    pub historic_clv: Option<f64>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The figures of a customer with purchase days `p` at the end of day
/// `day` (T counts whole days from the first purchase day, as `care fit`
/// and lifetimes count it at a calibration end).
pub fn figures(f: &Fitted, h: &Horizon, p: &PurchaseDays, day: i64) -> Figures {
    let (bg, gg, unit) = (&f.bgnbd, &f.gamma_gamma, f.unit);
    let s = p.summary(day, unit);
    let p_alive = bg.p_alive(s.frequency, s.recency, s.t);
    let value = gg.expected_avg_value(s.frequency, s.monetary_value).and_then(finite);
    let (aov, per_year) = historic_terms(p, day);
    Figures {
        frequency: s.frequency,
        recency: s.recency,
        t: s.t,
        monetary_value: s.monetary_value,
        p_alive: finite(p_alive),
        expected_purchases: finite(bg.expected_purchases(unit.of_days(h.days), s.frequency, s.recency, s.t)),
        expected_avg_value: value,
        predicted_clv: value.and_then(|m| finite(predicted_clv(bg, &s, unit, m, h.days, h.discount_rate_yearly))),
        expected_next_purchase_in_days: bg.next_purchase_in(s.frequency, s.t, p_alive).map(|t| t * unit.days()).and_then(finite),
        historic_clv: finite(historic_clv(aov, per_year, h.lifespan)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDNOW_FIT: &str = r#"{"bgnbd":{"r":{"value":0.243,"std_err":0.01},"alpha":{"value":4.414,"std_err":null},"a":{"value":0.793,"std_err":0.1},
        "b":{"value":2.426,"std_err":0.3},"log_likelihood":-9582.4},"gamma_gamma":{"p":{"value":6.25},"q":{"value":3.74},"v":{"value":15.44}},
        "time_unit":"weeks","calibration_end":"1997-09-30","customers":2357}"#;

    #[test]
    fn a_fit_file_is_read_and_bad_parameters_are_named() {
        let f = Fitted::parse(CDNOW_FIT).unwrap();
        assert_eq!(f.bgnbd, BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 });
        assert_eq!((f.gamma_gamma.q, f.unit, f.calibration_end.as_str()), (3.74, TimeUnit::Weeks, "1997-09-30"));
        let bad = CDNOW_FIT.replace(r#""value":0.793"#, r#""value":-1"#);
        assert!(Fitted::parse(&bad).unwrap_err().contains("bgnbd.a is -1"));
        assert!(Fitted::parse("{}").unwrap_err().contains("care fit"));
    }

    #[test]
    fn figures_are_the_models_at_the_day_and_decay_with_time_alone() {
        let f = Fitted::parse(CDNOW_FIT).unwrap();
        let h = Horizon { days: 365.0, discount_rate_yearly: 0.0, lifespan: Lifespan::Years(3.0) };
        // Purchases on days 0, 14 and 35 worth 10, 20 and 40.
        let mut p = PurchaseDays::new(0, 10.0);
        p.add(14, 20.0);
        p.add(35, 40.0);
        let at = figures(&f, &h, &p, 70);
        assert_eq!((at.frequency, at.recency, at.t, at.monetary_value), (2, 5.0, 10.0, 30.0));
        let pa = f.bgnbd.p_alive(2, 5.0, 10.0);
        assert_eq!(at.p_alive, Some(pa));
        let m = f.gamma_gamma.expected_avg_value(2, 30.0).unwrap();
        assert_eq!(at.expected_avg_value, Some(m));
        assert!((at.predicted_clv.unwrap() - m * at.expected_purchases.unwrap()).abs() < 1e-9);
        // AOV 70/3 × 3 purchases a year (a history of under a year counts as one) × 3 years.
        assert!((at.historic_clv.unwrap() - 70.0 * 3.0).abs() < 1e-9);
        let later = figures(&f, &h, &p, 200);
        assert!(later.p_alive.unwrap() < pa, "P(alive) falls while nothing happens");
        assert!(later.predicted_clv.unwrap() < at.predicted_clv.unwrap());
        let once = figures(&f, &h, &PurchaseDays::new(0, 10.0), 300);
        assert_eq!(once.p_alive, Some(1.0), "no repeat: alive by construction");
        assert_eq!(once.expected_avg_value, f.gamma_gamma.population_mean());
    }
}
