//! `[compare]`: what `ltmlp compare` reports about a group of runs, and the section's own
//! checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct CompareSection {
    /// Validation error (%) whose first crossing is reported ("epochs to target").
    pub target_error: Option<f64>,
    /// Early stopping: epochs without a better validation error before a run stops.
    pub patience: Option<usize>,
    /// Epochs at which the training loss is tabulated.
    pub loss_at_epochs: Vec<usize>,
}

impl Section for CompareSection {
    fn rules(&self) -> Result<(), Invalid> {
        match self.target_error {
            Some(target) if !(target.is_finite() && target > 0.0) => Invalid::at(
                "compare.target_error",
                format!("{target} must be a positive percentage"),
            ),
            _ => Ok(()),
        }
    }
}
