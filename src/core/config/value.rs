//! The `[value]` table: the fitted model the stream's value figures use,
//! and how far they look ahead.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};
use crate::model::clv::Lifespan;
use crate::model::value::{Fitted, Horizon};

/// Customer value in the stream (BG/NBD and Gamma-Gamma from `care fit`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValueConfig {
    /// The JSON `care fit --output` wrote; relative paths are from the
    /// config file's directory. Without one, customers carry no value
    /// figures (their purchase days are kept all the same, so a fit
    /// loaded later covers their whole history).
    #[serde(default)]
    pub params: Option<String>,
    /// Days of `expected_purchases` and `predicted_clv`.
    #[serde(default = "default_horizon_days")]
    pub horizon_days: u32,
    /// Yearly discount rate of `predicted_clv` (0: undiscounted).
    #[serde(default)]
    pub discount_rate_yearly: f64,
    /// Lifespan of historic CLV, years.
    #[serde(default = "default_lifespan_years")]
    pub lifespan_years: f64,
    /// The fit read from `params` when the config was loaded from a file.
    #[serde(skip)]
    pub fitted: Option<Arc<Fitted>>,
}

fn default_horizon_days() -> u32 {
    365
}

fn default_lifespan_years() -> f64 {
    3.0
}

impl Default for ValueConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl ValueConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.horizon_days == 0 || self.horizon_days > 36_500 {
            return Err(invalid("value.horizon_days", "must be from 1 to 36500"));
        }
        if !(0.0..10.0).contains(&self.discount_rate_yearly) {
            return Err(invalid("value.discount_rate_yearly", "must be at least 0 and below 10 (0.1 is 10 %)"));
        }
        if !(self.lifespan_years > 0.0 && self.lifespan_years <= 100.0) {
            return Err(invalid("value.lifespan_years", "must be above 0 and at most 100"));
        }
        Ok(())
    }

    /// Reads the fit `params` names, relative to `config_dir`.
    ///
    /// # Errors
    /// The file cannot be read or is not a fit, naming `value.params`.
    pub(super) fn load(&mut self, config_dir: &Path) -> Result<(), ConfigError> {
        let Some(path) = &self.params else { return Ok(()) };
        let path = config_dir.join(path);
        let text = std::fs::read_to_string(&path).map_err(|e| invalid("value.params", format!("cannot read {}: {e}", path.display())))?;
        let fitted = Fitted::parse(&text).map_err(|e| invalid("value.params", format!("{}: {e}", path.display())))?;
        self.fitted = Some(Arc::new(fitted));
        Ok(())
    }

    /// What the figures look ahead to.
    pub fn horizon(&self) -> Horizon {
        Horizon { days: f64::from(self.horizon_days), discount_rate_yearly: self.discount_rate_yearly, lifespan: Lifespan::Years(self.lifespan_years) }
    }
}
