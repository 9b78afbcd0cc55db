//! Maximum-likelihood fits of BG/NBD and Gamma-Gamma.
//!
//! The parameters are all positive, so the optimiser works on their
//! logarithms; a log-parameter beyond ±[`LOG_BOUND`] costs a huge finite
//! value instead of being evaluated (a box that keeps the optimiser off
//! overflow, far outside any fitted value). argmin's L-BFGS runs from a
//! start built from the data on the analytic gradient ([`super::gradient`]);
//! it is converged when the gradient of the mean ln L per customer is
//! below [`GRADIENT_TOLERANCE`] inside the box. Should it fail there (a
//! line search on a flat or non-finite stretch), Nelder-Mead, which needs
//! no gradient, runs from the same start and restarts from its best point
//! with a small simplex, the usual guard against a collapsed simplex;
//! converged then when both runs stop on their tolerance and agree.
//!
//! Customers with the same figures are one row with a weight: every
//! one-time buyer of a day's cohort shares (0, 0, T), so a million
//! customers make far fewer rows, and the terms that depend on x alone are
//! computed once per x.
//!
//! Standard errors come from the observed information: the Hessian of the
//! negative log-likelihood in log-parameters by central differences at the
//! optimum (step [`HESSIAN_STEP`]), inverted, mapped back by the delta
//! method (se(θ) = θ · se(ln θ), exact at the optimum).

use std::cell::RefCell;

use argmin::core::{CostFunction, Error as ArgminError, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::condition::ArmijoCondition;
use argmin::solver::linesearch::BacktrackingLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

use super::bgnbd::BgNbd;
use super::gamma_gamma::GammaGamma;
use super::gradient::sum_rows;
use super::summary::Summary;

/// Why a model could not be fitted. `code` is a short fixed string.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no customer has an order before the calibration end")]
    NoCustomers,
    #[error("only one customer: the models describe a population and need many")]
    OneCustomer,
    #[error("no customer has a repeat purchase day (with a value > 0 for Gamma-Gamma): the dropout and value models cannot be identified")]
    NoRepeaters,
    #[error("the {model} likelihood is not finite at any point the optimiser tried")]
    NotFinite { model: &'static str },
    #[error("the optimiser failed on {model}: {message}")]
    Optimiser { model: &'static str, message: String },
}

impl FitError {
    /// A bounded code for logs and exit messages.
    pub fn code(&self) -> &'static str {
        match self {
            FitError::NoCustomers => "no_customers",
            FitError::OneCustomer => "one_customer",
            FitError::NoRepeaters => "no_repeaters",
            FitError::NotFinite { .. } => "not_finite",
            FitError::Optimiser { .. } => "optimiser",
        }
    }
}

/// Log-parameters beyond ±this are out of bounds (e^20 ≈ 5·10⁸).
pub const LOG_BOUND: f64 = 20.0;
/// Cost of an out-of-bounds or non-finite point, in mean −ln L per customer.
const OUT_OF_BOUNDS: f64 = 1e300;
/// Nelder-Mead stops when the simplex's costs (mean −ln L per customer)
/// have this standard deviation: parameters then settle to ~10⁻⁵
/// relative, far inside their standard errors.
const SD_TOLERANCE: f64 = 1e-11;
const MAX_ITERS: u64 = 5_000;
/// L-BFGS is converged when the gradient of the mean ln L per customer in
/// log-parameters has this norm: parameters then sit ~10⁻⁸ relative from
/// the optimum, far inside their standard errors.
pub const GRADIENT_TOLERANCE: f64 = 1e-8;
/// L-BFGS iterations before giving up (it takes 10-40 on real data).
const MAX_LBFGS_ITERS: u64 = 500;
/// Central-difference step in log-parameters for the Hessian.
pub const HESSIAN_STEP: f64 = 1e-3;

/// A fitted model with what the fit reports about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted<M> {
    pub model: M,
    /// Standard error of each parameter, in the model's order; `None`
    /// where the Hessian is not positive definite there.
    pub std_errs: Vec<Option<f64>>,
    /// Total ln L over the customers fitted.
    pub log_likelihood: f64,
    /// Customers the fit used.
    pub customers: u64,
    pub converged: bool,
    /// Optimiser iterations: L-BFGS's, and Nelder-Mead's over both runs
    /// if it had to run.
    pub iterations: u64,
}

