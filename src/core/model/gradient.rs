//! The log-likelihoods with their analytic gradients in log-parameters,
//! for the fit's quasi-Newton search (a handful of evaluations where
//! Nelder-Mead needs hundreds).
//!
//! BG/NBD per customer is ln L = B(x) + ln(e^A₃ + e^A₄) (A₄ only for
//! x > 0), with B(x) = ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x) −
//! ln B(a, b), A₃ = −(r+x) ln(α+T), A₄ = ln a − ln(b+x−1) − (r+x) ln(α+t_x).
//! With w₃, w₄ the shares e^A / (e^A₃ + e^A₄):
//! - ∂/∂r = ψ(r+x) − ψ(r) + ln α − w₃ ln(α+T) − w₄ ln(α+t_x)
//! - ∂/∂α = r/α − (r+x)·(w₃ / (α+T) + w₄ / (α+t_x))
//! - ∂/∂a = ψ(a+b) − ψ(a+b+x) + w₄ / a
//! - ∂/∂b = ψ(a+b) + ψ(b+x) − ψ(b) − ψ(a+b+x) − w₄ / (b+x−1)
//!
//! Gamma-Gamma per repeater is ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) +
//! q ln v + px ln x + (px−1) ln m − (px+q) ln(xm+v):
//! - ∂/∂p = x·(ψ(px+q) − ψ(px) + ln x + ln m − ln(xm+v))
//! - ∂/∂q = ψ(px+q) − ψ(q) + ln v − ln(xm+v)
//! - ∂/∂v = q/v − (px+q) / (xm+v)
//!
//! A parameter θ = e^u has ∂/∂u = θ·∂/∂θ. The terms that depend on x
//! alone are computed once per distinct x, as in the likelihoods; rows are
//! summed on two threads when there are many.

use super::bgnbd::BgNbd;
use super::fit::{BgNbdData, GammaGammaData};
use super::gamma_gamma::GammaGamma;
use super::special::digamma;

/// Rows above which the sum is split over two threads (below it, starting
/// a thread costs more than half the sum).
const PARALLEL_ROWS: usize = 32_768;

/// ln L and its gradient in log-parameters.
pub type WithGradient<const K: usize> = (f64, [f64; K]);

