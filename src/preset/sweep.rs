//! `[sweep]`: the variants, seeds and grid axes `ltmlp sweep` runs when the command line does
//! not say (the axes are parsed and checked by the sweep, which knows the grid's rules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `[sweep]` table of a preset: what `ltmlp sweep` runs when the command line does not say.
///
/// ```toml
/// [sweep]
/// variants = ["none", "abg"]
/// seeds = 3
/// [sweep.grid]
/// "train.learning_rate" = [0.05, 0.1]
/// "abg:train.learning_rate" = [0.2, 0.4]   # this variant's own values
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepSection {
    pub variants: Option<Vec<String>>,
    pub seeds: Option<usize>,
    /// Axis (`KEY` or `VARIANT:KEY`) → values.
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

impl SweepSection {
    pub fn is_empty(&self) -> bool {
        self == &SweepSection::default()
    }
}