/// BG/NBD input: distinct (x, t_x, T) rows, sorted by x, with weights;
/// t_x and T are indices into the distinct values of both, so ln(α + ·)
/// is computed once per value (a few hundred for whole days) rather than
/// twice per row.
#[derive(Debug, Clone, Default)]
pub struct BgNbdData {
    pub(super) rows: Vec<(u32, u32, u32, f64)>,
    pub(super) values: Vec<f64>,
    customers: f64,
    repeat_days: f64,
    age: f64,
}

impl BgNbdData {
    pub fn new<'a>(summaries: impl IntoIterator<Item = &'a Summary>) -> BgNbdData {
        let mut raw: Vec<(u32, f64, f64, f64)> = summaries.into_iter().map(|s| (s.frequency, s.recency, s.t, 1.0)).collect();
        raw.sort_unstable_by(|p, q| p.0.cmp(&q.0).then(p.1.total_cmp(&q.1)).then(p.2.total_cmp(&q.2)));
        raw.dedup_by(|next, kept| {
            let same = next.0 == kept.0 && next.1 == kept.1 && next.2 == kept.2;
            if same {
                kept.3 += 1.0;
            }
            same
        });
        let mut values: Vec<f64> = raw.iter().flat_map(|r| [r.1, r.2]).collect();
        values.sort_unstable_by(f64::total_cmp);
        values.dedup();
        let index = |v: f64| values.partition_point(|&u| u < v) as u32;
        let rows = raw.iter().map(|r| (r.0, index(r.1), index(r.2), r.3)).collect();
        let sum = |f: fn(&(u32, f64, f64, f64)) -> f64| raw.iter().map(|r| r.3 * f(r)).sum::<f64>();
        BgNbdData { customers: sum(|_| 1.0), repeat_days: sum(|r| f64::from(r.0)), age: sum(|r| r.2), rows, values }
    }

    /// Distinct rows the likelihood sums over.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Total ln L of the model over the data (on two threads when there
    /// are many rows).
    pub fn log_likelihood(&self, m: &BgNbd) -> f64 {
        let logs: Vec<f64> = self.values.iter().map(|v| (m.alpha + v).ln()).collect();
        sum_rows(&self.rows, |rows| {
            let mut total = 0.0;
            let mut cached: Option<(u32, super::bgnbd::XTerms)> = None;
            for &(x, itx, it, w) in rows {
                let k = match cached {
                    Some((cx, k)) if cx == x => k,
                    _ => {
                        let k = m.x_terms(x);
                        cached = Some((x, k));
                        k
                    }
                };
                total += w * m.ll_from_logs(k, x, logs[itx as usize], logs[it as usize]);
            }
            (total, [])
        })
        .0
    }
}

/// Gamma-Gamma input: repeaters' (x, mean value, its logarithm) with
/// weights, sorted by x.
#[derive(Debug, Clone, Default)]
pub struct GammaGammaData {
    pub(super) rows: Vec<(u32, f64, f64, f64)>,
    customers: f64,
}

