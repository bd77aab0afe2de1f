//! The run folder's files as one subscriber of a run ([`RunFiles`]): evaluations into
//! `metrics.jsonl`/`.csv` and `units.jsonl`, steering into `actions.jsonl`, the end into
//! `summary.json` and the completed `run.json`. Opening it claims the folder, for a new run
//! (nothing left behind when that fails) or to continue one from a checkpoint's mark.

use std::path::Path;

use super::actions::{self, ActionLog, ACTIONS_FILE};
use super::run_file::{self, RunHeader};
use super::{claim_existing, claim_new, Recorder, SinkError};
use crate::protocol::{EpochMetrics, Event, MetricsMark, Steer, Subscriber, WriteError};

/// The files of a run being written; holds the folder's lock for as long as it lives.
pub struct RunFiles {
    recorder: Recorder,
    actions: ActionLog,
}

/// Where a resumed run continues: after `lines` evaluations (checked against `mark` when the
/// checkpoint has one), its steering kept up to `iteration` (`None`: the last kept
/// evaluation's).
#[derive(Debug, Clone, Copy)]
pub struct Continue {
    pub lines: usize,
    pub mark: Option<MetricsMark>,
    pub iteration: Option<u64>,
}

fn actions_error(dir: &Path, message: impl ToString) -> SinkError {
    SinkError::Write {
        path: dir.join(ACTIONS_FILE),
        error: std::io::Error::other(message.to_string()),
    }
}

impl RunFiles {
    /// Claims `dir` for a new run (moving an old one aside with `force`) and writes its
    /// files: `config.toml` when there is one, the empty logs and `run.json`. When a step
    /// fails the folder is left as it was.
    pub fn create(
        dir: &Path,
        force: bool,
        config_toml: Option<&str>,
        header: RunHeader,
    ) -> Result<Self, SinkError> {
        let mut recorder = Recorder::create(claim_new(dir, force)?, config_toml)?;
        let actions = match ActionLog::create(dir) {
            Ok(log) => log,
            Err(error) => {
                recorder.abandon_new();
                return Err(actions_error(dir, error));
            }
        };
        if let Err(e) = recorder.write_header(header) {
            recorder.abandon_new();
            return Err(e);
        }
        Ok(RunFiles { recorder, actions })
    }

    /// Continues the run in `dir` at `at`: every record is checked before anything changes,
    /// the later ones are moved aside, and `run.json` is rewritten as `header` makes it of
    /// the kept one (`None`: the folder has none, or a damaged one).
    pub fn resume(
        dir: &Path,
        at: Continue,
        header: impl FnOnce(Option<RunHeader>) -> RunHeader,
    ) -> Result<Self, SinkError> {
        let lock = claim_existing(dir)?;
        actions::check(dir).map_err(SinkError::Actions)?;
        let mut recorder = Recorder::resume(lock, at.lines, at.mark)?;
        let iteration = at
            .iteration
            .unwrap_or_else(|| recorder.history().last().map_or(0, |m| m.iteration));
        let actions = ActionLog::resume(dir, iteration).map_err(|e| actions_error(dir, e))?;
        recorder.write_header(header(run_file::read(dir).ok().flatten()))?;
        Ok(RunFiles { recorder, actions })
    }

    pub fn dir(&self) -> &Path {
        self.recorder.dir()
    }

    /// The evaluations written so far (a resumed run's kept ones first).
    pub fn history(&self) -> &[EpochMetrics] {
        self.recorder.history()
    }

    /// The steering that shaped the run so far (`actions.jsonl`, without what a resume undid).
    pub fn actions(&self) -> Vec<Steer> {
        actions::read(self.dir()).unwrap_or_default()
    }
}

impl Subscriber for RunFiles {
    fn wants(&self, event: &Event) -> bool {
        matches!(
            event,
            Event::Epoch(_) | Event::Steered(_) | Event::Finished(_)
        )
    }

    fn on_event(&mut self, event: &Event) -> Result<(), WriteError> {
        let written = match event {
            Event::Epoch(m) => self.recorder.epoch(m),
            Event::Steered(steer) => self
                .actions
                .record(steer)
                .map_err(|e| actions_error(self.recorder.dir(), e)),
            Event::Finished(summary) => self.recorder.write_summary(summary),
            _ => Ok(()),
        };
        written.map_err(|e| WriteError(e.to_string()))
    }

    fn mark(&self) -> Option<MetricsMark> {
        Some(self.recorder.mark())
    }
}
