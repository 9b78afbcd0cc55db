//! Gamma-Gamma (Fader, Hardie & Lee 2005b, "RFM and CLV"): the value of a
//! customer's purchases varies around their own mean, purchase values
//! ~ Gamma(p, ν), ν ~ Gamma(q, v) across customers; independent of the
//! purchase process. Fitted on repeaters only (x > 0, mean value > 0), as
//! lifetimes' `GammaGammaFitter` is.

use super::special::ln_gamma;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// Parameters from the fit's log-space vector `[ln p, ln q, ln v]`.
    pub fn from_log(u: &[f64]) -> GammaGamma {
        GammaGamma { p: u[0].exp(), q: u[1].exp(), v: u[2].exp() }
    }

    /// ln L of one repeater with x repeat purchases of mean value m > 0.
    pub fn log_likelihood(&self, x: u32, m: f64) -> f64 {
        self.ll_with(self.x_terms(x), x, m, m.ln())
    }

    /// The part of ln L that depends on x alone: ln Γ(px + q) − ln Γ(px)
    /// − ln Γ(q) + q ln v + px ln x. The fit computes it once per x.
    pub(crate) fn x_terms(&self, x: u32) -> f64 {
        let px = self.p * f64::from(x);
        ln_gamma(px + self.q) - ln_gamma(px) - ln_gamma(self.q) + self.q * self.v.ln() + px * f64::from(x).ln()
    }

    /// ln L given the x terms and ln m (precomputed by the fit).
    pub(crate) fn ll_with(&self, base: f64, x: u32, m: f64, ln_m: f64) -> f64 {
        let px = self.p * f64::from(x);
        base + (px - 1.0) * ln_m - (px + self.q) * (f64::from(x) * m + self.v).ln()
    }

    /// The population's mean purchase value, v·p / (q − 1); `None` when
    /// q ≤ 1 (the mean is infinite).
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.v * self.p / (self.q - 1.0))
    }

    /// E[M | x, m̄]: a weighted mean of the population mean and the
    /// customer's own mean, the weight p·x / (p·x + q − 1) growing with
    /// their repeat purchases; the population mean for x = 0. `None` when
    /// q ≤ 1.
    pub fn expected_avg_value(&self, x: u32, m: f64) -> Option<f64> {
        let pop = self.population_mean()?;
        let px = self.p * f64::from(x);
        let w = px / (px + self.q - 1.0);
        Some((1.0 - w) * pop + w * m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likelihood_by_hand() {
        // p = 2, q = 3, v = 4, x = 1, m = 5: ln Γ(5) − ln Γ(2) − ln Γ(3)
        // + 3 ln 4 + 1·ln 5 + 0 − 5 ln 9 = ln(24 / 2 · 64 · 5 / 59049).
        let gg = GammaGamma { p: 2.0, q: 3.0, v: 4.0 };
        let want = (24.0f64 / 2.0 * 64.0 * 5.0 / 59049.0).ln();
        assert!((gg.log_likelihood(1, 5.0) - want).abs() < 1e-12);
    }

    #[test]
    fn expected_value_shrinks_toward_the_population() {
        let gg = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
        let pop = gg.population_mean().unwrap();
        assert!((pop - 15.44 * 6.25 / 2.74).abs() < 1e-12);
        assert_eq!(gg.expected_avg_value(0, 0.0), Some(pop));
        // One repeat at 100: weight 6.25 / (6.25 + 2.74).
        let w = 6.25 / 8.99;
        assert!((gg.expected_avg_value(1, 100.0).unwrap() - ((1.0 - w) * pop + w * 100.0)).abs() < 1e-9);
        assert_eq!(GammaGamma { p: 1.0, q: 0.9, v: 1.0 }.expected_avg_value(1, 3.0), None);
    }
}
