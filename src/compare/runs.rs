//! Reading run folders back: the resolved preset, the metrics so far (a torn last line from a
//! killed or running process is skipped), the summary if the run ended, and a failure note.

use std::fs;
use std::path::{Path, PathBuf};

use crate::preset::PresetFile;
use crate::sink::{CONFIG_FILE, METRICS_JSONL, SUMMARY_FILE};
use crate::train::{EpochMetrics, RunState, Summary};

/// Written into a run folder when the run could not be started or crashed.
pub const FAILED_FILE: &str = "failed.txt";

/// One run as found on disk.
#[derive(Debug, Clone)]
pub struct SavedRun {
    pub dir: PathBuf,
    pub variant: String,
    pub seed: u64,
    pub classify: bool,
    pub metrics: Vec<EpochMetrics>,
    pub summary: Option<Summary>,
    /// Why the run failed (diverged, crashed, could not start), if it did.
    pub failure: Option<String>,
}

impl SavedRun {
    /// Whether the run is still going (no summary and no failure yet).
    pub fn in_progress(&self) -> bool {
        self.summary.is_none() && self.failure.is_none()
    }

    /// Folder name, e.g. `abg-seed2`.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// Parses `metrics.jsonl` text; lines that do not parse (a torn last line) are skipped.
pub fn parse_metrics(text: &str) -> Vec<EpochMetrics> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Reads one run folder; `None` if it holds no `config.toml`.
pub fn read_run(dir: &Path) -> Option<SavedRun> {
    let config = dir.join(CONFIG_FILE);
    let file = PresetFile::read(&config).ok()?;
    let metrics = fs::read_to_string(dir.join(METRICS_JSONL))
        .map(|t| parse_metrics(&t))
        .unwrap_or_default();
    let summary: Option<Summary> = fs::read_to_string(dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let failure = fs::read_to_string(dir.join(FAILED_FILE))
        .ok()
        .map(|t| t.trim().to_string())
        .or_else(|| {
            summary
                .as_ref()
                .filter(|s| s.state == RunState::Diverged)
                .map(|s| s.reason.clone().unwrap_or_else(|| "diverged".into()))
        });
    Some(SavedRun {
        dir: dir.to_owned(),
        variant: file.preset.variant.clone(),
        seed: file.preset.train.seed,
        classify: file.preset.model.task == crate::preset::Task::Classify,
        metrics,
        summary,
        failure,
    })
}

/// Every run folder directly below `dir`, sorted by name.
pub fn read_runs(dir: &Path) -> std::io::Result<Vec<SavedRun>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs.iter().filter_map(|d| read_run(d)).collect())
}
