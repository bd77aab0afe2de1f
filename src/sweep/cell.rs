//! Running one cell of a sweep (`ltmlp run-job`): it skips a finished cell, resumes an
//! interrupted one from its checkpoint, and refuses a cell another process holds.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::data_cache::DataCache;
use super::lock::{is_lock_file, lock_folder, FolderLock, LockError};
use super::plan::{Cell, Plan};
use crate::bounded::{self, FileKind};
use crate::compare::runs::FAILED_FILE;
use crate::host::{spawn, RetryPolicy, StartError};
use crate::protocol::{wording, Event, RunState, Summary};
use crate::sink::{FolderError, SinkError};
use crate::sink::{CONFIG_FILE, SUMMARY_FILE};
use crate::train::checkpoint::{self, CHECKPOINT_FILE};
use crate::train::session::signal_name;
use crate::train::SessionOptions;

/// How running a cell ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOutcome {
    /// Trained to its end now.
    Finished,
    /// Already over before this call (finished or diverged); nothing was done.
    Skipped(RunState),
    Diverged(String),
    /// Could not start or crashed; `failed.txt` says why.
    Failed(String),
    /// Stopped by a signal after saving a checkpoint; running it again resumes it.
    Interrupted(usize),
    /// Another process holds the cell.
    Held(String),
}

impl CellOutcome {
    /// Whether the cell has a finished run now.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            CellOutcome::Finished | CellOutcome::Skipped(RunState::Finished)
        )
    }

    pub fn describe(&self) -> String {
        match self {
            CellOutcome::Finished => "finished".into(),
            CellOutcome::Skipped(state) => format!("already {}, skipped", state.label()),
            CellOutcome::Diverged(reason) => format!("diverged: {reason}"),
            CellOutcome::Failed(reason) => format!("failed: {reason}"),
            CellOutcome::Interrupted(signal) => format!(
                "interrupted by {}; run it again to resume",
                signal_name(*signal)
            ),
            CellOutcome::Held(reason) => format!("not run: {reason}"),
        }
    }
}

/// The end state recorded in a cell folder's `summary.json`, if any.
pub fn recorded_state(dir: &Path) -> Option<RunState> {
    let text = bounded::read_text(&dir.join(SUMMARY_FILE), FileKind::Summary).ok()?;
    serde_json::from_str::<Summary>(&text).ok().map(|s| s.state)
}

