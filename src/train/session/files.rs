//! The run's records as the training thread hands them to the host's subscribers:
//! evaluations and checkpoints (a failed write pauses the run; nothing is lost), and the end's
//! summary when the run ends. The checkpoint is the one file the trainer writes itself.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::RecvTimeoutError;

use super::{Driver, StateKind, PAUSED_POLL};
use crate::protocol::summary::{summarize, SummaryBase};
use crate::protocol::{Command, EpochMetrics, Event, RunState, Summary};
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::trainer::TrainerState;

impl<T: StateKind> Driver<T> {
    /// Saves a checkpoint into the run folder, if there is one.
    /// `Ok(None)` when the run has no folder.
    pub(super) fn save_checkpoint(&mut self) -> Result<Option<PathBuf>, String> {
        if self.dir.is_none() {
            return Ok(None);
        }
        let now = (self.trainer.snapshot(), self.clock.seconds());
        self.save_state(now)
    }

    /// Saves `state`, as it was at `clock_seconds` of the run, as the run folder's checkpoint,
    /// with the records' mark (made durable first) so that a resume cuts them back to it.
    pub(super) fn save_state(
        &mut self,
        (state, clock_seconds): (TrainerState<T>, f64),
    ) -> Result<Option<PathBuf>, String> {
        let Some(dir) = self.dir.clone() else {
            return Ok(None);
        };
        self.subscribers
            .sync()
            .map_err(|e| format!("checkpoint not saved: {e}"))?;
        let mark = self.subscribers.mark();
        let cp = Checkpoint {
            config_toml: self.config_toml.clone(),
            metrics_lines: mark.map_or(0, |m| m.lines),
            clock_seconds,
            state: T::wrap(state),
            metrics_mark: mark,
            data_fingerprint: Some(self.data_fingerprint),
        };
        checkpoint::save(&dir, &cp)
            .map(Some)
            .map_err(|e| format!("checkpoint not saved: {e}"))
    }

    /// Writes the records, then the checkpoint, that could not be written before; true
    /// when nothing is left pending. On a failure the run must pause: nothing is lost.
    pub(super) fn flush_pending(&mut self) -> bool {
        if let Err(e) = self.subscribers.flush() {
            let message = format!("{e}; training stays paused (resume to retry)");
            self.send(Event::Failed(message));
            return false;
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
        self.standing.after(metrics);
        // Queued only: `flush_pending` makes the one attempt.
        self.subscribers
            .queue(&Event::Epoch(Box::new(metrics.clone())));
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

    /// Ends the run: final state, pending records, checkpoint, summary, and the Finished
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

    /// The end's summary (made once, at the first attempt), and whether every record was
    /// written: the pending ones, the last checkpoint (not after a divergence: the last good
    /// one stays), and the summary (`summary.json`, the completed `run.json`).
    pub(super) fn write_final_files(&mut self, end: RunState) -> (Summary, Result<(), String>) {
        let summary = match self.final_summary.clone() {
            Some(summary) => summary,
            None => {
                let summary = self.summary(end);
                self.final_summary = Some(summary.clone());
                summary
            }
        };
        if self.dir.is_none() {
            return (summary, Ok(()));
        }
        // A summary that failed before is among the pending records.
        if let Err(e) = self.subscribers.flush() {
            return (summary, Err(e.to_string()));
        }
        if self.finished_published {
            return (summary, Ok(()));
        }
        if end != RunState::Diverged {
            match self.save_checkpoint() {
                Ok(Some(path)) => {
                    self.send(Event::Log(format!("checkpoint saved: {}", path.display())))
                }
                Ok(None) => {}
                Err(e) => return (summary, Err(e)),
            }
        }
        self.finished_published = true;
        let written = self
            .subscribers
            .publish(&Event::Finished(Box::new(summary.clone())));
        (summary, written.map_err(|e| e.to_string()))
    }

    /// The run's summary as it ends now in `end` (a run without a folder has no figures).
    fn summary(&self, end: RunState) -> Summary {
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
            steering_actions: self.steering_actions,
            wall: Some(self.wall_time()),
        };
        match &self.dir {
            Some(dir) => self.standing.summary(base, Some(dir)),
            None => summarize(base, None, None, None),
        }
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
