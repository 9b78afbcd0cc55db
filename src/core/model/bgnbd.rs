//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
//! way"): while alive a customer buys at a Poisson rate λ ~ Gamma(r, α);
//! after each purchase they drop out with probability p ~ Beta(a, b).
//! Dropout only ever follows a purchase, so a customer with no repeat
//! purchase is alive with probability 1 whatever their age: consumers of
//! P(alive) must know that a one-time buyer from years ago shows 1.0.
//!
//! Formulas as lifetimes 0.11.3 implements them (`BetaGeoFitter`), with
//! the references of its docstrings: the likelihood (paper, section 7),
//! P(alive) (Hardie's note 021), the conditional expectation (eq. 10).

use super::special::{hyp2f1, ln_gamma};

/// The four BG/NBD parameters; alpha is in the fit's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// The parts of one customer's log-likelihood that depend on x alone;
/// the fit computes them once per distinct x.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XTerms {
    /// ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) − ln B(a, b).
    pub base: f64,
    /// ln(a / (b + x − 1)); unused for x = 0.
    pub ln_drop: f64,
}

impl BgNbd {
    /// Parameters from the fit's log-space vector `[ln r, ln α, ln a, ln b]`.
    pub fn from_log(u: &[f64]) -> BgNbd {
        BgNbd { r: u[0].exp(), alpha: u[1].exp(), a: u[2].exp(), b: u[3].exp() }
    }

    pub(crate) fn x_terms(&self, x: u32) -> XTerms {
        let (r, a, b) = (self.r, self.a, self.b);
        let xf = f64::from(x);
        let base = ln_gamma(r + xf) - ln_gamma(r) + r * self.alpha.ln() + ln_gamma(a + b) + ln_gamma(b + xf) - ln_gamma(b) - ln_gamma(a + b + xf);
        XTerms { base, ln_drop: if x > 0 { (a / (b + xf - 1.0)).ln() } else { 0.0 } }
    }

    /// The log-likelihood of one customer given its x-only terms.
    pub(crate) fn ll_with(&self, k: XTerms, x: u32, recency: f64, t: f64) -> f64 {
        self.ll_from_logs(k, x, (self.alpha + recency).ln(), (self.alpha + t).ln())
    }

    /// The same from ln(α + t_x) and ln(α + T), which the fit looks up
    /// per distinct value instead of computing per customer.
    pub(crate) fn ll_from_logs(&self, k: XTerms, x: u32, ln_alpha_recency: f64, ln_alpha_t: f64) -> f64 {
        let rx = self.r + f64::from(x);
        let a3 = -rx * ln_alpha_t;
        if x == 0 {
            return k.base + a3;
        }
        let a4 = k.ln_drop - rx * ln_alpha_recency;
        // ln(e^a3 + e^a4) without overflow.
        let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
        k.base + hi + (lo - hi).exp().ln_1p()
    }

    /// ln L of one customer with x repeat purchases, recency t_x and age T.
    pub fn log_likelihood(&self, x: u32, recency: f64, t: f64) -> f64 {
        self.ll_with(self.x_terms(x), x, recency, t)
    }

    /// P(alive | x, t_x, T): 1 for x = 0 (see the module doc).
    pub fn p_alive(&self, x: u32, recency: f64, t: f64) -> f64 {
        if x == 0 {
            return 1.0;
        }
        let xf = f64::from(x);
        let log_div = (self.r + xf) * ((self.alpha + t) / (self.alpha + recency)).ln() + (self.a / (self.b + xf - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// E[Y(t) | x, t_x, T]: expected repeat purchases in the next `horizon`
    /// time units. NaN only where ₂F₁ is (see [`hyp2f1`]); a = 1 exactly is
    /// a removable singularity the formula does not handle (nor does
    /// lifetimes').
    pub fn expected_purchases(&self, horizon: f64, x: u32, recency: f64, t: f64) -> f64 {
        self.expected_purchases_from(self.expected_purchases_if_alive(horizon, x, t), horizon, x, recency, t)
    }

    /// The expected purchases of a customer known to be alive (the
    /// expectation is this times P(alive)): it depends on x and T alone and
    /// holds the costly ₂F₁, so a caller predicting for many customers
    /// computes it once per (x, T) pair.
    pub fn expected_purchases_if_alive(&self, horizon: f64, x: u32, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let xf = f64::from(x);
        let (ha, hb, hc) = (r + xf, b + xf, a + b + xf - 1.0);
        let z = horizon / (alpha + t + horizon);
        let mut ln_hyp = hyp2f1(ha, hb, hc, z).ln();
        if !ln_hyp.is_finite() {
            // Euler's transformation, as lifetimes falls back to.
            ln_hyp = hyp2f1(hc - ha, hc - hb, hc, z).ln() + (hc - ha - hb) * (1.0 - z).ln();
        }
        let first = (a + b + xf - 1.0) / (a - 1.0);
        let second = 1.0 - (ln_hyp + (r + xf) * ((alpha + t) / (alpha + t + horizon)).ln()).exp();
        first * second
    }

    /// [`BgNbd::expected_purchases`] from
    /// [`BgNbd::expected_purchases_if_alive`], bit for bit.
    pub fn expected_purchases_from(&self, if_alive: f64, horizon: f64, x: u32, recency: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        let xf = f64::from(x);
        let denominator = if x > 0 { 1.0 + (self.a / (self.b + xf - 1.0)) * ((self.alpha + t) / (self.alpha + recency)).powf(self.r + xf) } else { 1.0 };
        if_alive / denominator
    }

    /// Time units from T until the probability of at least one more
    /// purchase reaches one half: P(alive) · (1 − ((α+T)/(α+T+t))^(r+x)) =
    /// 0.5, so t = (α + T)·[(1 − 0.5 / P(alive))^(−1/(r+x)) − 1]. `None`
    /// when P(alive) ≤ 0.5 (never reached).
    pub fn next_purchase_in(&self, x: u32, t: f64, p_alive: f64) -> Option<f64> {
        if p_alive <= 0.5 {
            return None;
        }
        let rx = self.r + f64::from(x);
        let wait = (self.alpha + t) * ((1.0 - 0.5 / p_alive).powf(-1.0 / rx) - 1.0);
        wait.is_finite().then_some(wait)
    }
}

#[cfg(test)]
#[path = "bgnbd_tests.rs"]
mod tests;