impl GammaGammaData {
    /// Keeps the repeaters with a mean value > 0 (ln m enters the likelihood).
    pub fn new<'a>(summaries: impl IntoIterator<Item = &'a Summary>) -> GammaGammaData {
        let mut rows: Vec<(u32, f64, f64, f64)> = summaries
            .into_iter()
            .filter(|s| s.frequency > 0 && s.monetary_value > 0.0)
            .map(|s| (s.frequency, s.monetary_value, s.monetary_value.ln(), 1.0))
            .collect();
        rows.sort_unstable_by(|p, q| p.0.cmp(&q.0).then(p.1.total_cmp(&q.1)));
        rows.dedup_by(|next, kept| {
            let same = next.0 == kept.0 && next.1 == kept.1;
            if same {
                kept.3 += 1.0;
            }
            same
        });
        GammaGammaData { customers: rows.iter().map(|r| r.3).sum(), rows }
    }

    /// Total ln L of the model over the data (on two threads when there
    /// are many rows).
    pub fn log_likelihood(&self, m: &GammaGamma) -> f64 {
        sum_rows(&self.rows, |rows| {
            let mut total = 0.0;
            let mut cached: Option<(u32, f64)> = None;
            for &(x, mv, ln_m, w) in rows {
                let base = match cached {
                    Some((cx, b)) if cx == x => b,
                    _ => {
                        let b = m.x_terms(x);
                        cached = Some((x, b));
                        b
                    }
                };
                total += w * m.ll_with(base, x, mv, ln_m);
            }
            (total, [])
        })
        .0
    }

    fn mean_value(&self) -> f64 {
        self.rows.iter().map(|r| r.1 * r.3).sum::<f64>() / self.customers
    }
}

/// Fits BG/NBD by maximum likelihood.
///
/// # Errors
/// No customers, one customer, no repeaters, or an optimiser failure.
pub fn fit_bgnbd(data: &BgNbdData) -> Result<Fitted<BgNbd>, FitError> {
    const MODEL: &str = "BG/NBD";
    if data.customers == 0.0 {
        return Err(FitError::NoCustomers);
    }
    if data.customers < 2.0 {
        return Err(FitError::OneCustomer);
    }
    if data.repeat_days == 0.0 {
        return Err(FitError::NoRepeaters);
    }
    // r / α is the mean purchase rate; start with r = 1 at the observed
    // rate, a middling dropout a / (a + b) = 1/4.
    let start = [1.0f64, (data.age / data.repeat_days).max(1e-3), 1.0, 3.0].map(f64::ln);
    let n = data.customers;
    let cost = |u: &[f64]| -data.log_likelihood(&BgNbd::from_log(u)) / n;
    let with_gradient = |u: &[f64]| {
        let (ll, g) = data.ll_and_gradient(&BgNbd::from_log(u));
        (-ll / n, g.iter().map(|gi| -gi / n).collect())
    };
    let (u, min) = minimise(MODEL, &cost, &with_gradient, &start)?;
    let model = BgNbd::from_log(&u);
    let params = [model.r, model.alpha, model.a, model.b];
    Ok(Fitted { model, std_errs: std_errs(&cost, &u, &params, n), log_likelihood: -min.cost * n, customers: n as u64, converged: min.converged, iterations: min.iterations })
}

/// Fits Gamma-Gamma by maximum likelihood on the repeaters.
///
/// # Errors
/// No repeater with a value, or an optimiser failure.
pub fn fit_gamma_gamma(data: &GammaGammaData) -> Result<Fitted<GammaGamma>, FitError> {
    const MODEL: &str = "Gamma-Gamma";
    if data.customers == 0.0 {
        return Err(FitError::NoRepeaters);
    }
    // E[M] = p·v / (q − 1): p = 1, q = 2 puts v at the observed mean.
    let start = [1.0f64, 2.0, data.mean_value()].map(f64::ln);
    let n = data.customers;
    let cost = |u: &[f64]| -data.log_likelihood(&GammaGamma::from_log(u)) / n;
    let with_gradient = |u: &[f64]| {
        let (ll, g) = data.ll_and_gradient(&GammaGamma::from_log(u));
        (-ll / n, g.iter().map(|gi| -gi / n).collect())
    };
    let (u, min) = minimise(MODEL, &cost, &with_gradient, &start)?;
    let model = GammaGamma::from_log(&u);
    let params = [model.p, model.q, model.v];
    Ok(Fitted { model, std_errs: std_errs(&cost, &u, &params, n), log_likelihood: -min.cost * n, customers: n as u64, converged: min.converged, iterations: min.iterations })
}

struct Minimum {
    cost: f64,
    converged: bool,
    iterations: u64,
}