/// Removes everything in a cell folder but its lock files.
fn clear(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !is_lock_file(&entry.file_name().to_string_lossy()) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Runs cell `index` of the plan in `dir` to its end (or a signal).
pub fn run_cell(
    dir: &Path,
    plan: &Plan,
    index: usize,
    cache: &DataCache,
    interrupt: Option<Arc<AtomicUsize>>,
    log: &(dyn Fn(String) + Sync),
) -> CellOutcome {
    let Some(cell) = plan.cells.get(index) else {
        return CellOutcome::Failed(format!(
            "{}: no cell {index}; the plan has cells 0 to {}",
            dir.join(super::plan::PLAN_FILE).display(),
            plan.cells.len().saturating_sub(1)
        ));
    };
    let cell_dir = dir.join(&cell.folder);
    let name = &cell.folder;
    if std::fs::symlink_metadata(&cell_dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return CellOutcome::Failed(format!(
            "{}: is a symbolic link; a cell trains only in a folder of its own inside the sweep \
             folder: remove the link, and run the cell again",
            cell_dir.display()
        ));
    }
    if let Err(e) = std::fs::create_dir_all(&cell_dir) {
        return CellOutcome::Failed(format!(
            "{}: cannot create the folder: {e}",
            cell_dir.display()
        ));
    }
    let lock = match lock_folder(&cell_dir) {
        Ok(lock) => lock,
        Err(e @ LockError::Held(_)) => return CellOutcome::Held(e.to_string()),
        Err(e) => return CellOutcome::Failed(e.to_string()),
    };
    if let Some(state @ (RunState::Finished | RunState::Diverged)) = recorded_state(&cell_dir) {
        log(format!("[{name}] already {}, skipped", state.label()));
        return CellOutcome::Skipped(state);
    }
    let fail = |error: String| {
        let _ = std::fs::write(cell_dir.join(FAILED_FILE), format!("{error}\n"));
        log(format!("[{name}] failed: {error}"));
        CellOutcome::Failed(error)
    };
    match train(dir, cell, cache, lock, interrupt, plan.tensorboard, log) {
        Ok(outcome) => outcome,
        Err(error) => fail(error),
    }
}

fn train(
    dir: &Path,
    cell: &Cell,
    cache: &DataCache,
    lock: FolderLock,
    interrupt: Option<Arc<AtomicUsize>>,
    tensorboard: bool,
    log: &(dyn Fn(String) + Sync),
) -> Result<CellOutcome, String> {
    let cell_dir = dir.join(&cell.folder);
    let name = &cell.folder;
    let resolved = cell.resolve(dir).map_err(|e| e.to_string())?;
    let config = resolved.to_toml();
    let config_path = cell_dir.join(CONFIG_FILE);
    if let Ok(existing) = bounded::read_text(&config_path, FileKind::Config) {
        if existing != config {
            return Err(format!(
                "{}: differs from cell {} of plan.json; this folder belongs to another sweep",
                config_path.display(),
                cell.index
            ));
        }
    }
    let resume = if cell_dir.join(CHECKPOINT_FILE).exists() {
        let cp = checkpoint::load(&cell_dir)
            .map_err(|e| format!("{e}; delete it to start the cell again"))?;
        if cp.config_toml != config {
            return Err(format!(
                "{}: written for another config; delete it to start the cell again",
                cell_dir.join(CHECKPOINT_FILE).display()
            ));
        }
        log(format!(
            "[{name}] resuming from its checkpoint after {} evaluations",
            cp.metrics_lines
        ));
        Some(cp)
    } else {
        // Nothing to resume from: what a run killed before its first checkpoint left is
        // cleared, so that the cell starts afresh in an empty folder.
        clear(&cell_dir)
            .map_err(|e| format!("{}: cannot clear the cell: {e}", cell_dir.display()))?;
        None
    };
    // A summary left by an interrupted run would make the cell look over while it runs again.
    let _ = std::fs::remove_file(cell_dir.join(SUMMARY_FILE));
    let _ = std::fs::remove_file(cell_dir.join(FAILED_FILE));
    let exp = cache.experiment(resolved).map_err(|e| e.to_string())?;
    if let Some(cp) = &resume {
        let plan = format!("{}'s cell {}", super::plan::PLAN_FILE, cell.index);
        exp.check_resume(&cell_dir.join(CHECKPOINT_FILE), cp, &plan, &plan)?;
    }
    let checkpoint_every = exp.resolved.preset.train.checkpoint_every;
    let tensorboard = tensorboard || exp.resolved.preset.train.tensorboard;
    // The session takes the folder's lock itself and holds it while it trains; if another
    // process takes it in between, the session is refused as busy below.
    drop(lock);
    let session = spawn(
        exp,
        SessionOptions {
            out_dir: Some(cell_dir.clone()),
            resume,
            checkpoint_every,
            interrupt: interrupt.clone(),
            start_paused: false,
            force: false,
            replay: Vec::new(),
            trace: None,
            tensorboard,
        },
    );
    let session = match session {
        Ok(s) => s,
        Err(
            e @ StartError::Files(SinkError::Folder(
                FolderError::Busy { .. } | FolderError::OtherHost { .. },
            )),
        ) => return Ok(CellOutcome::Held(e.to_string())),
        Err(e) => return Err(e.to_string()),
    };
    let mut info = None;
    // The evaluations a resumed cell kept arrive as `Replayed`: they were logged before.
    let summary = session.drain(RetryPolicy::SWEEP_CELL, |event| match event {
        Event::Started(started) => info = Some(started.clone()),
        Event::Epoch(m) => {
            if let Some(info) = &info {
                log(format!("[{name}] {}", wording::epoch_line(info, m)));
            }
        }
        // Training paused so that nothing is lost; the drain asks it to retry.
        Event::Failed(reason) => log(format!("[{name}] {reason}")),
        Event::Finished(s) => log(format!(
            "[{name}] {}{}",
            s.state.label(),
            s.reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        )),
        _ => {}
    });
    let signal = interrupt.map_or(0, |f| f.load(Ordering::SeqCst));
    match summary {
        Some(s) => Ok(match s.state {
            RunState::Finished => CellOutcome::Finished,
            RunState::Diverged => {
                CellOutcome::Diverged(s.reason.unwrap_or_else(|| "diverged".into()))
            }
            _ if signal != 0 => CellOutcome::Interrupted(signal),
            other => CellOutcome::Failed(format!("ended {}", other.label())),
        }),
        // The training thread ended without a summary: it panicked.
        None => Err("the training thread stopped unexpectedly".to_string()),
    }
}
