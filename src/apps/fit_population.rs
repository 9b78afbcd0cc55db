//! A seeded population drawn from BG/NBD and Gamma-Gamma with known
//! parameters, for the parameter-recovery test and the `care fit` bench.
//!
//! Each customer is born T time units before the calibration end (T
//! uniform in a range), buys at once, then at Poisson rate λ ~ Gamma(r, α);
//! after each repeat purchase they drop out with probability
//! p ~ Beta(a, b) (the model's generative story, as lifetimes'
//! `beta_geometric_nbd_model` draws it). Each purchase is worth
//! Gamma(p_gg, ν) with ν ~ Gamma(q, v) per customer.

use care_core::model::bgnbd::BgNbd;
use care_core::model::gamma_gamma::GammaGamma;
use care_core::model::summary::Summary;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp, Gamma};

/// One simulated customer: T and each purchase's (time since the first
/// purchase, value), the first at 0.
#[derive(Debug, Clone)]
pub struct Customer {
    pub t: f64,
    pub purchases: Vec<(f64, f64)>,
    /// Dropped out right after the last purchase (before T); otherwise
    /// still alive at T.
    pub dropped: bool,
}

impl Customer {
    /// The summary in continuous time (no grouping per day).
    pub fn summary(&self) -> Summary {
        let x = self.purchases.len() as u32 - 1;
        let repeat: f64 = self.purchases[1..].iter().map(|p| p.1).sum();
        Summary { frequency: x, recency: self.purchases.last().map_or(0.0, |p| p.0), t: self.t, monetary_value: if x > 0 { repeat / f64::from(x) } else { 0.0 } }
    }
}

/// Draws `n` customers with ages T uniform in `ages`. `None` when a
/// parameter is not valid for its distribution.
pub fn simulate(bg: &BgNbd, gg: &GammaGamma, n: usize, ages: (f64, f64), seed: u64) -> Option<Vec<Customer>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rate = Gamma::new(bg.r, 1.0 / bg.alpha).ok()?;
    let drop = Beta::new(bg.a, bg.b).ok()?;
    let scale = Gamma::new(gg.q, 1.0 / gg.v).ok()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = rng.random_range(ages.0..=ages.1);
        let lambda: f64 = rate.sample(&mut rng);
        let p: f64 = drop.sample(&mut rng);
        let nu: f64 = scale.sample(&mut rng);
        let value = Gamma::new(gg.p, 1.0 / nu).ok()?;
        let mut purchases = vec![(0.0, value.sample(&mut rng))];
        let mut dropped = false;
        if let Ok(gap) = Exp::new(lambda) {
            let mut at = 0.0;
            loop {
                at += gap.sample(&mut rng);
                if at > t {
                    break;
                }
                purchases.push((at, value.sample(&mut rng)));
                if rng.random::<f64>() < p {
                    dropped = true;
                    break;
                }
            }
        }
        out.push(Customer { t, purchases, dropped });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use care_core::model::fit::{fit_bgnbd, fit_gamma_gamma, BgNbdData, GammaGammaData};

    /// Parameter recovery: customers drawn from known parameters give them
    /// back within three standard errors, each standard error reported.
    /// 50,000 customers (about a second in the debug test profile: equal
    /// customers share a row, so the likelihood is cheap).
    #[test]
    fn fit_recovers_known_parameters() {
        let n = 50_000;
        let bg = BgNbd { r: 0.25, alpha: 4.0, a: 0.8, b: 2.5 };
        let gg = GammaGamma { p: 6.0, q: 3.8, v: 15.0 };
        let cs = simulate(&bg, &gg, n, (26.0, 78.0), 7).unwrap();
        let s: Vec<Summary> = cs.iter().map(Customer::summary).collect();
        let fb = fit_bgnbd(&BgNbdData::new(&s)).unwrap();
        let fg = fit_gamma_gamma(&GammaGammaData::new(&s)).unwrap();
        assert!(fb.converged && fg.converged);
        let m = fb.model;
        let g = fg.model;
        let checks = [
            ("r", m.r, bg.r, fb.std_errs[0]),
            ("alpha", m.alpha, bg.alpha, fb.std_errs[1]),
            ("a", m.a, bg.a, fb.std_errs[2]),
            ("b", m.b, bg.b, fb.std_errs[3]),
            ("p", g.p, gg.p, fg.std_errs[0]),
            ("q", g.q, gg.q, fg.std_errs[1]),
            ("v", g.v, gg.v, fg.std_errs[2]),
        ];
        for (name, got, truth, se) in checks {
            let se = se.unwrap_or_else(|| panic!("no standard error for {name}"));
            eprintln!("{name}: {got:.4} ± {se:.4} (truth {truth})");
            assert!(se > 0.0 && (got - truth).abs() <= 3.0 * se, "{name} {got} vs truth {truth}, se {se}");
        }
    }
}
