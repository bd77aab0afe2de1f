//! Sweeps: variants × settings × seeds as a deterministic plan of cells, each run by
//! `ltmlp run-job` (here by J local workers, on Slurm as a job array, or on any hosts sharing
//! the folder), resumable cell by cell; `compare` is the sweep without axes.

pub mod axes;
pub mod cell;
pub mod command;
pub mod data_cache;
pub mod local;
pub mod lock;
pub mod plan;
pub mod slurm;

pub use axes::SweepSection;
pub use command::{compare, run_job, sweep, CompareArgs, RunJobArgs, SweepArgs};
pub use plan::{Plan, SweepSpec};

use std::path::PathBuf;

use crate::preset::PresetError;

/// Why a sweep cannot be planned or continued.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Axis(#[from] axes::AxisError),
    #[error("cell {index} ({cell}): {message}")]
    Cell {
        index: usize,
        cell: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Plan { path: PathBuf, message: String },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] crate::bounded::ReadError),
}
