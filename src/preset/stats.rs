//! `[stats]`: how often and on how many examples the per-unit statistics are measured, the
//! thresholds that call a unit saturated or collapsed, and the section's own checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsSection {
    /// Minibatches between two statistics snapshots.
    pub every: usize,
    /// Validation examples in the probe batch.
    pub probe_size: usize,
    /// A unit is saturated when its mean tanh′ is below this.
    pub saturated_slope: f64,
    /// A unit is collapsed when both its pre-activation std and its output std are below this.
    pub collapsed_std: f64,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection {
            every: 50,
            probe_size: 500,
            saturated_slope: 0.1,
            collapsed_std: 0.1,
        }
    }
}

impl Section for StatsSection {
    fn rules(&self) -> Result<(), Invalid> {
        if self.every == 0 || self.probe_size == 0 {
            return Invalid::at(
                "stats.every",
                "stats.every and stats.probe_size must be at least 1",
            );
        }
        Ok(())
    }
}
