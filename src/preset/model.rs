//! `[model]`: the task and the network's shape, the engine's size limits, and the section's
//! own checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};
use crate::net::Shortcuts;

/// Largest layer the engine accepts; larger is almost certainly a typo.
pub(super) const MAX_LAYER_UNITS: usize = 100_000;
/// Most hidden layers accepted: every layer feeds every later one, so the number of weight
/// blocks grows with the square of the depth (10,000 layers would need 50 million).
const MAX_HIDDEN_LAYERS: usize = 100;
/// Largest weight count accepted (about 4 GiB of f32 weights, gradients and momentum).
pub(super) const MAX_WEIGHTS: usize = 300_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Softmax output, cross-entropy, error %.
    Classify,
    /// Linear output reconstructing the input, squared error.
    Autoencode,
    /// Linear output predicting the file's target values, squared error (reported as MSE and R²).
    Regress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub task: Task,
    /// Hidden layer sizes, input side first.
    pub hidden: Vec<usize>,
    #[serde(default = "default_shortcuts")]
    pub shortcuts: Shortcuts,
    /// Hidden layers (1-based) whose units are linear instead of transformed tanh.
    #[serde(default)]
    pub linear: Vec<usize>,
    /// Hidden layer (1-based) that no connection may skip (autoencoders).
    pub bottleneck: Option<usize>,
}

fn default_shortcuts() -> Shortcuts {
    Shortcuts::All
}

impl Section for ModelSection {
    fn rules(&self) -> Result<(), Invalid> {
        if self.hidden.len() > MAX_HIDDEN_LAYERS {
            return Invalid::at(
                "model.hidden",
                format!(
                    "{} hidden layers; at most {MAX_HIDDEN_LAYERS} are accepted",
                    self.hidden.len()
                ),
            );
        }
        if let Some(i) = self
            .hidden
            .iter()
            .position(|&n| n == 0 || n > MAX_LAYER_UNITS)
        {
            return Invalid::at(
                "model.hidden",
                format!(
                    "hidden layer {} has {} units; each must have 1 to {MAX_LAYER_UNITS}",
                    i + 1,
                    self.hidden[i]
                ),
            );
        }
        let is_hidden_layer = |l: usize| (1..=self.hidden.len()).contains(&l);
        if let Some(&l) = self.linear.iter().find(|&&l| !is_hidden_layer(l)) {
            return Invalid::at(
                "model.linear",
                format!(
                    "{l} is not a hidden layer; hidden layers are numbered 1 to {}",
                    self.hidden.len()
                ),
            );
        }
        match self.bottleneck {
            Some(b) if !is_hidden_layer(b) => Invalid::at(
                "model.bottleneck",
                format!(
                    "{b} is not a hidden layer; hidden layers are numbered 1 to {}",
                    self.hidden.len()
                ),
            ),
            _ => Ok(()),
        }
    }
}
