//! `units.jsonl`: the per-unit statistics of every evaluation (each hidden unit's output mean
//! and spread, slope, saturation, collapse, α β γ, the guard's mark), one JSON object a line,
//! so that late viewers, reports and converters have their history; `metrics.jsonl` keeps
//! only the layers' summaries. Written with the metrics (all three files or none), cut back on
//! a resume to the evaluations the checkpoint kept.

use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{move_aside, read_bounded, write_error, AppendLog, SinkError};
use crate::protocol::EpochMetrics;
use crate::stats::UnitStats;

pub const UNITS_JSONL: &str = "units.jsonl";

/// One evaluation's per-unit statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitsRecord {
    pub epoch: usize,
    pub iteration: u64,
    /// In the order of the evaluation's `layers` in `metrics.jsonl`.
    pub layers: Vec<LayerUnits>,
}

/// The units of one hidden layer (`layer`: its index, the input layer being 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerUnits {
    pub layer: usize,
    pub units: UnitStats,
}

impl UnitsRecord {
    pub fn of(m: &EpochMetrics) -> Self {
        UnitsRecord {
            epoch: m.epoch,
            iteration: m.iteration,
            layers: m
                .layers
                .iter()
                .map(|l| LayerUnits {
                    layer: l.layer,
                    units: l.per_unit.clone(),
                })
                .collect(),
        }
    }

    /// Puts these per-unit statistics into the layers of `layers` (an evaluation's, from
    /// `metrics.jsonl`, which keeps only their summaries).
    pub fn fill(&self, layers: &mut [crate::stats::LayerStats]) {
        for layer in layers.iter_mut() {
            if let Some(found) = self.layers.iter().find(|u| u.layer == layer.layer) {
                layer.per_unit = found.units.clone();
            }
        }
    }

    /// The record as one line of `units.jsonl`.
    pub fn line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self).map(|mut line| {
            line.push('\n');
            line
        })
    }
}

/// Starts `units.jsonl` in a new run's folder.
pub fn create(dir: &Path) -> Result<AppendLog, SinkError> {
    let path = dir.join(UNITS_JSONL);
    AppendLog::create_new(&path).map_err(write_error(&path))
}

/// Continues `units.jsonl` after the evaluation of `last_epoch` (0: none kept): its leading
/// whole records up to that epoch are kept, the rest is moved to
/// `units.jsonl.after-checkpoint`. A folder written before the file existed starts it empty;
/// a damaged record ends what is kept (statistics never block a resume). Returns the file
/// and the kept records, so that a resumed run's history has its units again.
pub fn resume(dir: &Path, last_epoch: usize) -> Result<(AppendLog, Vec<UnitsRecord>), SinkError> {
    let path = dir.join(UNITS_JSONL);
    let bytes = match read_bounded(&path) {
        Ok(bytes) => bytes,
        Err(SinkError::Read { error, .. }) if error.kind() == ErrorKind::NotFound => {
            let log = AppendLog::create_new(&path).map_err(write_error(&path))?;
            return Ok((log, Vec::new()));
        }
        Err(e) => return Err(e),
    };
    let mut kept = 0;
    let mut records = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let record = line
            .ends_with(b"\n")
            .then(|| serde_json::from_slice::<UnitsRecord>(line).ok())
            .flatten();
        match record {
            Some(r) if r.epoch <= last_epoch => {
                kept += line.len();
                records.push(r);
            }
            _ => break,
        }
    }
    move_aside(&path, &bytes[kept..])?;
    let log = AppendLog::continue_after(&path, &bytes[..kept]).map_err(write_error(&path))?;
    Ok((log, records))
}
