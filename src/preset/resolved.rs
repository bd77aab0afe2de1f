//! A resolved experiment: one variant of a preset with every override applied and checked,
//! the network shape it asks for, and its configuration file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Task, MAX_WEIGHTS};
use super::table::{apply_override, deserialize};
use super::variant::Variant;
use super::{Preset, PresetError};
use crate::net::{Flags, Topology, UnitKind};

/// A fully resolved, validated experiment: one variant, every override applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub preset: Preset,
    pub variant: Variant,
    pub flags: Flags,
    /// Where the preset came from (for messages and reports).
    pub origin: PathBuf,
}

impl Resolved {
    /// The network shape for data with `input_dim` inputs and `outputs` classes (or regression
    /// targets), checked against the data's sizes.
    pub fn topology(
        &self,
        input_dim: usize,
        outputs: usize,
        train: usize,
    ) -> Result<Topology, PresetError> {
        let p = &self.preset;
        let error = |key: &str, message: String| PresetError {
            file: self.origin.clone(),
            line: None,
            message: format!("{key}: {message}"),
        };
        if p.train.batch_size > train {
            return Err(error(
                "train.batch_size",
                format!(
                    "{} is larger than the {train} training examples; use at most {train}",
                    p.train.batch_size
                ),
            ));
        }
        let (output, output_kind) = match p.model.task {
            Task::Classify => (outputs, UnitKind::Softmax),
            Task::Autoencode => (input_dim, UnitKind::Linear),
            Task::Regress => (outputs, UnitKind::Linear),
        };
        let mut sizes = vec![input_dim];
        sizes.extend(&p.model.hidden);
        sizes.push(output);
        let weights: usize = (1..sizes.len())
            .map(|l| {
                (0..l)
                    .map(|k| sizes[l].saturating_mul(sizes[k]))
                    .sum::<usize>()
            })
            .sum();
        if weights > MAX_WEIGHTS {
            return Err(error(
                "model.hidden",
                format!(
                    "{:?} with {input_dim} inputs gives {weights} weights, more than the \
                     {MAX_WEIGHTS} ltmlp accepts; use smaller layers",
                    p.model.hidden
                ),
            ));
        }
        let mut kinds = vec![UnitKind::Input];
        kinds.extend((1..=p.model.hidden.len()).map(|l| {
            if p.model.linear.contains(&l) {
                UnitKind::Linear
            } else {
                UnitKind::Tanh
            }
        }));
        kinds.push(output_kind);
        Topology::new(sizes, kinds, p.model.shortcuts, p.model.bottleneck)
            .map(|t| t.with_norm(self.variant.norm()))
            .map_err(|e| error("model", e.to_string()))
    }

    /// This experiment with one more `key=value` applied and everything validated again, with
    /// the messages a preset or `--set` would get (for settings changed while a run trains).
    pub fn with_override(&self, item: &str) -> Result<Resolved, String> {
        let mut table = toml::Table::try_from(&self.preset).map_err(|e| e.to_string())?;
        apply_override(&mut table, item)?;
        let checked = deserialize(&table)?
            .check(self.flags)
            .map_err(|invalid| invalid.to_string())?;
        Ok(Resolved {
            preset: checked.into_inner(),
            ..self.clone()
        })
    }

    /// The resolved preset as TOML (written as `config.toml`; it runs the same experiment).
    /// Values whose default depends on other settings are written out, so that the file
    /// means the same whatever data a resume is pointed at.
    pub fn to_toml(&self) -> String {
        let mut complete = self.preset.clone();
        complete.data.validation_size = complete.data.validation_size();
        toml::to_string_pretty(&complete).unwrap_or_default()
    }
}
