//! Preparing an experiment: its data in the run's precision, the network's shape checked
//! against it, the one check of a checkpoint before a resume, and the run's fixed facts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::{self, Dataset, RawData};
use crate::net::Topology;
use crate::preset::{Precision, PresetError, Resolved, Task};
use crate::protocol::RunInfo;
use crate::real::Real;
use crate::train::checkpoint::Checkpoint;

/// The prepared data in the run's precision.
#[derive(Clone)]
pub enum AnyData {
    F32(Arc<Dataset<f32>>),
    F64(Arc<Dataset<f64>>),
}

/// Everything a run needs, checked before any thread starts.
pub struct Experiment {
    pub resolved: Resolved,
    pub data: AnyData,
    pub topology: Topology,
    pub data_description: String,
}

impl AnyData {
    /// "f32" or "f64".
    pub fn precision_name(&self) -> &'static str {
        match self {
            AnyData::F32(_) => f32::NAME,
            AnyData::F64(_) => f64::NAME,
        }
    }

    /// A fingerprint of the prepared data (see [`Dataset::fingerprint`]).
    pub fn fingerprint(&self) -> u32 {
        match self {
            AnyData::F32(d) => d.fingerprint(),
            AnyData::F64(d) => d.fingerprint(),
        }
    }
}

/// Why an experiment cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Source(#[from] data::SourceError),
    #[error("{file}: {error}")]
    Data {
        file: PathBuf,
        error: data::PrepareError,
    },
}

impl Experiment {
    /// Loads the data (the preset's, or `data_dir` if given) and checks the model against it.
    pub fn prepare(
        mut resolved: Resolved,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, PrepareError> {
        if let Some(dir) = data_dir {
            resolved.preset.data.source = dir.display().to_string();
        }
        let source = resolved.preset.data.source();
        let raw = data::load(&source)?;
        Self::from_raw(resolved, &raw, source.describe())
    }

    /// The one check before `cp` (read from `path`) continues this experiment: the same
    /// precision and the same data. `settings` names where the experiment's settings came
    /// from and `data_origin` where its data did, for the message.
    pub fn check_resume(
        &self,
        path: &Path,
        cp: &Checkpoint,
        settings: &str,
        data_origin: &str,
    ) -> Result<(), String> {
        let (saved, wanted) = (cp.state.precision_name(), self.data.precision_name());
        if saved != wanted {
            return Err(format!(
                "{}: holds an {saved} network but {settings} says train.precision = \"{wanted}\"; \
                 resume with the precision the run started with",
                path.display()
            ));
        }
        let other_data = match cp.data_fingerprint {
            Some(stored) => stored != self.data.fingerprint(),
            // A version-2 checkpoint has no fingerprint: at least the shapes must agree.
            None => cp.state.topology() != &self.topology,
        };
        if other_data {
            return Err(format!(
                "{}: was trained on other data than {data_origin} gives now ({}); resume with \
                 the data the run started on",
                path.display(),
                self.data_description
            ));
        }
        Ok(())
    }

    /// The run's fixed facts, as its `started` event and `run.json` give them.
    pub fn run_info(&self, out_dir: Option<&Path>) -> RunInfo {
        let p = &self.resolved.preset;
        let train_examples = match &self.data {
            AnyData::F32(d) => d.train.len(),
            AnyData::F64(d) => d.train.len(),
        };
        RunInfo {
            preset: p.name.clone(),
            variant: self.resolved.variant.to_string(),
            data: self.data_description.clone(),
            topology: self.topology.describe(),
            weights: self.topology.weight_count(),
            epochs: p.train.epochs,
            iterations_per_epoch: crate::train::trainer::iterations_per_epoch(
                train_examples as u64,
                p.train.batch_size,
            ) as usize,
            batch_size: p.train.batch_size,
            classify: p.model.task == Task::Classify,
            precision: self.data.precision_name().to_string(),
            monitor: p.data.monitor,
            optimizer: p.train.optimizer,
            task: Some(p.model.task),
            trainer: None,
            out_dir: out_dir.map(|d| d.display().to_string()),
        }
    }

    /// Builds the experiment from already loaded raw data.
    pub fn from_raw(
        resolved: Resolved,
        raw: &RawData,
        description: String,
    ) -> Result<Self, PrepareError> {
        let prep = resolved.preset.data.preprocess(resolved.preset.model.task);
        let origin = resolved.origin.clone();
        let wrap = |error| PrepareError::Data {
            file: origin.clone(),
            error,
        };
        let data = match resolved.preset.train.precision {
            Precision::F32 => {
                AnyData::F32(Arc::new(data::prepare::<f32>(raw, &prep).map_err(wrap)?))
            }
            Precision::F64 => {
                AnyData::F64(Arc::new(data::prepare::<f64>(raw, &prep).map_err(wrap)?))
            }
        };
        let (input_dim, classes, train) = match &data {
            AnyData::F32(d) => (d.input_dim(), d.target_outputs(), d.train.len()),
            AnyData::F64(d) => (d.input_dim(), d.target_outputs(), d.train.len()),
        };
        let topology = resolved.topology(input_dim, classes, train)?;
        Ok(Experiment {
            resolved,
            data,
            topology,
            data_description: description,
        })
    }
}
