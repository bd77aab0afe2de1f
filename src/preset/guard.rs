//! `[guard]`: what the γ guard does to a unit that collapses, and the section's own checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};

/// What the guard does to a collapsed unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardMode {
    /// Nothing (the papers' method as published).
    #[default]
    Off,
    /// An event (and the dashboard's banner) when a unit collapses; nothing changes.
    Warn,
    /// γ of the unit bounded by `guard.gamma_cap` from now on (compensated).
    Cap,
    /// γ of the unit held at 1 from now on (compensated): the unit keeps α and β only.
    UnitOff,
    /// The unit's incoming weights and bias drawn afresh and its outgoing weights zeroed (so the
    /// network function is unchanged), its α β γ neutral and its optimizer state cleared.
    Reinit,
}

impl GuardMode {
    pub fn name(self) -> &'static str {
        match self {
            GuardMode::Off => "off",
            GuardMode::Warn => "warn",
            GuardMode::Cap => "cap",
            GuardMode::UnitOff => "unit-off",
            GuardMode::Reinit => "reinit",
        }
    }
}

/// `[guard]` in a preset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSection {
    pub mode: GuardMode,
    /// The bound on γ of a collapsed unit under `mode = "cap"`.
    pub gamma_cap: f64,
}

impl Default for GuardSection {
    fn default() -> Self {
        GuardSection {
            mode: GuardMode::Off,
            gamma_cap: 4.0,
        }
    }
}

impl Section for GuardSection {
    fn rules(&self) -> Result<(), Invalid> {
        let cap = self.gamma_cap;
        if !(cap.is_finite() && cap >= 1.0) {
            return Invalid::at(
                "guard.gamma_cap",
                format!("{cap} must be a number ≥ 1 (γ's bound for a collapsed unit), e.g. 4"),
            );
        }
        Ok(())
    }
}
