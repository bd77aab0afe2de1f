//! Reading run folders back: the settings (`run.json`'s, or the resolved preset of a folder
//! written before it, flattened to `key → value` for grouping),
//! the metrics so far (a torn last line from a killed or running process is skipped), the
//! summary if the run ended, and a failure note. A folder that cannot be read, whose records
//! are not one per epoch or disagree with its summary, or that is a link to another, is
//! reported with the reason, never dropped or counted silently.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::bounded::{self, FileKind};
use crate::preset::{Preset, PresetFile, Task};
use crate::sink::run_file;
use crate::sink::{CONFIG_FILE, METRICS_JSONL, SUMMARY_FILE};
use crate::train::{EpochMetrics, RunState, Summary};

/// Written into a run folder when the run could not be started or crashed.
pub const FAILED_FILE: &str = "failed.txt";
/// The folder of a sweep that holds scheduler logs, not runs.
pub const LOG_FOLDER: &str = "slurm";

/// One run as found on disk.
#[derive(Debug, Clone)]
pub struct SavedRun {
    pub dir: PathBuf,
    pub variant: String,
    pub seed: u64,
    pub classify: bool,
    pub batch_size: usize,
    pub epochs: usize,
    /// The resolved preset as dotted keys and their values (JSON text; strings bare).
    pub config: BTreeMap<String, String>,
    pub metrics: Vec<EpochMetrics>,
    pub summary: Option<Summary>,
    /// Why the run failed (diverged, crashed, could not start), if it did.
    pub failure: Option<String>,
}

impl SavedRun {
    /// Whether the run is still going, or was killed (no summary and no failure yet).
    pub fn in_progress(&self) -> bool {
        self.summary.is_none() && self.failure.is_none()
    }

    /// Whether the run trained to its end (including early stopping or a time budget).
    pub fn finished(&self) -> bool {
        self.failure.is_none()
            && self
                .summary
                .as_ref()
                .is_some_and(|s| s.state == RunState::Finished)
    }

    /// Folder name, e.g. `abg-seed2`.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }

    /// Where an unfinished run is, in words.
    pub fn status(&self) -> String {
        let at = format!(
            "after epoch {} of {}",
            self.metrics.last().map_or(0, |m| m.epoch),
            self.epochs
        );
        match (&self.failure, &self.summary) {
            (Some(reason), _) => format!("failed: {reason}"),
            (None, Some(s)) if s.state == RunState::Finished => "finished".into(),
            (None, Some(s)) => format!(
                "{} {at}{}; running it again resumes it",
                s.state.label(),
                s.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(" ({r})"))
            ),
            (None, None) => format!("running, or killed, {at}"),
        }
    }
}

/// Flattens a preset to dotted keys; leaves are JSON text, strings without quotes (as
/// `run.json`'s settings are read).
pub fn flatten(preset: &Preset) -> BTreeMap<String, String> {
    run_file::settings_text(&run_file::flat_settings(preset))
}

/// Parses `metrics.jsonl` text; a last line that does not parse (torn by a kill) is skipped,
/// any other is an error naming the line.
pub fn parse_metrics(text: &str) -> Result<Vec<EpochMetrics>, String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(m) => out.push(m),
            Err(_) if i + 1 == lines.len() => {}
            Err(e) => return Err(format!("{METRICS_JSONL} line {}: {e}", i + 1)),
        }
    }
    Ok(out)
}

/// How a report's reason for leaving a run out ends: what to do about it.
const RECORDS_WAY_OUT: &str = "the file was edited, copied over or damaged: restore it from a \
copy, or run the cell again; the run is left out";

/// A run's records are one per epoch from epoch 1, in order, and agree with its summary (its
/// last epoch, final and best figures): a duplicated, copied or edited record would change a
/// report's figures without a trace, so such a run is left out with the reason.
pub fn check_records(metrics: &[EpochMetrics], summary: Option<&Summary>) -> Result<(), String> {
    for (i, m) in metrics.iter().enumerate() {
        let expected = i + 1;
        if m.epoch != expected {
            let what = if i > 0 && m.epoch == metrics[i - 1].epoch {
                format!("epoch {} twice", m.epoch)
            } else {
                format!("epoch {} where epoch {expected} belongs", m.epoch)
            };
            return Err(format!(
                "{METRICS_JSONL} record {expected}: {what}; {RECORDS_WAY_OUT}"
            ));
        }
    }
    let Some(s) = summary else { return Ok(()) };
    let last = metrics.last();
    let disagree = |what: String| {
        Err(format!(
            "{SUMMARY_FILE} and {METRICS_JSONL} disagree: {what}; {RECORDS_WAY_OUT}"
        ))
    };
    let last_epoch = last.map_or(0, |m| m.epoch);
    if s.epochs_completed != last_epoch {
        return disagree(format!(
            "{} epochs completed, but the records end at epoch {last_epoch}",
            s.epochs_completed
        ));
    }
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    let same_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (a, b) => a.is_none() && b.is_none(),
    };
    if let Some(m) = last {
        if s.final_validation_loss
            .is_some_and(|v| !same(v, m.validation_loss))
            || (s.final_validation_error.is_some()
                && !same_opt(s.final_validation_error, m.validation_error))
        {
            return disagree(format!(
                "the final validation figures differ from the record of epoch {}",
                m.epoch
            ));
        }
    }
    if let Some(best) = s.best_epoch {
        let Some(m) = metrics.iter().find(|m| m.epoch == best) else {
            return disagree(format!("the best epoch {best} has no record"));
        };
        if s.best_validation_loss
            .is_some_and(|v| !same(v, m.validation_loss))
            || (s.best_validation_error.is_some()
                && !same_opt(s.best_validation_error, m.validation_error))
        {
            return disagree(format!(
                "the best validation figures differ from the record of epoch {best}"
            ));
        }
    }
    Ok(())
}

