//! Special functions the models need: ln Γ from libm (the C library's
//! lgamma, ported), its derivative ψ for the fit's gradients, and the Gauss hypergeometric function ₂F₁, which no
//! maintained Rust crate we could use offers for real arguments (statrs
//! has none), written here and checked against scipy's `hyp2f1` (what
//! lifetimes calls).

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0, which the
/// likelihoods' gradients need (libm has none; statrs would be a large
/// dependency for one function): the recurrence ψ(x) = ψ(x + 1) − 1/x
/// up to x ≥ 10, then the asymptotic series to the x⁻¹⁰ term, whose
/// remainder there is below 10⁻¹⁴.
pub fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0)))));
    acc + x.ln() - 0.5 / x - series
}

/// Most terms summed before ₂F₁ gives up. The models call it with
/// z = t / (α + T + t) < 1; the terms shrink like zⁿ, so z = 0.99 needs
/// about 4,000 terms and only z within 10⁻⁴ of 1 comes near the cap.
const MAX_TERMS: u32 = 200_000;

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by
/// its power series Σ (a)ₙ(b)ₙ / ((c)ₙ n!) zⁿ, summed until the rest of
/// the series cannot change the sum. NaN when c is a non-positive integer
/// (the series is undefined), z is outside [0, 1), or the series does not
/// settle within [`MAX_TERMS`].
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(0.0..1.0).contains(&z) || (c <= 0.0 && c == c.round()) {
        return f64::NAN;
    }
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..MAX_TERMS {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return f64::NAN;
        }
        if let Some(q) = tail_ratio(a, b, c, n + 1.0, z) {
            if term.abs() * q / (1.0 - q) <= f64::EPSILON * 0.5 * sum.abs() {
                return sum;
            }
        }
    }
    f64::NAN
}

/// A bound q < 1 on the ratio of every term after the n-th to the one
/// before, if there is one: then the rest of the series is at most
/// |term| · q / (1 − q). With a + n, b + n and c + n positive, each of
/// (x + n) / (y + n) moves monotonically towards 1 as n grows, so it stays
/// below max(1, its value now); of the two ways to pair the four factors,
/// the tighter bound is taken. That ends the sum as soon as the terms
/// fall, however large the parameters (b and c in the millions for a
/// population that almost never drops out).
fn tail_ratio(a: f64, b: f64, c: f64, n: f64, z: f64) -> Option<f64> {
    if a + n <= 0.0 || b + n <= 0.0 || c + n <= 0.0 {
        return None;
    }
    let most = |x: f64, y: f64| ((x + n) / (y + n)).max(1.0);
    let q = (most(a, c) * most(b, 1.0)).min(most(a, 1.0) * most(b, c)) * z;
    (q < 1.0).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs()
    }

    /// Reference values from scipy.special.hyp2f1 (scipy 1.12).
    #[test]
    fn hyp2f1_matches_scipy() {
        let cases = [
            (0.5, 1.5, 2.5, 0.3, 1.1080625510569324),
            (2.243, 4.426, 4.219, 0.55, 6.63567177217648),
            (0.243, 2.426, 2.219, 0.9, 1.9476311698186006),
            (1.243, 3.426, 3.219, 0.97, 129.51294874700378),
            (3.0, -2.5, 0.7, 0.4, -0.6714325659941099),
            (10.2, 12.4, 11.6, 0.8, 44993755.038493946),
            (0.2, 0.3, -0.4, 0.5, 0.824457219142477),
        ];
        for (a, b, c, z, want) in cases {
            let got = hyp2f1(a, b, c, z);
            assert!(close(got, want, 1e-12), "2F1({a}, {b}; {c}; {z}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn hyp2f1_closed_forms() {
        for z in [0.0, 0.1, 0.5, 0.9, 0.99] {
            // 2F1(1, 1; 2; z) = −ln(1 − z) / z
            let want = if z == 0.0 { 1.0 } else { -(1.0f64 - z).ln() / z };
            assert!(close(hyp2f1(1.0, 1.0, 2.0, z), want, 1e-12), "z {z}");
            // 2F1(a, b; b; z) = (1 − z)^−a
            assert!(close(hyp2f1(0.7, 2.3, 2.3, z), (1.0 - z).powf(-0.7), 1e-12), "z {z}");
        }
    }

    #[test]
    fn hyp2f1_settles_with_parameters_in_the_millions() {
        // 2F1(a, b; b; z) = (1 − z)^−a: the BG/NBD call of a population
        // that almost never drops out (b and c near 3.4 million).
        for z in [0.1, 0.5, 0.93] {
            assert!(close(hyp2f1(1.6, 3.4e6, 3.4e6, z), (1.0 - z).powf(-1.6), 1e-12), "z {z}");
        }
        // scipy.special.hyp2f1 (scipy 1.12).
        assert!(close(hyp2f1(13.6, 3_389_185.3, 3_416_479.4, 0.8), 2090270728.114967, 1e-10));
        assert!(close(hyp2f1(0.243, 2.426, 2.219, 0.999), 11.09650428868049, 1e-10));
    }

    #[test]
    fn hyp2f1_outside_its_domain_is_nan() {
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan());
        assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_nan());
        assert!(hyp2f1(1.0, 1.0, 2.0, -0.1).is_nan());
    }

    /// Reference values from scipy.special.digamma (scipy 1.12).
    #[test]
    fn digamma_matches_scipy() {
        let cases = [
            (0.243, -4.351093864423211),
            (0.5, -1.9635100260214235),
            (1.0, -0.5772156649015329),
            (2.426, 0.6662079149687962),
            (3.219, 1.005775131956445),
            (6.25, 1.750453526883736),
            (10.0, 2.251752589066721),
            (37.5, 3.6109483445963386),
            (0.001, -1000.5755719318103),
            (250.3, 5.520661265424219),
        ];
        for (x, want) in cases {
            let got = digamma(x);
            assert!((got - want).abs() <= 1e-13 * want.abs().max(1.0), "ψ({x}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn ln_gamma_known_values() {
        // scipy.special.gammaln
        assert!(close(ln_gamma(0.243), 1.3180435846996699, 1e-14));
        assert!(close(ln_gamma(25.5), 56.38916764371994, 1e-14));
        assert!(close(ln_beta(2.0, 3.0), (1.0f64 / 12.0).ln(), 1e-14));
    }
}
