//! The `[detect]` table: one table per detector, each defined with its
//! defaults and validation in the detector's own file.

use serde::{Deserialize, Serialize};

use super::ConfigError;
pub use crate::detect::csat_low::CsatLowConfig;
pub use crate::detect::decline::{DeclineConfig, DeclineMethod};
pub use crate::detect::dormancy::DormancyConfig;
pub use crate::detect::first_order::FirstOrderConfig;
pub use crate::detect::nps_detractor::NpsDetractorConfig;
pub use crate::detect::silence::SilenceConfig;

/// Detector thresholds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    #[serde(default)]
    pub decline: DeclineConfig,
    #[serde(default)]
    pub silence: SilenceConfig,
    #[serde(default)]
    pub dormancy: DormancyConfig,
    #[serde(default)]
    pub first_order: FirstOrderConfig,
    #[serde(default)]
    pub nps_detractor: NpsDetractorConfig,
    #[serde(default)]
    pub csat_low: CsatLowConfig,
}

impl DetectConfig {
    /// Checks every detector's keys, naming the first bad one.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.decline.validate()?;
        self.silence.validate()?;
        self.dormancy.validate()?;
        self.nps_detractor.validate()?;
        self.csat_low.validate()
    }
}