/// What a report needs of a run's settings: from `run.json`, or from `config.toml` in a
/// folder written before `run.json` existed.
struct Settings {
    variant: String,
    seed: u64,
    classify: bool,
    batch_size: usize,
    epochs: usize,
    config: BTreeMap<String, String>,
}

impl Settings {
    /// `Ok(None)` if the folder holds neither file (not a run, or not started).
    fn read(dir: &Path) -> Result<Option<Settings>, String> {
        if let Some(header) = run_file::read(dir)? {
            let config = run_file::settings_text(&header.settings);
            let info = &header.info;
            return Ok(Some(Settings {
                variant: config
                    .get("variant")
                    .cloned()
                    .unwrap_or_else(|| info.variant.clone()),
                seed: header
                    .settings
                    .get("train.seed")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0),
                classify: info.task() == Task::Classify,
                batch_size: info.batch_size,
                epochs: info.epochs,
                config,
            }));
        }
        let config = dir.join(CONFIG_FILE);
        if !config.exists() {
            return Ok(None);
        }
        let file = PresetFile::read_config(&config).map_err(|e| e.to_string())?;
        let p = &file.preset;
        Ok(Some(Settings {
            variant: p.variant.clone(),
            seed: p.train.seed,
            classify: p.model.task == Task::Classify,
            batch_size: p.train.batch_size,
            epochs: p.train.epochs,
            config: flatten(p),
        }))
    }
}

/// Whether `dir` holds a run's header (`run.json`, or `config.toml` before it existed).
pub fn is_run_folder(dir: &Path) -> bool {
    dir.join(run_file::RUN_FILE).is_file() || dir.join(CONFIG_FILE).is_file()
}

/// Reads one run folder; `Ok(None)` if it holds no `run.json` nor `config.toml` (not a run,
/// or not started).
pub fn read_run(dir: &Path) -> Result<Option<SavedRun>, String> {
    let Some(settings) = Settings::read(dir)? else {
        return Ok(None);
    };
    let metrics = match bounded::read_text(&dir.join(METRICS_JSONL), FileKind::Metrics) {
        Ok(text) => parse_metrics(&text)?,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(format!("{METRICS_JSONL}: {}", e.reason())),
    };
    let summary: Option<Summary> =
        match bounded::read_text(&dir.join(SUMMARY_FILE), FileKind::Summary) {
            Ok(text) => {
                Some(serde_json::from_str(&text).map_err(|e| format!("{SUMMARY_FILE}: {e}"))?)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(format!("{SUMMARY_FILE}: {}", e.reason())),
        };
    check_records(&metrics, summary.as_ref())?;
    let failure = bounded::read_text(&dir.join(FAILED_FILE), FileKind::Summary)
        .ok()
        .map(|t| t.trim().to_string())
        .or_else(|| {
            summary
                .as_ref()
                .filter(|s| s.state == RunState::Diverged)
                .map(|s| s.reason.clone().unwrap_or_else(|| "diverged".into()))
        });
    Ok(Some(SavedRun {
        dir: dir.to_owned(),
        variant: settings.variant,
        seed: settings.seed,
        classify: settings.classify,
        batch_size: settings.batch_size,
        epochs: settings.epochs,
        config: settings.config,
        metrics,
        summary,
        failure,
    }))
}

/// What a folder of runs holds.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub runs: Vec<SavedRun>,
    /// (folder name, reason) of every folder left out: unreadable, damaged or doubtful
    /// records, or a link to another folder.
    pub unreadable: Vec<(String, String)>,
    /// Folders without a `run.json` or `config.toml` (cells not started yet, or not runs).
    pub empty: Vec<String>,
}

/// Every run folder directly below `dir`, sorted by name. A folder that is a symbolic link
/// (to another cell, say) is left out with the reason, so that no run counts twice.
pub fn scan(dir: &Path) -> std::io::Result<Scan> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.ends_with(LOG_FOLDER))
        .collect();
    dirs.sort();
    let mut scan = Scan::default();
    for d in dirs {
        let name = d
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if let Ok(target) = fs::read_link(&d) {
            scan.unreadable.push((
                name,
                format!(
                    "a symbolic link to {}, not a run folder of its own; left out so that no \
                     run counts twice (replace it with a copy to count it)",
                    target.display()
                ),
            ));
            continue;
        }
        match read_run(&d) {
            Ok(Some(run)) => scan.runs.push(run),
            Ok(None) => scan.empty.push(name),
            Err(reason) => scan.unreadable.push((name, reason)),
        }
    }
    Ok(scan)
}

/// Every readable run folder directly below `dir`, sorted by name.
pub fn read_runs(dir: &Path) -> std::io::Result<Vec<SavedRun>> {
    scan(dir).map(|s| s.runs)
}
