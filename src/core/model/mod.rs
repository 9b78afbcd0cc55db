//! Customer-base models: the purchase-day summary, BG/NBD (Fader, Hardie &
//! Lee 2005) for how many more purchases a customer makes and whether they
//! are still a buyer, Gamma-Gamma (Fader, Hardie & Lee 2005b) for what a
//! purchase is worth, their maximum-likelihood fit, and the CLV figures
//! built on them.
//!
//! Pure like the rest of the core: summaries and parameters in, numbers
//! out. `care fit` drives it over a file; the stream can hold the same
//! [`summary::PurchaseDays`] per customer.
//!
//! - [`summary`] — orders grouped per calendar day; frequency, recency, T,
//!   monetary value.
//! - [`special`] — ln Γ and the Gauss hypergeometric function ₂F₁.
//! - [`bgnbd`] — BG/NBD likelihood, P(alive), conditional expected purchases.
//! - [`gamma_gamma`] — Gamma-Gamma likelihood and expected average value.
//! - [`fit`] — maximum likelihood with standard errors from the Hessian.
//! - [`gradient`] — the likelihoods' analytic gradients for the fit.
//! - [`clv`] — predicted and historic CLV, the expected next purchase.
//! - [`holdout`] — predicted against actual purchases after the calibration.
//! - [`value`] — a fit read back, and one customer's figures at a day.

pub mod bgnbd;
pub mod clv;
pub mod fit;
pub mod gamma_gamma;
pub mod gradient;
pub mod holdout;
pub mod special;
pub mod summary;
pub mod value;

use serde::{Deserialize, Serialize};

/// The unit of recency, T and alpha. Days by default (SPEC); weeks to
/// compare with the published CDNOW figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    #[default]
    Days,
    Weeks,
}

impl TimeUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Whole days expressed in this unit (weeks are fractional, days / 7, as
    /// lifetimes' CDNOW summaries count them).
    pub fn of_days(self, days: f64) -> f64 {
        days / self.days()
    }
}
