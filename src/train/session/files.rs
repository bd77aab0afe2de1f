//! The run's records as the training thread writes them through the files the host opened:
//! evaluations and checkpoints (a failed write pauses the run; nothing is lost), and the final
//! files when the run ends.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::RecvTimeoutError;

use super::{Driver, StateKind, PAUSED_POLL};
use crate::protocol::{Command, EpochMetrics, Event, RunState, Summary};
use crate::sink::{summarize, SummaryBase};
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::trainer::TrainerState;

impl<T: StateKind> Driver<T> {
    /// Saves a checkpoint into the run folder, if there is one.
    /// `Ok(None)` when the run has no folder.
    pub(super) fn save_checkpoint(&mut self) -> Result<Option<PathBuf>, String> {
        if self.recorder.is_none() {
            return Ok(None);
        }
        let now = (self.trainer.snapshot(), self.clock.seconds());
        self.save_state(now)
    }

    /// Saves `state`, as it was at `clock_seconds` of the run, as the run folder's checkpoint.
    pub(super) fn save_state(
        &mut self,
        (state, clock_seconds): (TrainerState<T>, f64),
    ) -> Result<Option<PathBuf>, String> {
        let Some(rec) = self.recorder.as_ref() else {
            return Ok(None);
        };
        let mark = rec.mark();
        let cp = Checkpoint {
            config_toml: self.config_toml.clone(),
            metrics_lines: mark.lines,
            clock_seconds,
            state: T::wrap(state),
            metrics_mark: Some(mark),
            data_fingerprint: Some(self.data_fingerprint),
        };
        checkpoint::save(rec.dir(), &cp)
            .map(Some)
            .map_err(|e| format!("checkpoint not saved: {e}"))
    }

    /// Writes the evaluations, then the checkpoint, that could not be written before; true
    /// when nothing is left pending. On a failure the run must pause: nothing is lost.
    pub(super) fn flush_pending(&mut self) -> bool {
        let Some(rec) = self.recorder.as_mut() else {
            return true;
        };
        while let Some(m) = self.unwritten.first() {
            if let Err(e) = rec.epoch(m) {
                let message = format!("{e}; training stays paused (resume to retry)");
                self.send(Event::Failed(message));
                return false;
            }
            self.unwritten.remove(0);
        }
        if self.checkpoint_due {
            let saved = match self.checkpoint_at.clone() {
                Some(at) => self.save_state(at),
                None => self.save_checkpoint(),
            };
            if let Err(e) = saved {
                self.send(Event::Failed(format!(
                    "{e}; training stays paused (resume to retry)"
                )));
                return false;
            }
            self.checkpoint_due = false;
            self.checkpoint_at = None;
        }
        true
    }

    /// Records an evaluation and, when due, a checkpoint (of the state `at`, when that is not
    /// the state now); on a write failure, pauses instead of losing either.
    pub(super) fn record(
        &mut self,
        metrics: &EpochMetrics,
        checkpoint: bool,
        at: Option<(TrainerState<T>, f64)>,
    ) {
        let started = Instant::now();
        self.unwritten.push(metrics.clone());
        if checkpoint {
            self.checkpoint_due = true;
            self.checkpoint_at = at;
        }
        let written = self.flush_pending();
        self.wall.files += started.elapsed().as_secs_f64();
        if !written {
            self.set_state(RunState::Paused);
        }
    }

    /// Ends the run: final state, pending metrics, checkpoint, summary, and the Finished
    /// event. A write that fails is retried on `Resume` (the headless runner sends one every
    /// 30 s) until it succeeds, or until a signal or `Stop` says to leave as things are.
    pub(super) fn finish(mut self) {
        // An overlapped evaluation is recorded first, as if the run had waited for it.
        self.settle();
        self.collect_statistics(true);
        let end = match self.state {
            RunState::Running | RunState::Paused => RunState::Finished,
            other => other,
        };
        if let Some(r) = &self.reason {
            self.send(Event::Log(r.clone()));
        }
        let summary = loop {
            match self.write_final_files(end) {
                (summary, Ok(())) => break summary,
                (summary, Err(message)) => {
                    self.send(Event::Failed(format!(
                        "{message}; the run waits to write its files (resume to retry)"
                    )));
                    self.set_state(RunState::Paused);
                    if !self.wait_for_retry() {
                        break summary;
                    }
                }
            }
        };
        self.state = end;
        self.send(Event::State(end));
        self.send(Event::Finished(Box::new(summary)));
    }

    /// The metrics not yet written, the last checkpoint (not after a divergence: the last
    /// good one stays) and `summary.json`.
    /// The summary, and whether every file was written.
    pub(super) fn write_final_files(&mut self, end: RunState) -> (Summary, Result<(), String>) {
        let p = &self.exp.resolved.preset;
        let base = SummaryBase {
            preset: p.name.clone(),
            variant: self.exp.resolved.variant.to_string(),
            monitor: p.data.monitor,
            state: end,
            reason: self.reason.clone(),
            iterations: self.trainer.iteration,
            wall_seconds: self.clock.seconds(),
            train_seconds: self.trainer.train_seconds,
            reestimate_seconds: self.trainer.reestimate_seconds,
            examples_per_second: self.trainer.examples_per_second(),
            steering_actions: self.actions.as_ref().map_or(0, |a| a.count),
            wall: Some(self.wall_time()),
        };
        let Some(rec) = self.recorder.as_mut() else {
            return (summarize(base, None, None, None), Ok(()));
        };
        while let Some(m) = self.unwritten.first() {
            if let Err(e) = rec.epoch(m) {
                return (rec.summary(base), Err(e.to_string()));
            }
            self.unwritten.remove(0);
        }
        if end != RunState::Diverged {
            match self.save_checkpoint() {
                Ok(Some(path)) => {
                    self.send(Event::Log(format!("checkpoint saved: {}", path.display())))
                }
                Ok(None) => {}
                Err(e) => {
                    let summary = self.recorder.as_ref().map(|r| r.summary(base.clone()));
                    return (
                        summary.unwrap_or_else(|| summarize(base, None, None, None)),
                        Err(e),
                    );
                }
            }
        }
        let Some(rec) = self.recorder.as_mut() else {
            return (summarize(base, None, None, None), Ok(()));
        };
        let summary = rec.summary(base);
        let written = rec.write_summary(&summary).map_err(|e| e.to_string());
        (summary, written)
    }

    /// Waits for `Resume` (true); a signal, `Stop` or a vanished front end give false.
    pub(super) fn wait_for_retry(&mut self) -> bool {
        loop {
            if self.interrupted().is_some() {
                return false;
            }
            match self.commands.recv_timeout(PAUSED_POLL) {
                Ok(Command::Resume) => return true,
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}
