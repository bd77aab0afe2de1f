//! Writing a run's files: `config.toml` (the resolved preset), `metrics.jsonl` (one JSON object
//! per evaluation), `metrics.csv` (its scalar columns) and `summary.json`. Every record is
//! flushed as it is written, so a killed run keeps whole lines up to its last evaluation.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::train::protocol::{EpochMetrics, RunState, Summary};

pub mod follow;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_JSONL: &str = "metrics.jsonl";
pub const METRICS_CSV: &str = "metrics.csv";
pub const SUMMARY_FILE: &str = "summary.json";

const CSV_HEADER: &str = "epoch,iteration,elapsed_seconds,train_loss,train_error,validation_loss,\
validation_error,test_loss,test_error,learning_rate,momentum,examples_per_second,alpha,beta,gamma,\
collapsed_fraction,saturated_fraction,max_output_change";

/// Why a run's files cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write ({source}); choose another --out folder or free some space")]
pub struct SinkError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError {
        path: path.to_owned(),
        source,
    }
}

/// Writes a run folder.
pub struct Recorder {
    dir: PathBuf,
    /// Every evaluation written so far (a resumed run starts with the kept ones).
    history: Vec<EpochMetrics>,
    jsonl: BufWriter<File>,
    csv: BufWriter<File>,
    best: Option<EpochMetrics>,
    classify: bool,
}

