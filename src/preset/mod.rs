//! Experiment presets: the schema of every section, each checking its own values into a
//! [`Checked`] value, the rules that join sections, variants (`none`, `ab`, `abg`, `bn`, `ln`)
//! with their own settings, and `--set key=value` overrides. Errors name the file, the key,
//! the line and what is accepted.
//!
//! The preset is a schema layer: it depends on `net` and `data` only, and the modules that run
//! an experiment (train, sweep, the dashboard) import their settings from here.

mod compare;
mod data;
mod file;
mod guard;
mod locate;
mod model;
mod resolved;
mod stats;
mod sweep;
mod table;
mod train;
mod transforms;
mod variant;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::net::{Flags, Shortcuts};

pub use compare::CompareSection;
pub use data::{DataSection, Monitor};
pub use file::{PresetError, PresetFile, DEFAULT_PRESET, DEFAULT_PRESET_NAME};
pub use guard::{GuardMode, GuardSection};
pub use model::{ModelSection, Task};
pub use resolved::Resolved;
pub use stats::StatsSection;
pub use sweep::SweepSection;
pub use table::apply_override;
pub use train::{
    AdamSettings, KfacSettings, MuonSettings, OptimizerKind, Precision, ScheduleKind, TrainSection,
};
pub use transforms::{PolicyKind, TransformSection};
pub use variant::{UnknownVariant, Variant, PAPER_VARIANTS, VARIANTS};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The variant run when none is named on the command line, as written: it is parsed
    /// into a [`Variant`] when the preset is resolved, whose error names this line.
    #[serde(default = "default_variant")]
    pub variant: String,
    #[serde(default)]
    pub data: DataSection,
    pub model: ModelSection,
    pub train: TrainSection,
    #[serde(default)]
    pub transforms: TransformSection,
    #[serde(default)]
    pub stats: StatsSection,
    /// What to do with units that collapse (`[guard]`, off by default).
    #[serde(default)]
    pub guard: GuardSection,
    #[serde(default)]
    pub compare: CompareSection,
    /// What `ltmlp sweep` runs: variants, seeds and axes (`[sweep.grid]`).
    #[serde(default, skip_serializing_if = "SweepSection::is_empty")]
    pub sweep: SweepSection,
    /// Per-variant settings, merged over the rest: `[variants.abg] train.learning_rate = 0.2`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, toml::Table>,
}

fn default_variant() -> String {
    Variant::Ab.name().to_string()
}

/// A value that breaks a rule of its section: the dotted key and what is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

impl Invalid {
    /// The error for `key`, as the `Err` a check returns.
    fn at<T>(key: &'static str, message: impl Into<String>) -> Result<T, Invalid> {
        Err(Invalid {
            key,
            message: message.into(),
        })
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Settings that passed their checks (linfa's `ParamGuard`): only [`Section::check`] and
/// [`Preset::check`] make one, so whoever holds one holds values that keep every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<S>(S);

impl<S> Checked<S> {
    /// The settings themselves, to be held where they may still change (a live retune goes
    /// through [`Resolved::with_override`], which checks again).
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl<S> Deref for Checked<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

/// One section of a preset, which knows its own rules.
pub trait Section: Sized {
    /// The first rule this section's values break, if any.
    fn rules(&self) -> Result<(), Invalid>;

    /// The section, checked.
    fn check(self) -> Result<Checked<Self>, Invalid> {
        self.rules()?;
        Ok(Checked(self))
    }
}

impl Preset {
    /// Every section's own rules, then the rules that join sections, for a run with the
    /// α/β/γ switches `flags`. Semantic checks only: what needs the data is checked once it
    /// is read ([`Resolved::topology`]).
    pub fn check(self, flags: Flags) -> Result<Checked<Preset>, Invalid> {
        self.train.rules()?;
        self.guard.rules()?;
        self.model.rules()?;
        self.transforms.rules()?;
        self.stats.rules()?;
        self.data.rules()?;
        self.compare.rules()?;
        self.cross_rules(flags)?;
        Ok(Checked(self))
    }

    /// The rules that join two sections, or a section and the variant.
    fn cross_rules(&self, flags: Flags) -> Result<(), Invalid> {
        let optimizer = self.train.optimizer;
        if !optimizer.can_follow_all(flags) {
            return Invalid::at(
                "train.optimizer",
                format!(
                    "\"{}\" with α/β/γ ({}): the re-estimation's compensation mixes weights \
                     across layers and its state cannot follow it; use optimizer = \"sgd\" \
                     with ab/abg, or {} with none, bn or ln",
                    optimizer.name(),
                    flags.label(),
                    optimizer.name()
                ),
            );
        }
        let m = &self.model;
        if optimizer == OptimizerKind::Muon && m.hidden.is_empty() {
            return Invalid::at(
                "train.optimizer",
                "\"muon\" orthogonalises the weight matrices into hidden layers and this \
                 network has none; add a hidden layer (model.hidden) or use optimizer = \"sgd\"",
            );
        }
        if flags.alpha && m.shortcuts == Shortcuts::Adjacent && !m.hidden.is_empty() {
            return Invalid::at(
                "model.shortcuts",
                "\"adjacent\" cannot carry α: its compensation needs shortcut connections; \
                 use shortcuts = \"all\" or variant none",
            );
        }
        if self.data.classes.is_some() && m.task != Task::Classify {
            return Invalid::at(
                "data.classes",
                "applies to classification (model.task = \"classify\") only; remove it",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The modules the preset may import: the schema layer sits on the model's and the data's
    /// types and nothing that runs an experiment.
    const BELOW_THE_PRESET: [&str; 5] = ["preset", "net", "data", "bounded", "real"];

    /// The top-level modules a source text names through `crate::…`, grouped imports
    /// (`crate::{a, b::c}`) included.
    fn crate_modules(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                found.extend(group.split(',').map(|path| first_segment(path.trim())));
            } else {
                found.push(first_segment(rest));
            }
        }
        found.retain(|m| !m.is_empty());
        found
    }

    fn first_segment(path: &str) -> String {
        path.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }

    #[test]
    fn the_preset_imports_nothing_above_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/preset");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("src/preset is readable") {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a source file");
            // Unit tests may reach further than the schema they test.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            files += 1;
            for module in crate_modules(code) {
                assert!(
                    BELOW_THE_PRESET.contains(&module.as_str()),
                    "{} imports crate::{module}; the preset may import only {:?} \
                     (train, sweep, tui, remote and sink import the preset)",
                    path.display(),
                    BELOW_THE_PRESET
                );
            }
        }
        assert!(files > 1, "no sources found in {}", dir.display());
    }

    #[test]
    fn grouped_and_plain_imports_are_both_seen() {
        let text = "use crate::net::Flags;\nuse crate::{bounded, train::adam};\nx: crate::sweep::S";
        assert_eq!(crate_modules(text), ["net", "bounded", "train", "sweep"]);
    }
}
