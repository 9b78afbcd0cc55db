//! Small statistics the detectors need, with known-answer tests.

/// P(X ≤ k) for X ~ Poisson(λ): the chance of seeing at most `k` events when
/// `lambda` were expected. Summed in log space so large λ does not underflow;
/// above a few thousand terms a normal approximation with continuity
/// correction is accurate to well under the significance levels used.
pub fn poisson_cdf(k: u32, lambda: f64) -> f64 {
    if !(lambda > 0.0) {
        return 1.0;
    }
    if k > 5_000 {
        let z = (f64::from(k) + 0.5 - lambda) / lambda.sqrt();
        return normal_cdf(z);
    }
    // log of term i: -λ + i·ln λ − ln i!
    let ln_l = lambda.ln();
    let mut ln_term = -lambda;
    let mut ln_sum = ln_term;
    for i in 1..=k {
        ln_term += ln_l - f64::from(i).ln();
        ln_sum = log_add(ln_sum, ln_term);
    }
    ln_sum.exp().min(1.0)
}

/// P(X ≤ k) for X ~ Binomial(n, q).
///
/// Used as the conditional test of two Poisson rates: given `n` events over
/// both windows and equal rates, the count falling in a window holding a
/// share `q` of the time is Binomial(n, q). Unlike a test against a fixed
/// expectation, this accounts for the baseline itself being a noisy estimate.
pub fn binomial_cdf(k: u32, n: u32, q: f64) -> f64 {
    if k >= n || q <= 0.0 {
        return 1.0;
    }
    if q >= 1.0 {
        return 0.0;
    }
    let (nf, ln_q, ln_1q) = (f64::from(n), q.ln(), (1.0 - q).ln());
    if k > 5_000 {
        let (mean, sd) = (nf * q, (nf * q * (1.0 - q)).sqrt());
        return normal_cdf((f64::from(k) + 0.5 - mean) / sd);
    }
    // log of term i: ln C(n, i) + i·ln q + (n − i)·ln(1 − q)
    let mut ln_term = nf * ln_1q;
    let mut ln_sum = ln_term;
    for i in 1..=k {
        ln_term += (nf - f64::from(i) + 1.0).ln() - f64::from(i).ln() + ln_q - ln_1q;
        ln_sum = log_add(ln_sum, ln_term);
    }
    ln_sum.exp().min(1.0)
}

/// P(X ≤ k) for X ~ BetaBinomial(n, α, β): the count of successes in `n`
/// trials whose success chance is itself uncertain, Beta(α, β). With α and
/// β one plus a customer's earlier successes and failures, it is the
/// chance of their next `n` answers being this bad or worse if nothing
/// changed, the uncertainty of their own earlier rate included.
pub fn beta_binomial_cdf(k: u32, n: u32, alpha: f64, beta: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if !(alpha > 0.0 && beta > 0.0) {
        return f64::NAN;
    }
    // ln P(X = i) = ln C(n, i) + ln B(i + α, n − i + β) − ln B(α, β)
    let ln_b = |a: f64, b: f64| crate::model::special::ln_beta(a, b);
    let (nf, ln_b0) = (f64::from(n), ln_b(alpha, beta));
    let mut ln_choose = 0.0;
    let mut ln_sum = f64::NEG_INFINITY;
    for i in 0..=k {
        let fi = f64::from(i);
        if i > 0 {
            ln_choose += (nf - fi + 1.0).ln() - fi.ln();
        }
        ln_sum = log_add(ln_sum, ln_choose + ln_b(fi + alpha, nf - fi + beta) - ln_b0);
    }
    ln_sum.exp().min(1.0)
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// Standard normal CDF via the complementary error function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// erfc with the Numerical Recipes Chebyshev fit (relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn poisson_known_answers() {
        // Values of ppois(k, lambda), summed exactly in log space.
        assert!(close(poisson_cdf(0, 1.0), 0.367_879_44, 1e-8));
        assert!(close(poisson_cdf(2, 3.0), 0.423_190_081, 1e-8));
        assert!(close(poisson_cdf(5, 10.0), 0.067_085_96, 1e-8));
        assert!(close(poisson_cdf(1, 14.0), 1.247_293_08e-5, 1e-11));
        assert!(close(poisson_cdf(900, 1000.0), 6.977_673e-4, 1e-9));
        assert_eq!(poisson_cdf(3, 0.0), 1.0);
    }

    #[test]
    fn binomial_known_answers() {
        // Exact sums: P(X ≤ 2; 10, 0.5) = 56/1024, P(X ≤ 0; 3, 0.25) = 27/64.
        assert!(close(binomial_cdf(2, 10, 0.5), 56.0 / 1024.0, 1e-12));
        assert!(close(binomial_cdf(0, 3, 0.25), 27.0 / 64.0, 1e-12));
        assert!(close(binomial_cdf(12, 96, 0.25), 0.001_984_066_8, 1e-9));
        assert_eq!(binomial_cdf(5, 5, 0.3), 1.0);
    }

    #[test]
    fn beta_binomial_known_answers() {
        // scipy.stats.betabinom.cdf (scipy 1.12).
        assert!(close(beta_binomial_cdf(0, 3, 11.0, 1.0), 0.002_747_252_747_252_747_5, 1e-14));
        assert!(close(beta_binomial_cdf(1, 3, 11.0, 1.0), 0.032_967_032_967_032_975, 1e-14));
        assert!(close(beta_binomial_cdf(2, 5, 18.0, 4.0), 0.062_420_188_507_144_966, 1e-13));
        assert!(close(beta_binomial_cdf(7, 20, 3.5, 2.25), 0.155_267_284_665_118_7, 1e-13));
        assert_eq!(beta_binomial_cdf(3, 3, 2.0, 2.0), 1.0);
    }

    #[test]
    fn normal_known_answers() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        assert!(close(normal_cdf(-2.326_348), 0.01, 1e-6));
    }

    proptest! {
        /// A CDF: within [0, 1] and non-decreasing in k, non-increasing in λ.
        #[test]
        fn poisson_cdf_is_monotone(k in 0u32..300, lambda in 0.01f64..500.0) {
            let p = poisson_cdf(k, lambda);
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert!(poisson_cdf(k + 1, lambda) >= p - 1e-12);
            prop_assert!(poisson_cdf(k, lambda * 1.1) <= p + 1e-12);
        }
    }
}