impl Recorder {
    /// Creates the folder and writes `config.toml`; fails before training if it is unwritable.
    pub fn create(dir: &Path, config_toml: &str, classify: bool) -> Result<Self, SinkError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let config = dir.join(CONFIG_FILE);
        fs::write(&config, config_toml).map_err(io_error(&config))?;
        let jsonl_path = dir.join(METRICS_JSONL);
        let jsonl = File::create(&jsonl_path).map_err(io_error(&jsonl_path))?;
        let csv_path = dir.join(METRICS_CSV);
        let mut csv = BufWriter::new(File::create(&csv_path).map_err(io_error(&csv_path))?);
        writeln!(csv, "{CSV_HEADER}").map_err(io_error(&csv_path))?;
        csv.flush().map_err(io_error(&csv_path))?;
        Ok(Recorder {
            dir: dir.to_owned(),
            history: Vec::new(),
            jsonl: BufWriter::new(jsonl),
            csv,
            best: None,
            classify,
        })
    }

    /// Reopens a run folder to continue it: keeps the first `lines` evaluations of
    /// `metrics.jsonl` (those the checkpoint had seen; a torn line is dropped), rewrites both
    /// metrics files with exactly those, and appends from there.
    pub fn resume(dir: &Path, classify: bool, lines: usize) -> Result<Self, SinkError> {
        let jsonl_path = dir.join(METRICS_JSONL);
        let text = fs::read_to_string(&jsonl_path).map_err(io_error(&jsonl_path))?;
        let kept: Vec<(&str, EpochMetrics)> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok().map(|m| (l, m)))
            .take(lines)
            .collect();
        let config_path = dir.join(CONFIG_FILE);
        let config = fs::read_to_string(&config_path).map_err(io_error(&config_path))?;
        let mut rec = Recorder::create(dir, &config, classify)?;
        for (line, m) in kept {
            // The original text, so that a resumed file is byte-identical up to here.
            rec.write_line(line, &m)?;
        }
        Ok(rec)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Evaluations written so far.
    pub fn lines(&self) -> usize {
        self.history.len()
    }

    /// Every evaluation written so far.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Appends one evaluation to `metrics.jsonl` and `metrics.csv`.
    pub fn epoch(&mut self, m: &EpochMetrics) -> Result<(), SinkError> {
        let line = serde_json::to_string(m).map_err(|e| SinkError {
            path: self.dir.join(METRICS_JSONL),
            source: std::io::Error::other(e),
        })?;
        self.write_line(&line, m)
    }

    fn write_line(&mut self, line: &str, m: &EpochMetrics) -> Result<(), SinkError> {
        let jsonl_path = self.dir.join(METRICS_JSONL);
        writeln!(self.jsonl, "{line}").map_err(io_error(&jsonl_path))?;
        self.jsonl.flush().map_err(io_error(&jsonl_path))?;
        let csv_path = self.dir.join(METRICS_CSV);
        writeln!(self.csv, "{}", csv_row(m)).map_err(io_error(&csv_path))?;
        self.csv.flush().map_err(io_error(&csv_path))?;
        if self.is_better(m) {
            self.best = Some(m.clone());
        }
        self.history.push(m.clone());
        Ok(())
    }

    fn is_better(&self, m: &EpochMetrics) -> bool {
        let Some(best) = &self.best else { return true };
        match (self.classify, m.validation_error, best.validation_error) {
            (true, Some(e), Some(b)) if e != b => e < b,
            _ => m.validation_loss < best.validation_loss,
        }
    }

    /// Final and best figures so far, with the run's end state.
    pub fn summary(&self, base: SummaryBase) -> Summary {
        summarize(
            base,
            self.history.last(),
            self.best.as_ref(),
            Some(&self.dir),
        )
    }

    /// Writes `summary.json`.
    pub fn write_summary(&mut self, summary: &Summary) -> Result<(), SinkError> {
        let path = self.dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(summary).map_err(|e| SinkError {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        fs::write(&path, text + "\n").map_err(io_error(&path))
    }
}

/// What the recorder cannot know by itself for the summary.
#[derive(Debug, Clone)]
pub struct SummaryBase {
    pub preset: String,
    pub variant: String,
    pub monitor: crate::preset::Monitor,
    pub state: RunState,
    pub reason: Option<String>,
    pub iterations: u64,
    pub wall_seconds: f64,
    pub train_seconds: f64,
    pub reestimate_seconds: f64,
    pub examples_per_second: f64,
}

/// A summary from the last and the best evaluation (none for a run without files).
pub fn summarize(
    base: SummaryBase,
    last: Option<&EpochMetrics>,
    best: Option<&EpochMetrics>,
    dir: Option<&Path>,
) -> Summary {
    Summary {
        preset: base.preset,
        variant: base.variant,
        monitor: base.monitor,
        state: base.state,
        reason: base.reason,
        epochs_completed: last.map_or(0, |m| m.epoch),
        iterations: base.iterations,
        wall_seconds: base.wall_seconds,
        train_seconds: base.train_seconds,
        reestimate_seconds: base.reestimate_seconds,
        examples_per_second: base.examples_per_second,
        final_train_loss: last.map(|m| m.train_loss),
        final_validation_loss: last.map(|m| m.validation_loss),
        final_validation_error: last.and_then(|m| m.validation_error),
        final_test_loss: last.map(|m| m.test_loss),
        final_test_error: last.and_then(|m| m.test_error),
        best_epoch: best.map(|m| m.epoch),
        best_validation_loss: best.map(|m| m.validation_loss),
        best_validation_error: best.and_then(|m| m.validation_error),
        test_loss_at_best: best.map(|m| m.test_loss),
        test_error_at_best: best.and_then(|m| m.test_error),
        out_dir: dir.map(|d| d.display().to_string()),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn csv_row(m: &EpochMetrics) -> String {
    let layers = m.layers.len().max(1) as f64;
    let collapsed = m.layers.iter().map(|l| l.collapsed_fraction).sum::<f64>() / layers;
    let saturated = m.layers.iter().map(|l| l.saturated_fraction).sum::<f64>() / layers;
    let change = m
        .transform_events
        .iter()
        .map(|e| e.max_output_change)
        .filter(|c| c.is_finite())
        .fold(None, |acc: Option<f64>, c| {
            Some(acc.map_or(c, |a| a.max(c)))
        });
    [
        m.epoch.to_string(),
        m.iteration.to_string(),
        format!("{:.3}", m.elapsed_seconds),
        m.train_loss.to_string(),
        opt(m.train_error),
        m.validation_loss.to_string(),
        opt(m.validation_error),
        m.test_loss.to_string(),
        opt(m.test_error),
        m.learning_rate.to_string(),
        m.momentum.to_string(),
        format!("{:.1}", m.examples_per_second),
        u8::from(m.flags.alpha).to_string(),
        u8::from(m.flags.beta).to_string(),
        u8::from(m.flags.gamma).to_string(),
        collapsed.to_string(),
        saturated.to_string(),
        opt(change),
    ]
    .join(",")
}
