//! The blow-up rollback of `transforms.gamma_control = "rollback"`: watches the smoothed
//! minibatch loss, keeps the network and momentum of the last healthy stretch, and when the
//! loss jumps (the start of γ's blow-up into saturation, docs/method.md) hands back the older
//! of the two kept states so that training resumes from before the jump at half the rate.

use crate::net::Network;
use crate::real::Real;

use super::optimizer::Optimizer;

/// Weight of the past in the smoothed loss (about ten minibatches).
const SMOOTHING: f64 = 0.9;
/// A jump: the smoothed loss above JUMP_FACTOR × its lowest value plus JUMP_MARGIN. The margin
/// keeps a run whose loss is already tiny (0.01 → 0.04) from counting as blowing up.
const JUMP_FACTOR: f64 = 2.0;
const JUMP_MARGIN: f64 = 0.2;
/// A state is kept only while the smoothed loss is within this of its lowest value.
const HEALTHY_FACTOR: f64 = 1.25;
const HEALTHY_MARGIN: f64 = 0.05;
/// Minibatches between two kept states: a rollback goes back between one and two of these.
pub const KEEP_EVERY: u64 = 25;
/// Rollbacks in one run at most (the rate ÷ 256): a run that still blows up is beyond what
/// halving the rate mends, and then diverges or saturates as under the papers' rule.
pub const MAX_ROLLBACKS: usize = 8;

/// A network and its momentum at one iteration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Kept<T: Real> {
    pub net: Network<T>,
    pub optimizer: Optimizer<T>,
    pub iteration: u64,
    /// The smoothed loss when it was kept (`None`: before the watch's first minibatch).
    smoothed: Option<f64>,
}

/// The watch on the loss and the two kept states. Part of the trainer's state (and so of
/// every checkpoint): a run resumed between a kept state and a jump goes back to the same
/// state, at the same iteration, as the uninterrupted run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Rollback<T: Real> {
    smoothed: Option<f64>,
    lowest: f64,
    recent: Option<Kept<T>>,
    older: Option<Kept<T>>,
    rollbacks: usize,
}

impl<T: Real> Default for Rollback<T> {
    fn default() -> Self {
        Rollback {
            smoothed: None,
            lowest: f64::INFINITY,
            recent: None,
            older: None,
            rollbacks: 0,
        }
    }
}

impl<T: Real> Rollback<T> {
    /// Adds one minibatch's mean loss; true when the smoothed loss has jumped.
    pub fn jumped(&mut self, loss: f64) -> bool {
        if !loss.is_finite() {
            return self.recent.is_some();
        }
        let smoothed = match self.smoothed {
            Some(s) => SMOOTHING * s + (1.0 - SMOOTHING) * loss,
            None => {
                self.lowest = loss;
                loss
            }
        };
        self.smoothed = Some(smoothed);
        self.lowest = self.lowest.min(smoothed);
        smoothed > JUMP_FACTOR * self.lowest + JUMP_MARGIN
    }

    /// Whether no state is kept yet (the watch just started: the state before its first
    /// minibatch is kept whatever the loss, so that a blow-up within the first minibatches
    /// has somewhere to go back to).
    pub fn is_empty(&self) -> bool {
        self.recent.is_none() && self.older.is_none()
    }

    /// Keeps the current state when the loss is healthy or nothing is kept yet (the older
    /// kept state is dropped).
    pub fn keep(&mut self, net: &Network<T>, optimizer: &Optimizer<T>, iteration: u64) {
        let smoothed = self.smoothed;
        let healthy = smoothed.is_some_and(|s| s <= HEALTHY_FACTOR * self.lowest + HEALTHY_MARGIN);
        if !(healthy || self.is_empty()) {
            return;
        }
        self.older = self.recent.take();
        self.recent = Some(Kept {
            net: net.clone(),
            optimizer: optimizer.clone(),
            iteration,
            smoothed,
        });
    }

    /// The state to go back to (the older kept one, else the recent one), with the watch
    /// restarted from that state's loss; `None` when nothing is kept or after
    /// [`MAX_ROLLBACKS`].
    pub fn take(&mut self) -> Option<Kept<T>> {
        if self.rollbacks >= MAX_ROLLBACKS {
            return None;
        }
        let kept = self.older.take().or_else(|| self.recent.take())?;
        self.rollbacks += 1;
        self.recent = Some(kept.clone());
        self.smoothed = kept.smoothed;
        self.lowest = kept.smoothed.unwrap_or(f64::INFINITY);
        Some(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_is_a_doubling_plus_the_margin_of_the_smoothed_loss() {
        let mut watch = Rollback::<f64>::default();
        for _ in 0..50 {
            assert!(!watch.jumped(0.1));
        }
        // A tiny loss growing fourfold is noise, not a blow-up.
        let mut small = Rollback::<f64>::default();
        for _ in 0..50 {
            small.jumped(0.01);
        }
        for _ in 0..50 {
            assert!(!small.jumped(0.04));
        }
        // 0.1 → 2: the smoothed loss passes 2 × 0.1 + 0.2 within a few minibatches.
        let steps = (0..20).position(|_| watch.jumped(2.0));
        assert!(matches!(steps, Some(1..=5)), "{steps:?}");
    }
}
