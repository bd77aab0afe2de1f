//! `ltmlp ls [DIR]`: every run under a folder, live or ended, so that no training process is
//! ever out of sight.

use std::path::{Path, PathBuf};

use super::{client, endpoint};
use crate::bounded::{self, FileKind};
use crate::protocol::best;
use crate::sink::run_file;
use crate::sink::{METRICS_JSONL, SUMMARY_FILE};
use crate::train::checkpoint::CHECKPOINT_FILE;
use crate::train::Summary;

/// How deep below DIR run folders are looked for (a sweep's cells sit two levels down).
const MAX_DEPTH: usize = 3;
/// Run folders listed at most.
const MAX_RUNS: usize = 10_000;

/// One row of the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub dir: PathBuf,
    /// live: running / paused; otherwise finished, stopped, diverged, interrupted.
    pub state: String,
    pub live: bool,
    pub epoch: usize,
    pub epochs: Option<usize>,
    pub best: Option<f64>,
    pub viewers: Option<usize>,
    pub pid: Option<u32>,
    /// Why an ended run stopped or diverged (its summary's reason).
    pub reason: Option<String>,
}

/// The run folders under `root`, sorted by path.
pub fn scan(root: &Path) -> Vec<Row> {
    let mut dirs = Vec::new();
    collect(root, 0, &mut dirs);
    dirs.sort();
    dirs.iter().map(|d| row(d)).collect()
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if out.len() >= MAX_RUNS {
        return;
    }
    if crate::compare::runs::is_run_folder(dir) {
        out.push(dir.to_path_buf());
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&entry.path(), depth + 1, out);
        }
    }
}

fn row(dir: &Path) -> Row {
    if dir.join(endpoint::SOCKET_FILE).exists() {
        if let Ok(s) = client::status(dir) {
            return Row {
                dir: dir.to_path_buf(),
                state: s.state.map_or("starting".into(), |s| s.label().to_string()),
                live: true,
                epoch: s.epoch,
                epochs: Some(s.epochs),
                best: s.best,
                viewers: Some(s.viewers),
                pid: Some(s.pid),
                reason: None,
            };
        }
    }
    // The run's length, from its header (folders written before run.json have none).
    let epochs = run_file::read(dir).ok().flatten().map(|h| h.info.epochs);
    let summary: Option<Summary> = bounded::read_text(&dir.join(SUMMARY_FILE), FileKind::Summary)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(s) = summary {
        return Row {
            dir: dir.to_path_buf(),
            state: s.state.label().to_string(),
            live: false,
            epoch: s.epochs_completed,
            epochs,
            best: best::recorded_figure(&s),
            viewers: None,
            pid: None,
            reason: s.reason,
        };
    }
    let epochs_done = line_count(&dir.join(METRICS_JSONL)).unwrap_or(0);
    let state = if dir.join(CHECKPOINT_FILE).exists() {
        "interrupted"
    } else {
        "no checkpoint"
    };
    Row {
        dir: dir.to_path_buf(),
        state: state.into(),
        live: false,
        epoch: epochs_done,
        epochs,
        best: None,
        viewers: None,
        pid: None,
        reason: None,
    }
}

/// The lines of a metrics log, counted in fixed chunks (a line's length never matters) and
/// never past the log's limit.
fn line_count(path: &Path) -> Option<usize> {
    use std::io::Read;
    let checked = bounded::open(path, FileKind::Metrics).ok()?;
    let mut reader = checked.file.take(FileKind::Metrics.limit());
    let mut chunk = vec![0u8; 64 << 10];
    let mut lines = 0;
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += chunk[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(_) => return None,
        }
    }
}

/// The listing as a table.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.dir.display().to_string().len())
        .max()
        .unwrap_or(3)
        .max(3);
    let mut out = format!(
        "{:<width$}  {:<11}  {:>9}  {:>8}  {:>7}  {:>7}  why\n",
        "run", "state", "epoch", "best", "viewers", "pid"
    );
    for r in rows {
        let epoch = match r.epochs {
            Some(n) => format!("{}/{n}", r.epoch),
            None => r.epoch.to_string(),
        };
        let state = if r.live {
            format!("{} ●", r.state)
        } else {
            r.state.clone()
        };
        let row = format!(
            "{:<width$}  {:<11}  {:>9}  {:>8}  {:>7}  {:>7}  {}",
            r.dir.display(),
            state,
            epoch,
            r.best.map_or("–".into(), |b| format!("{b:.4}")),
            r.viewers.map_or("–".into(), |v| v.to_string()),
            r.pid.map_or("–".into(), |p| p.to_string()),
            r.reason.as_deref().unwrap_or(""),
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