/// Adapts a closure to argmin, with the bounds and non-finite guard.
struct Bounded<'f, F>(&'f F);

impl<F: Fn(&[f64]) -> f64> CostFunction for Bounded<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, u: &Self::Param) -> Result<f64, ArgminError> {
        if u.iter().any(|v| v.abs() > LOG_BOUND) {
            return Ok(OUT_OF_BOUNDS);
        }
        let c = (self.0)(u);
        Ok(if c.is_finite() { c } else { OUT_OF_BOUNDS })
    }
}

/// A point, the cost there and its gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// Adapts a closure giving the cost and its gradient together to argmin,
/// which asks for them apart at the same point: the last pair is kept.
struct Smooth<'f, G> {
    f: &'f G,
    last: RefCell<Option<Evaluated>>,
}

impl<G: Fn(&[f64]) -> (f64, Vec<f64>)> Smooth<'_, G> {
    fn at(&self, u: &[f64]) -> Result<(f64, Vec<f64>), ArgminError> {
        if let Some((p, c, g)) = self.last.borrow().as_ref() {
            if p == u {
                return Ok((*c, g.clone()));
            }
        }
        // Outside the box or not finite: an error ends L-BFGS, and
        // Nelder-Mead takes over.
        if u.iter().any(|v| v.abs() > LOG_BOUND) {
            return Err(ArgminError::msg("outside the parameter box"));
        }
        let (c, g) = (self.f)(u);
        if !c.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return Err(ArgminError::msg("likelihood not finite"));
        }
        *self.last.borrow_mut() = Some((u.to_vec(), c, g.clone()));
        Ok((c, g))
    }
}

impl<G: Fn(&[f64]) -> (f64, Vec<f64>)> CostFunction for Smooth<'_, G> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, u: &Self::Param) -> Result<f64, ArgminError> {
        Ok(self.at(u)?.0)
    }
}

impl<G: Fn(&[f64]) -> (f64, Vec<f64>)> Gradient for Smooth<'_, G> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, u: &Self::Param) -> Result<Vec<f64>, ArgminError> {
        Ok(self.at(u)?.1)
    }
}

/// L-BFGS from `start`: the optimum when it converges inside the box.
fn lbfgs<G: Fn(&[f64]) -> (f64, Vec<f64>)>(g: &G, start: &[f64]) -> Option<(Vec<f64>, u64)> {
    // A backtracking (Armijo) line search: the quasi-Newton step is nearly
    // always taken whole. More-Thuente's strong Wolfe search took 144
    // evaluations for Gamma-Gamma's 22 iterations on CDNOW, this 38.
    let solver = LBFGS::new(BacktrackingLineSearch::new(ArmijoCondition::new(1e-4).ok()?), 7).with_tolerance_grad(GRADIENT_TOLERANCE).ok()?.with_tolerance_cost(0.0).ok()?;
    let problem = Smooth { f: g, last: RefCell::new(None) };
    let res = Executor::new(problem, solver).configure(|s| s.param(start.to_vec()).max_iters(MAX_LBFGS_ITERS)).run().ok()?;
    let st = res.state();
    let u = st.get_best_param()?.clone();
    let (cost, grad) = g(&u);
    let norm = grad.iter().map(|v| v * v).sum::<f64>().sqrt();
    // A line search may stop at the optimum's rounding noise just short
    // of the tolerance; a hundred times it is still ~10⁻⁶ relative.
    let inside = u.iter().all(|v| v.abs() < LOG_BOUND - 1.0);
    (cost.is_finite() && norm <= 100.0 * GRADIENT_TOLERANCE && inside).then_some((u, st.get_iter()))
}