/// Sums `f` over `rows`, on two threads when there are many (the
/// likelihood alone too, for the Hessian's evaluations).
pub(super) fn sum_rows<R: Sync, const K: usize>(rows: &[R], f: impl Fn(&[R]) -> WithGradient<K> + Sync) -> WithGradient<K> {
    if rows.len() < PARALLEL_ROWS {
        return f(rows);
    }
    let (head, tail) = rows.split_at(rows.len() / 2);
    let (a, b) = std::thread::scope(|s| {
        let h = s.spawn(|| f(tail));
        (f(head), h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    let mut g = a.1;
    for (gi, bi) in g.iter_mut().zip(b.1) {
        *gi += bi;
    }
    (a.0 + b.0, g)
}

impl BgNbdData {
    /// Total ln L over the data and its gradient in (ln r, ln α, ln a, ln b).
    pub fn ll_and_gradient(&self, m: &BgNbd) -> WithGradient<4> {
        let logs: Vec<(f64, f64)> = self.values.iter().map(|v| ((m.alpha + v).ln(), 1.0 / (m.alpha + v))).collect();
        let (ll, g) = sum_rows(&self.rows, |rows| bgnbd_rows(m, rows, &logs));
        (ll, [m.r * g[0], m.alpha * g[1], m.a * g[2], m.b * g[3]])
    }
}

/// The x-only terms of the BG/NBD gradient (in r, α, a, b).
fn bgnbd_x_gradient(m: &BgNbd, x: u32, common: &[f64; 3]) -> [f64; 4] {
    let xf = f64::from(x);
    let [psi_r, psi_ab, psi_b] = *common;
    let psi_abx = digamma(m.a + m.b + xf);
    [digamma(m.r + xf) - psi_r + m.alpha.ln(), m.r / m.alpha, psi_ab - psi_abx, psi_ab + digamma(m.b + xf) - psi_b - psi_abx]
}

fn bgnbd_rows(m: &BgNbd, rows: &[(u32, u32, u32, f64)], logs: &[(f64, f64)]) -> WithGradient<4> {
    let common = [digamma(m.r), digamma(m.a + m.b), digamma(m.b)];
    let (mut ll, mut g) = (0.0, [0.0; 4]);
    let mut cached = None;
    for &(x, itx, it, w) in rows {
        let (k, dx) = match cached {
            Some((cx, k, dx)) if cx == x => (k, dx),
            _ => {
                let (k, dx) = (m.x_terms(x), bgnbd_x_gradient(m, x, &common));
                cached = Some((x, k, dx));
                (k, dx)
            }
        };
        let ((ln_t, inv_t), (ln_tx, inv_tx)) = (logs[it as usize], logs[itx as usize]);
        let rx = m.r + f64::from(x);
        let a3 = -rx * ln_t;
        // The shares of e^A₃ and e^A₄ in their sum.
        let (row_ll, w3, w4) = if x == 0 {
            (k.base + a3, 1.0, 0.0)
        } else {
            let a4 = k.ln_drop - rx * ln_tx;
            let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
            let e = (lo - hi).exp();
            let (share_hi, share_lo) = (1.0 / (1.0 + e), e / (1.0 + e));
            let (w3, w4) = if a3 > a4 { (share_hi, share_lo) } else { (share_lo, share_hi) };
            (k.base + hi + e.ln_1p(), w3, w4)
        };
        ll += w * row_ll;
        g[0] += w * (dx[0] - w3 * ln_t - w4 * ln_tx);
        g[1] += w * (dx[1] - rx * (w3 * inv_t + w4 * inv_tx));
        g[2] += w * (dx[2] + w4 / m.a);
        g[3] += w * (dx[3] - if x > 0 { w4 / (m.b + f64::from(x) - 1.0) } else { 0.0 });
    }
    (ll, g)
}

impl GammaGammaData {
    /// Total ln L over the repeaters and its gradient in (ln p, ln q, ln v).
    pub fn ll_and_gradient(&self, m: &GammaGamma) -> WithGradient<3> {
        let (ll, g) = sum_rows(&self.rows, |rows| gamma_gamma_rows(m, rows));
        (ll, [m.p * g[0], m.q * g[1], m.v * g[2]])
    }
}

fn gamma_gamma_rows(m: &GammaGamma, rows: &[(u32, f64, f64, f64)]) -> WithGradient<3> {
    let (psi_q, ln_v) = (digamma(m.q), m.v.ln());
    let (mut ll, mut g) = (0.0, [0.0; 3]);
    let mut cached = None;
    for &(x, mv, ln_m, w) in rows {
        let (base, psi_pxq, psi_px) = match cached {
            Some((cx, b, s, t)) if cx == x => (b, s, t),
            _ => {
                let px = m.p * f64::from(x);
                let terms = (m.x_terms(x), digamma(px + m.q), digamma(px));
                cached = Some((x, terms.0, terms.1, terms.2));
                terms
            }
        };
        let xf = f64::from(x);
        let px = m.p * xf;
        let denominator = xf * mv + m.v;
        let ln_d = denominator.ln();
        ll += w * (base + (px - 1.0) * ln_m - (px + m.q) * ln_d);
        g[0] += w * xf * (psi_pxq - psi_px + xf.ln() + ln_m - ln_d);
        g[1] += w * (psi_pxq - psi_q + ln_v - ln_d);
        g[2] += w * (m.q / m.v - (px + m.q) / denominator);
    }
    (ll, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::summary::Summary;

    /// Central differences of ln L in log-parameters.
    fn numeric<const K: usize>(f: impl Fn(&[f64]) -> f64, u: &[f64; K]) -> [f64; K] {
        let h = 1e-6;
        std::array::from_fn(|i| {
            let (mut up, mut down) = (u.to_vec(), u.to_vec());
            up[i] += h;
            down[i] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
    }

    fn summaries() -> Vec<Summary> {
        // A mix of one-time buyers and repeaters, some buying up to T.
        (0..400u32)
            .map(|i| {
                let x = (i * 7) % 9;
                let t = 10.0 + f64::from(i % 50);
                let recency = if x == 0 { 0.0 } else { t * f64::from((i * 13) % 10) / 10.0 };
                Summary { frequency: x, recency, t, monetary_value: if x > 0 { 5.0 + f64::from(i % 17) * 3.5 } else { 0.0 } }
            })
            .collect()
    }

    #[test]
    fn bgnbd_gradient_matches_the_likelihood() {
        let data = BgNbdData::new(&summaries());
        for u in [[0.243f64.ln(), 4.414f64.ln(), 0.793f64.ln(), 2.426f64.ln()], [0.0, 2.0, -1.0, 1.5], [1.2, -0.5, 0.9, -0.3]] {
            let m = BgNbd::from_log(&u);
            let (ll, g) = data.ll_and_gradient(&m);
            assert!((ll - data.log_likelihood(&m)).abs() <= 1e-10 * ll.abs(), "ln L {ll}");
            let want = numeric(|v| data.log_likelihood(&BgNbd::from_log(v)), &u);
            for (gi, wi) in g.iter().zip(want) {
                assert!((gi - wi).abs() <= 1e-5 * wi.abs().max(1.0), "{g:?} vs numeric {want:?} at {u:?}");
            }
        }
    }

    #[test]
    fn gamma_gamma_gradient_matches_the_likelihood() {
        let data = GammaGammaData::new(&summaries());
        for u in [[6.25f64.ln(), 3.74f64.ln(), 15.44f64.ln()], [0.0, 1.0, 2.0], [-0.7, 2.2, 0.3]] {
            let m = GammaGamma::from_log(&u);
            let (ll, g) = data.ll_and_gradient(&m);
            assert!((ll - data.log_likelihood(&m)).abs() <= 1e-10 * ll.abs(), "ln L {ll}");
            let want = numeric(|v| data.log_likelihood(&GammaGamma::from_log(v)), &u);
            for (gi, wi) in g.iter().zip(want) {
                assert!((gi - wi).abs() <= 1e-5 * wi.abs().max(1.0), "{g:?} vs numeric {want:?} at {u:?}");
            }
        }
    }

    #[test]
    fn two_threads_sum_what_one_does() {
        // Enough distinct rows to split: the halves' sums add up.
        let many: Vec<Summary> = (0..(2 * PARALLEL_ROWS as u32))
            .map(|i| Summary { frequency: i % 5, recency: f64::from(i % 5) * 2.0, t: 10.0 + f64::from(i) * 1e-3, monetary_value: 1.0 + f64::from(i % 7) })
            .collect();
        let data = BgNbdData::new(&many);
        assert!(data.rows() >= PARALLEL_ROWS);
        let u = [0.3f64.ln(), 5.0f64.ln(), 0.8f64.ln(), 2.5f64.ln()];
        let m = BgNbd::from_log(&u);
        let (ll, g) = data.ll_and_gradient(&m);
        assert!((ll - data.log_likelihood(&m)).abs() <= 1e-9 * ll.abs());
        let want = numeric(|v| data.log_likelihood(&BgNbd::from_log(v)), &u);
        for (gi, wi) in g.iter().zip(want) {
            assert!((gi - wi).abs() <= 1e-5 * wi.abs().max(1.0), "{g:?} vs numeric {want:?}");
        }
    }
}
