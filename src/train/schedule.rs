//! Learning-rate and momentum schedules: constant; the paper demo's (momentum ramp over a
//! burn-in, then the rate multiplied by a decay factor every epoch); and the authors'
//! time-budget trainer (constant for half the budget, then a linear fall to zero, with an
//! optional exponential warm-up). The formulas are in docs/method.md.

use crate::preset::{ScheduleKind, TrainSection};

/// The budget schedule never reaches exactly zero (the authors' floor).
const BUDGET_RATE_FLOOR: f64 = 1e-8;
/// The budget warm-up starts at rate / WARMUP_FACTOR.
const WARMUP_FACTOR: f64 = 100.0;

/// Where training is, as the schedules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct When {
    /// Completed epochs (0-based index of the current epoch).
    pub epoch: usize,
    /// Fraction of the budget used, in [0, 1]: training seconds over the time budget, or
    /// iterations over all iterations of the run.
    pub progress: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: ScheduleKind,
    learning_rate: f64,
    momentum: f64,
    momentum_initial: f64,
    burn_in: usize,
    decay: f64,
    reset_after_burn_in: bool,
    bias_momentum: Option<f64>,
    warmup: f64,
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
            bias_momentum: train.bias_momentum,
            warmup: train.warmup_fraction,
        }
    }

    /// Learning rate at `when`.
    pub fn learning_rate(&self, when: When) -> f64 {
        match self.kind {
            ScheduleKind::Constant => self.learning_rate,
            ScheduleKind::Paper => {
                let decays = (when.epoch + 1).saturating_sub(self.burn_in);
                self.learning_rate * self.decay.powi(decays.min(i32::MAX as usize) as i32)
            }
            ScheduleKind::Budget => {
                let p = when.progress.clamp(0.0, 1.0);
                let factor = if p < self.warmup {
                    WARMUP_FACTOR.powf(p / self.warmup - 1.0)
                } else if p < 0.5 {
                    1.0
                } else {
                    2.0 * (1.0 - p)
                };
                (self.learning_rate * factor).max(BUDGET_RATE_FLOOR)
            }
        }
    }

    /// Momentum of the weights at `when`.
    pub fn momentum(&self, when: When) -> f64 {
        match self.kind {
            ScheduleKind::Constant | ScheduleKind::Budget => self.momentum,
            ScheduleKind::Paper if when.epoch >= self.burn_in => {
                if self.reset_after_burn_in {
                    self.momentum_initial
                } else {
                    self.momentum
                }
            }
            ScheduleKind::Paper => {
                let progress = when.epoch as f64 / self.burn_in.max(1) as f64;
                self.momentum_initial + (self.momentum - self.momentum_initial) * progress
            }
        }
    }

    /// The biases' own constant momentum, if they do not follow the weights.
    pub fn bias_momentum(&self) -> Option<f64> {
        self.bias_momentum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: ScheduleKind, warmup: f64) -> Schedule {
        Schedule {
            kind,
            learning_rate: 0.4,
            momentum: 0.9,
            momentum_initial: 0.5,
            burn_in: 10,
            decay: 0.9,
            reset_after_burn_in: false,
            bias_momentum: None,
            warmup,
        }
    }

    fn at(progress: f64) -> When {
        When { epoch: 0, progress }
    }

    #[test]
    fn budget_is_constant_then_falls_linearly_to_the_floor() {
        let s = schedule(ScheduleKind::Budget, 0.0);
        assert_eq!(s.learning_rate(at(0.0)), 0.4);
        assert_eq!(s.learning_rate(at(0.49)), 0.4);
        assert!((s.learning_rate(at(0.75)) - 0.2).abs() < 1e-12);
        assert!((s.learning_rate(at(0.9)) - 0.08).abs() < 1e-12);
        assert_eq!(s.learning_rate(at(1.0)), BUDGET_RATE_FLOOR);
        assert_eq!(s.learning_rate(at(7.0)), BUDGET_RATE_FLOOR);
        assert_eq!(s.momentum(at(0.9)), 0.9);
    }

    #[test]
    fn budget_warmup_grows_exponentially_from_a_hundredth() {
        let s = schedule(ScheduleKind::Budget, 0.01);
        assert!((s.learning_rate(at(0.0)) - 0.004).abs() < 1e-12);
        assert!((s.learning_rate(at(0.005)) - 0.04).abs() < 1e-12);
        assert!((s.learning_rate(at(0.01)) - 0.4).abs() < 1e-12);
        let (a, b) = (s.learning_rate(at(0.002)), s.learning_rate(at(0.004)));
        let c = s.learning_rate(at(0.006));
        assert!(
            (b / a - c / b).abs() < 1e-9,
            "constant ratio per equal step"
        );
    }

    #[test]
    fn paper_ramps_momentum_then_decays_the_rate() {
        let s = schedule(ScheduleKind::Paper, 0.0);
        let e = |epoch| When {
            epoch,
            progress: 0.0,
        };
        assert_eq!(s.momentum(e(0)), 0.5);
        assert!((s.momentum(e(5)) - 0.7).abs() < 1e-12);
        assert_eq!(s.momentum(e(10)), 0.9);
        assert_eq!(s.learning_rate(e(9)), 0.4);
        assert!((s.learning_rate(e(10)) - 0.4 * 0.9).abs() < 1e-12);
        assert!((s.learning_rate(e(11)) - 0.4 * 0.81).abs() < 1e-12);
    }
}