fn minimise<F: Fn(&[f64]) -> f64, G: Fn(&[f64]) -> (f64, Vec<f64>)>(model: &'static str, f: &F, g: &G, start: &[f64]) -> Result<(Vec<f64>, Minimum), FitError> {
    if let Some((u, iterations)) = lbfgs(g, start) {
        return Ok((Minimum { cost: f(&u), converged: true, iterations }, u)).map(|(m, u)| (u, m));
    }
    let (u1, c1, conv1, it1) = nelder_mead(model, f, start, 1.0)?;
    let (u2, c2, conv2, it2) = nelder_mead(model, f, &u1, 0.05)?;
    if c2 >= OUT_OF_BOUNDS {
        return Err(FitError::NotFinite { model });
    }
    let agree = (c1 - c2).abs() <= 1e-9 * c2.abs().max(1.0);
    let inside = u2.iter().all(|v| v.abs() < LOG_BOUND - 1.0);
    Ok((u2, Minimum { cost: c2, converged: conv1 && conv2 && agree && inside, iterations: it1 + it2 }))
}

fn nelder_mead<F: Fn(&[f64]) -> f64>(model: &'static str, f: &F, start: &[f64], step: f64) -> Result<(Vec<f64>, f64, bool, u64), FitError> {
    let fail = |e: ArgminError| FitError::Optimiser { model, message: e.to_string() };
    let mut simplex = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut p = start.to_vec();
        p[i] += step;
        simplex.push(p);
    }
    let solver = NelderMead::new(simplex).with_sd_tolerance(SD_TOLERANCE).map_err(fail)?;
    let res = Executor::new(Bounded(f), solver).configure(|s| s.max_iters(MAX_ITERS)).run().map_err(fail)?;
    let st = res.state();
    let u = st.get_best_param().cloned().ok_or(FitError::NotFinite { model })?;
    let converged = matches!(st.get_termination_reason(), Some(TerminationReason::SolverConverged));
    Ok((u, st.get_best_cost(), converged, st.get_iter()))
}

/// Standard errors of `params` (= exp(u)) from the Hessian of `f` (mean
/// −ln L over `n` customers) in log-parameters.
fn std_errs<F: Fn(&[f64]) -> f64>(f: &F, u: &[f64], params: &[f64], n: f64) -> Vec<Option<f64>> {
    let h = hessian(f, u);
    let Some(cov) = invert(h.iter().map(|row| row.iter().map(|v| v * n).collect()).collect()) else {
        return vec![None; u.len()];
    };
    params.iter().enumerate().map(|(i, p)| (cov[i][i] > 0.0 && cov[i][i].is_finite()).then(|| p * cov[i][i].sqrt())).collect()
}

/// The Hessian of `f` at `u` by central differences.
#[allow(clippy::needless_range_loop)] // i and j index the moves and both halves of a symmetric matrix
pub fn hessian<F: Fn(&[f64]) -> f64>(f: &F, u: &[f64]) -> Vec<Vec<f64>> {
    let k = u.len();
    let h = HESSIAN_STEP;
    let at = |moves: &[(usize, f64)]| {
        let mut p = u.to_vec();
        for &(i, d) in moves {
            p[i] += d;
        }
        f(&p)
    };
    let f0 = f(u);
    let mut out = vec![vec![0.0; k]; k];
    for i in 0..k {
        out[i][i] = (at(&[(i, h)]) - 2.0 * f0 + at(&[(i, -h)])) / (h * h);
        for j in 0..i {
            let v = (at(&[(i, h), (j, h)]) - at(&[(i, h), (j, -h)]) - at(&[(i, -h), (j, h)]) + at(&[(i, -h), (j, -h)])) / (4.0 * h * h);
            out[i][j] = v;
            out[j][i] = v;
        }
    }
    out
}

/// Inverts a small matrix by Gauss-Jordan with partial pivoting; `None`
/// when it is singular or not finite. (Four by four at most: a linear
/// algebra crate would be all weight for this.)
pub fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let k = m.len();
    let mut inv: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if !m[pivot][col].is_finite() || m[pivot][col].abs() <= 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let d = m[col][col];
        for j in 0..k {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for row in 0..k {
            if row != col {
                let factor = m[row][col];
                for j in 0..k {
                    m[row][j] -= factor * m[col][j];
                    inv[row][j] -= factor * inv[col][j];
                }
            }
        }
    }
    inv.iter().flatten().all(|v| v.is_finite()).then_some(inv)
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
