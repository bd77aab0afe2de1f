//! The end of an epoch: its evaluation, taken at once or overlapped with the next epoch's
//! steps on the free core and settled later as if the run had waited for it.

use std::time::Instant;

use super::{Driver, StateKind};
use crate::protocol::{EpochMetrics, Event, WallTime};
use crate::real::Real;
use crate::train::trainer::{CompletedEpoch, EpochEnding, PendingEpoch, TrainerState};

impl<T: StateKind> Driver<T> {
    /// The time an epoch's end took the training thread since `started`: the epoch-end
    /// re-estimations (the trainer's count went up from `reestimated`), the rest evaluation.
    pub(super) fn account_epoch_end(&mut self, started: Instant, reestimated: f64) {
        let reestimation = self.trainer.reestimate_outside_steps - reestimated;
        self.wall.reestimation += reestimation;
        self.wall.evaluation += (started.elapsed().as_secs_f64() - reestimation).max(0.0);
    }

    pub(super) fn checkpoint_due_after(&self, epoch: usize) -> bool {
        let every = self.options.checkpoint_every;
        every > 0 && epoch.is_multiple_of(every)
    }

    /// Records an epoch that ended without overlap (the trainer is at its end); the reason to
    /// stop there, if any.
    pub(super) fn epoch_ended(&mut self, metrics: EpochMetrics) -> Option<String> {
        if self.rollbacks_left > 0 {
            self.last_good = Some(self.trainer.snapshot());
        }
        let checkpoint = self.checkpoint_due_after(metrics.epoch);
        self.epoch_recorded(metrics, self.wall_time(), checkpoint, None)
    }

    /// Writes an epoch's metrics, with the time accounts `wall`, and its checkpoint when due
    /// (of `at`, when that is not the state now), and sends them; the reason to stop there.
    pub(super) fn epoch_recorded(
        &mut self,
        mut metrics: EpochMetrics,
        wall: WallTime,
        checkpoint: bool,
        at: Option<(TrainerState<T>, f64)>,
    ) -> Option<String> {
        metrics.wall = Some(wall);
        self.record(&metrics, checkpoint, at);
        let stop = self.early_stop.after(&metrics);
        self.send(Event::Epoch(Box::new(metrics)));
        stop
    }

    /// Ends the epoch with its evaluation on the free core while the next epoch trains; true
    /// when the run must end.
    pub(super) fn end_epoch_overlapped(&mut self) -> bool {
        let started = Instant::now();
        let reestimated = self.trainer.reestimate_outside_steps;
        let clock_seconds = self.clock.seconds();
        let ending = self.trainer.end_epoch_overlapped(clock_seconds);
        self.account_epoch_end(started, reestimated);
        match ending {
            EpochEnding::Pending(epoch) => {
                self.pending = Some(Overlapped {
                    epoch,
                    wall: self.wall_time(),
                    clock_seconds,
                    checkpoint: self.checkpoint_due_after(self.trainer.epoch),
                });
                false
            }
            EpochEnding::Done(ended) => match *ended {
                Ok(metrics) => match self.epoch_ended(metrics) {
                    Some(reason) => {
                        self.reason = Some(reason);
                        true
                    }
                    None => false,
                },
                Err(div) => !self.roll_back(div.to_string()),
            },
        }
    }

    /// Takes the overlapped evaluation of the last epoch's end, waiting for it, and records
    /// that epoch as if the run had waited for it there.
    pub(super) fn settle(&mut self) -> Settled {
        let Some(pending) = self.pending.take() else {
            return Settled::Going;
        };
        let started = Instant::now();
        let reestimated = self.trainer.reestimate_outside_steps;
        let completed = self.trainer.complete_epoch(*pending.epoch);
        self.account_epoch_end(started, reestimated);
        let CompletedEpoch {
            metrics,
            state,
            went_back,
        } = match completed {
            Ok(c) => c,
            Err(div) if self.roll_back(div.to_string()) => return Settled::WentBack,
            Err(_) => return Settled::Ended,
        };
        if went_back {
            self.send(Event::Log(format!(
                "epoch {}: its validation error changed the paper rule's phase; the steps since are taken again",
                metrics.epoch
            )));
            self.send_position();
        }
        if self.rollbacks_left > 0 {
            self.last_good = Some(state.clone());
        }
        let at = pending
            .checkpoint
            .then(|| (state.clone(), pending.clock_seconds));
        match self.epoch_recorded(metrics, pending.wall, pending.checkpoint, at) {
            Some(reason) => {
                self.trainer.restore(state);
                self.reason = self.reason.take().or(Some(reason));
                Settled::Ended
            }
            None if went_back => Settled::WentBack,
            None => Settled::Going,
        }
    }
}

/// An epoch's end whose evaluation is overlapped with the next epoch: what its record takes
/// from the moment it ended.
pub(super) struct Overlapped<T: Real> {
    pub(super) epoch: Box<PendingEpoch<T>>,
    wall: WallTime,
    clock_seconds: f64,
    checkpoint: bool,
}

/// What taking a finished (or awaited) overlapped evaluation did to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// Nothing changed for the steps: train on.
    Going,
    /// The trainer went back to that epoch's end (the paper rule's phase changed, or a rollback).
    WentBack,
    /// The run must end (early stop, or a divergence with no rollback left).
    Ended,
}
