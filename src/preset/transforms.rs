//! `[transforms]`: when and how α β γ are re-estimated, what keeps γ in bounds, and the
//! section's own checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};
use crate::net::{GammaControl, GammaForm};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Every `every` minibatches, on the current minibatch.
    Every,
    /// Every `every` minibatches, on a fixed sample of `sample_size` training examples.
    Sample,
    /// The paper demo's rule (docs/method.md).
    Paper,
    /// Never (the transforms stay as initialised or toggled).
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformSection {
    pub gamma_form: GammaForm,
    /// ε in γ's formula (default 1e-4 for the product form, 1e-2 for the RMS form).
    pub gamma_epsilon: Option<f64>,
    /// What keeps γ from blowing up into saturation: "rollback" by default, "off" is the
    /// papers' rule.
    pub gamma_control: GammaControl,
    /// The bound on γ under `gamma_control = "bound"`.
    pub gamma_bound: f64,
    /// p under `gamma_control = "step"`: each unit's outgoing steps are divided by γ^p.
    pub gamma_step_power: f64,
    pub policy: PolicyKind,
    pub every: usize,
    pub sample_size: usize,
    /// Paper rule: validation error (%) above which the update runs every minibatch.
    pub paper_threshold: f64,
    /// Examples on which each re-estimation's output change is measured: the first rows of the
    /// minibatch for re-estimations within a step (one extra forward pass of these rows), the
    /// first validation rows otherwise (switches, on-demand and epoch-end re-estimations).
    pub check_samples: usize,
}

impl Default for TransformSection {
    fn default() -> Self {
        TransformSection {
            gamma_form: GammaForm::Product,
            gamma_epsilon: None,
            gamma_control: GammaControl::Rollback,
            gamma_bound: 4.0,
            gamma_step_power: 1.0,
            policy: PolicyKind::Every,
            every: 1,
            sample_size: 10_000,
            paper_threshold: 1.0,
            check_samples: 20,
        }
    }
}

impl TransformSection {
    pub fn gamma_epsilon(&self) -> f64 {
        self.gamma_epsilon.unwrap_or(match self.gamma_form {
            GammaForm::Product => 1e-4,
            GammaForm::Rms => 1e-2,
        })
    }
}

impl Section for TransformSection {
    fn rules(&self) -> Result<(), Invalid> {
        if self.every == 0 {
            return Invalid::at("transforms.every", "must be at least 1");
        }
        if self.sample_size == 0 {
            return Invalid::at("transforms.sample_size", "must be at least 1");
        }
        let epsilon = self.gamma_epsilon();
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Invalid::at("transforms.gamma_epsilon", "must be zero or positive");
        }
        if !(self.gamma_bound.is_finite() && self.gamma_bound >= 1.0) {
            return Invalid::at(
                "transforms.gamma_bound",
                format!(
                    "{} is not a bound on γ: use a number ≥ 1, e.g. 4",
                    self.gamma_bound
                ),
            );
        }
        let power = self.gamma_step_power;
        if !(power.is_finite() && (0.0..=2.0).contains(&power)) {
            return Invalid::at(
                "transforms.gamma_step_power",
                format!(
                    "{power} is out of range: use a power from 0 (the papers' steps) to 2 \
                     (α β's steps)"
                ),
            );
        }
        if !(self.paper_threshold.is_finite() && self.paper_threshold >= 0.0) {
            return Invalid::at("transforms.paper_threshold", "must be a percentage ≥ 0");
        }
        Ok(())
    }
}
