//! Learning-rate and momentum schedules: constant, or the paper demo's (momentum ramp over a
//! burn-in, then the rate multiplied by a decay factor every epoch; PAPER.md §4.3).

use crate::preset::{ScheduleKind, TrainSection};

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: ScheduleKind,
    learning_rate: f64,
    momentum: f64,
    momentum_initial: f64,
    burn_in: usize,
    decay: f64,
    reset_after_burn_in: bool,
}

impl Schedule {
    pub fn new(train: &TrainSection) -> Self {
        Schedule {
            kind: train.schedule,
            learning_rate: train.learning_rate,
            momentum: train.momentum,
            momentum_initial: train.momentum_initial,
            burn_in: train.burn_in_epochs,
            decay: train.rate_decay,
            reset_after_burn_in: train.momentum_reset_after_burn_in,
        }
    }

    /// Learning rate during epoch `epoch` (0-based).
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        match self.kind {
            ScheduleKind::Constant => self.learning_rate,
            ScheduleKind::Paper => {
                let decays = (epoch + 1).saturating_sub(self.burn_in);
                self.learning_rate * self.decay.powi(decays.min(i32::MAX as usize) as i32)
            }
        }
    }

    /// Momentum during epoch `epoch` (0-based).
    pub fn momentum(&self, epoch: usize) -> f64 {
        match self.kind {
            ScheduleKind::Constant => self.momentum,
            ScheduleKind::Paper if epoch >= self.burn_in => {
                if self.reset_after_burn_in {
                    self.momentum_initial
                } else {
                    self.momentum
                }
            }
            ScheduleKind::Paper => {
                let progress = epoch as f64 / self.burn_in.max(1) as f64;
                self.momentum_initial + (self.momentum - self.momentum_initial) * progress
            }
        }
    }
}
