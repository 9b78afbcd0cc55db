//! Customer lifetime value, predicted from the models and historic from a
//! customer's own record.

use super::bgnbd::BgNbd;
use super::summary::{PurchaseDays, Summary};
use super::TimeUnit;

/// Days in the year the discount rate and the historic frequency refer to.
pub const DAYS_PER_YEAR: f64 = 365.0;

/// Predicted CLV over `horizon_days`: Σₖ m̂ · (E[X(kΔ)] − E[X((k−1)Δ)]) /
/// (1 + d)^(kΔ / 1 year), over monthly steps Δ (the horizon cut into
/// whole months, Δ = horizon / round(horizon / (365/12)), at least one
/// step). Each step's purchases are discounted once: summing the
/// cumulative figure instead, as lifetimes' `customer_lifetime_value`
/// does, counts early purchases again in every later step. With d = 0
/// this is m̂ · E[X(horizon)].
pub fn predicted_clv(bg: &BgNbd, s: &Summary, unit: TimeUnit, expected_value: f64, horizon_days: f64, discount_yearly: f64) -> f64 {
    if horizon_days <= 0.0 {
        return 0.0;
    }
    if discount_yearly == 0.0 {
        // The increments telescope: one ₂F₁ instead of twelve.
        return expected_value * bg.expected_purchases(unit.of_days(horizon_days), s.frequency, s.recency, s.t);
    }
    let steps = (horizon_days / (DAYS_PER_YEAR / 12.0)).round().max(1.0);
    let step_days = horizon_days / steps;
    let mut total = 0.0;
    let mut before = 0.0;
    for k in 1..=steps as u32 {
        let days = step_days * f64::from(k);
        let upto = bg.expected_purchases(unit.of_days(days), s.frequency, s.recency, s.t);
        total += expected_value * (upto - before) / (1.0 + discount_yearly).powf(days / DAYS_PER_YEAR);
        before = upto;
    }
    total
}

/// How long a customer is expected to stay, for historic CLV.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lifespan {
    /// A fixed number of years.
    Years(f64),
    /// From a yearly retention rate r in [0, 1): 1 / (1 − r) years, the
    /// mean of the geometric number of years a customer stays.
    Retention(f64),
}

impl Lifespan {
    pub fn years(self) -> f64 {
        match self {
            Lifespan::Years(y) => y,
            Lifespan::Retention(r) => 1.0 / (1.0 - r),
        }
    }
}

/// Historic CLV = average order value × purchases per year × lifespan in
/// years.
pub fn historic_clv(average_order_value: f64, purchases_per_year: f64, lifespan: Lifespan) -> f64 {
    average_order_value * purchases_per_year * lifespan.years()
}

/// A customer's own average order value (every purchase day's value, the
/// first included) and purchases per year: purchase days over the years
/// from the first purchase day to the calibration end, counted as at least
/// one year so a customer seen for a week is not extrapolated to fifty
/// purchases a year.
pub fn historic_terms(p: &PurchaseDays, calibration_end_day: i64) -> (f64, f64) {
    let days = f64::from(p.days);
    let observed_years = (((calibration_end_day - p.first_day) as f64 + 1.0) / DAYS_PER_YEAR).max(1.0);
    (p.total_value() / days, days / observed_years)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn historic_clv_known_answers() {
        assert_eq!(historic_clv(150.0, 4.0, Lifespan::Years(3.0)), 1800.0);
        assert_eq!(historic_clv(100.0, 2.0, Lifespan::Years(2.0)), 400.0);
        assert_eq!(Lifespan::Retention(0.75).years(), 4.0);
        assert_eq!(Lifespan::Retention(0.5).years(), 2.0);
    }

    #[test]
    fn historic_terms_from_a_record() {
        // Four purchase days worth 600 over two years.
        let mut p = PurchaseDays::new(0, 100.0);
        p.add(200, 200.0);
        p.add(400, 150.0);
        p.add(700, 150.0);
        let (aov, per_year) = historic_terms(&p, 729);
        assert_eq!(aov, 150.0);
        assert!((per_year - 2.0).abs() < 1e-12);
        // One purchase last week: one a year, not fifty.
        assert_eq!(historic_terms(&PurchaseDays::new(0, 10.0), 6), (10.0, 1.0));
    }

    #[test]
    fn undiscounted_clv_is_value_times_expected_purchases() {
        let bg = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
        let s = Summary { frequency: 3, recency: 30.0, t: 38.0, monetary_value: 20.0 };
        let e = bg.expected_purchases(365.0 / 7.0, 3, 30.0, 38.0);
        let clv = predicted_clv(&bg, &s, TimeUnit::Weeks, 25.0, 365.0, 0.0);
        assert!((clv - 25.0 * e).abs() < 1e-9 * clv);
        // The monthly sum telescopes to the same figure.
        let nearly = predicted_clv(&bg, &s, TimeUnit::Weeks, 25.0, 365.0, 1e-12);
        assert!((nearly - clv).abs() < 1e-9 * clv, "{nearly} vs {clv}");
        let discounted = predicted_clv(&bg, &s, TimeUnit::Weeks, 25.0, 365.0, 0.1);
        // Every step discounted by at most 10 %, the first by 1.1^(1/12).
        assert!(discounted < clv && discounted > clv / 1.1, "{discounted} vs {clv}");
    }
}
