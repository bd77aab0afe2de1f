//! Writing a run's files: `config.toml` (the resolved preset), `metrics.jsonl` (one JSON object
//! per evaluation), `metrics.csv` (its scalar columns) and `summary.json`. Whole files are
//! replaced atomically and the metrics are append-only with a checked length (`files`); one
//! process at a time writes a folder (`folder`); a resume verifies what it keeps and rewrites
//! nothing in place.

use std::fs;
use std::path::{Path, PathBuf};

use crate::bounded::{self, FileKind, Problem, ReadError};
use crate::protocol::{EpochMetrics, MetricsMark, Summary};

pub mod actions;
pub mod folder;
pub mod follow;
pub mod run_file;
pub mod run_files;
pub mod units;

use crate::durable::{write_atomic, AppendLog};
pub use folder::{claim_existing, claim_new, create_unique, FolderError, RunLock};
pub use run_files::RunFiles;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_JSONL: &str = "metrics.jsonl";
pub const METRICS_CSV: &str = "metrics.csv";
pub const SUMMARY_FILE: &str = "summary.json";
/// Where a resume moves metric lines written after the checkpoint it continues from (a run
/// killed between an evaluation and its checkpoint); they are kept, never deleted.
pub const AFTER_CHECKPOINT_SUFFIX: &str = ".after-checkpoint";

const CSV_HEADER: &str = "epoch,iteration,elapsed_seconds,train_loss,train_error,validation_loss,\
validation_error,test_loss,test_error,learning_rate,momentum,examples_per_second,alpha,beta,gamma,\
collapsed_fraction,saturated_fraction,max_output_change";

/// Why a run's files cannot be written or continued.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: cannot write ({error}); choose another --out folder or free some space")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: cannot read ({error}); a resume needs the run's files as it left them")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(
        "{path}:{line}: not a metrics record ({reason}); the file was edited or damaged: \
         restore it, or start a new run"
    )]
    Damaged {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "{path}: holds {found} whole records but the checkpoint was taken after {expected}: the \
         file was truncated or replaced; restore it (ltmlp never shortens it), or start a new run"
    )]
    Short {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error(
        "{path}: its first {lines} records are not the ones the checkpoint saw (length or \
         checksum differs); restore the file, or start a new run"
    )]
    Changed { path: PathBuf, lines: usize },
    /// Not a regular file, or larger than any run writes.
    #[error(transparent)]
    Bounded(ReadError),
    /// A damaged `actions.jsonl` (the message names the file, the line and the way out).
    #[error("{0}")]
    Actions(String),
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |error| SinkError::Write {
        path: path.to_owned(),
        error,
    }
}

/// Writes a run folder; holds the folder's lock for as long as it lives.
pub struct Recorder {
    dir: PathBuf,
    _lock: RunLock,
    /// Every evaluation written so far (a resumed run starts with the kept ones).
    history: Vec<EpochMetrics>,
    jsonl: AppendLog,
    csv: AppendLog,
    /// `units.jsonl`: the per-unit statistics of each evaluation.
    units: AppendLog,
    /// `run.json`, once the host wrote it; completed with the summary.
    header: Option<run_file::RunHeader>,
}

impl Recorder {
    /// Starts a new run in the locked, empty folder: `config.toml` (a run ltmlp trains has
    /// one), then the metrics files (created, never truncated); fails before training if the
    /// folder is unwritable.
    pub fn create(lock: RunLock, config_toml: Option<&str>) -> Result<Self, SinkError> {
        let dir = lock.dir().to_owned();
        Self::create_files(lock, config_toml).inspect_err(|_| {
            // The folder was empty and nothing trained yet: leave it empty again, so that the
            // same --out can be used once the fault is mended.
            for name in [CONFIG_FILE, METRICS_JSONL, METRICS_CSV, units::UNITS_JSONL] {
                let _ = fs::remove_file(dir.join(name));
            }
        })
    }

    /// Undoes [`Recorder::create`] when a later step of starting the run fails: the folder is
    /// left empty again.
    pub fn abandon_new(self) {
        let dir = self.dir.clone();
        drop(self);
        for name in [
            CONFIG_FILE,
            METRICS_JSONL,
            METRICS_CSV,
            units::UNITS_JSONL,
            run_file::RUN_FILE,
            actions::ACTIONS_FILE,
        ] {
            let _ = fs::remove_file(dir.join(name));
        }
    }

    fn create_files(lock: RunLock, config_toml: Option<&str>) -> Result<Self, SinkError> {
        let dir = lock.dir().to_owned();
        if let Some(config_toml) = config_toml {
            let config = dir.join(CONFIG_FILE);
            write_atomic(&config, config_toml.as_bytes()).map_err(write_error(&config))?;
        }
        let jsonl_path = dir.join(METRICS_JSONL);
        let jsonl = AppendLog::create_new(&jsonl_path).map_err(write_error(&jsonl_path))?;
        let csv_path = dir.join(METRICS_CSV);
        let mut csv = AppendLog::create_new(&csv_path).map_err(write_error(&csv_path))?;
        csv.append(format!("{CSV_HEADER}\n").as_bytes())
            .map_err(write_error(&csv_path))?;
        let units = units::create(&dir)?;
        Ok(Recorder {
            dir,
            _lock: lock,
            history: Vec::new(),
            jsonl,
            csv,
            units,
            header: None,
        })
    }

    /// Continues the run in the locked folder from a checkpoint taken after `lines`
    /// evaluations (checked against `mark` when the checkpoint has one). The kept records must
    /// all be whole and parse; records written after the checkpoint are moved to
    /// `metrics.jsonl.after-checkpoint`; `config.toml` is not touched; `metrics.csv` is cut
    /// to the same records, or rebuilt from them (atomically) if it does not match.
    pub fn resume(
        lock: RunLock,
        lines: usize,
        mark: Option<MetricsMark>,
    ) -> Result<Self, SinkError> {
        let dir = lock.dir().to_owned();
        let jsonl_path = dir.join(METRICS_JSONL);
        let bytes = read_bounded(&jsonl_path)?;
        let (history, prefix) = kept_records(&jsonl_path, &bytes, lines)?;
        if let Some(mark) = mark {
            let unchanged = mark.lines == lines
                && mark.jsonl_bytes == prefix as u64
                && mark.jsonl_crc == crc32fast::hash(&bytes[..prefix]);
            if !unchanged {
                return Err(SinkError::Changed {
                    path: jsonl_path,
                    lines,
                });
            }
        }
        move_aside(&jsonl_path, &bytes[prefix..])?;
        let jsonl = AppendLog::continue_after(&jsonl_path, &bytes[..prefix])
            .map_err(write_error(&jsonl_path))?;

        let csv_path = dir.join(METRICS_CSV);
        let mut expected = format!("{CSV_HEADER}\n");
        for m in &history {
            expected.push_str(&csv_row(m));
            expected.push('\n');
        }
        let csv_bytes = match read_bounded(&csv_path) {
            Ok(b) => b,
            Err(SinkError::Read { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        if csv_bytes.starts_with(expected.as_bytes()) {
            move_aside(&csv_path, &csv_bytes[expected.len()..])?;
        } else {
            // The CSV is derived from the JSONL: rebuild it rather than trust a damaged one.
            if !csv_bytes.is_empty() {
                move_aside(&csv_path, &csv_bytes)?;
            }
            write_atomic(&csv_path, expected.as_bytes()).map_err(write_error(&csv_path))?;
        }
        let csv = AppendLog::continue_after(&csv_path, expected.as_bytes())
            .map_err(write_error(&csv_path))?;
        let (units, unit_records) = units::resume(&dir, history.last().map_or(0, |m| m.epoch))?;
        // The kept evaluations are whole again: a resumed run replays them with their units.
        let mut history = history;
        for m in &mut history {
            if let Some(record) = unit_records.iter().find(|r| r.epoch == m.epoch) {
                record.fill(&mut m.layers);
            }
        }
        Ok(Recorder {
            dir,
            _lock: lock,
            history,
            jsonl,
            csv,
            units,
            header: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Evaluations written so far.
    pub fn lines(&self) -> usize {
        self.history.len()
    }

    /// Where the metrics log stands now (for a checkpoint).
    pub fn mark(&self) -> MetricsMark {
        MetricsMark {
            lines: self.history.len(),
            jsonl_bytes: self.jsonl.len(),
            jsonl_crc: self.jsonl.crc(),
        }
    }

    /// Every evaluation written so far.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Appends one evaluation to `metrics.jsonl`, `metrics.csv` and `units.jsonl`: all three
    /// or none.
    pub fn epoch(&mut self, m: &EpochMetrics) -> Result<(), SinkError> {
        let jsonl_path = self.dir.join(METRICS_JSONL);
        let mut line = serde_json::to_string(m).map_err(|e| SinkError::Write {
            path: jsonl_path.clone(),
            error: std::io::Error::other(e),
        })?;
        line.push('\n');
        let before = self.jsonl.position();
        self.jsonl
            .append(line.as_bytes())
            .map_err(write_error(&jsonl_path))?;
        let row = format!("{}\n", csv_row(m));
        let csv_before = self.csv.position();
        if let Err(e) = self.csv.append(row.as_bytes()) {
            self.jsonl.rewind(before);
            return Err(write_error(&self.dir.join(METRICS_CSV))(e));
        }
        let units_path = self.dir.join(units::UNITS_JSONL);
        let units_line = units::UnitsRecord::of(m)
            .line()
            .map_err(std::io::Error::other)
            .and_then(|line| self.units.append(line.as_bytes()));
        if let Err(e) = units_line {
            self.jsonl.rewind(before);
            self.csv.rewind(csv_before);
            return Err(write_error(&units_path)(e));
        }
        self.history.push(m.clone());
        Ok(())
    }

    /// Writes `run.json` (atomically), the run's header, and keeps it to complete at the end.
    pub fn write_header(&mut self, header: run_file::RunHeader) -> Result<(), SinkError> {
        run_file::write(&self.dir, &header)?;
        self.header = Some(header);
        Ok(())
    }

    /// Writes `summary.json`, then completes `run.json` with the end state and reason (both
    /// atomically: never an empty or torn one).
    pub fn write_summary(&mut self, summary: &Summary) -> Result<(), SinkError> {
        let path = self.dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(summary).map_err(|e| SinkError::Write {
            path: path.clone(),
            error: std::io::Error::other(e),
        })?;
        write_atomic(&path, (text + "\n").as_bytes()).map_err(write_error(&path))?;
        if let Some(header) = self.header.as_mut() {
            header.end(summary.state, summary.reason.clone());
            run_file::write(&self.dir, header)?;
        }
        Ok(())
    }
}

/// Reads a run's metrics file through the bounded reader: a file that cannot be read is a
/// `Read` error (a missing CSV is rebuilt), one that is not a regular file or too large is refused.
fn read_bounded(path: &Path) -> Result<Vec<u8>, SinkError> {
    bounded::read(path, FileKind::Metrics).map_err(|e| match e.problem {
        Problem::Io(error) => SinkError::Read {
            path: e.path,
            error,
        },
        problem => SinkError::Bounded(ReadError { problem, ..e }),
    })
}

/// The first `lines` records of a metrics log and the length of their bytes; each must be a
/// whole line that parses.
fn kept_records(
    path: &Path,
    bytes: &[u8],
    lines: usize,
) -> Result<(Vec<EpochMetrics>, usize), SinkError> {
    let mut kept = Vec::with_capacity(lines.min(1 << 16));
    let mut offset = 0;
    for (index, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        if kept.len() == lines || !line.ends_with(b"\n") {
            break;
        }
        let m: EpochMetrics = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(text).map_err(|e| e.to_string()))
            .map_err(|reason| SinkError::Damaged {
                path: path.to_owned(),
                line: index + 1,
                reason,
            })?;
        kept.push(m);
        offset += line.len();
    }
    if kept.len() < lines {
        return Err(SinkError::Short {
            path: path.to_owned(),
            found: kept.len(),
            expected: lines,
        });
    }
    Ok((kept, offset))
}

/// Appends `tail` to `<path>.after-checkpoint`, so that nothing written is ever lost.
fn move_aside(path: &Path, tail: &[u8]) -> Result<(), SinkError> {
    if tail.is_empty() {
        return Ok(());
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(AFTER_CHECKPOINT_SUFFIX);
    let aside = path.with_file_name(name);
    crate::durable::append_aside(&aside, tail).map_err(write_error(&aside))
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
