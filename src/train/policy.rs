//! When α, β, γ are re-estimated, and on which data (docs/method.md).

use crate::preset::{PolicyKind, TransformSection};

/// The data a re-estimation averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSource {
    /// The minibatch being trained on (its forward pass is reused: no extra cost).
    CurrentBatch,
    /// A fixed sample of training examples, noise-free.
    Sample,
    /// The whole training set with fresh input noise (the paper demo's epoch-end update).
    TrainingSetWithNoise,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    kind: PolicyKind,
    every: u64,
    threshold: f64,
}

impl Policy {
    pub fn new(section: &TransformSection) -> Self {
        Policy {
            kind: section.policy,
            every: section.every.max(1) as u64,
            threshold: section.paper_threshold,
        }
    }

    /// Whether the paper rule is still in its every-minibatch phase.
    fn paper_every_batch(&self, epoch: usize, validation_error: Option<f64>) -> bool {
        epoch == 0 || validation_error.is_none_or(|e| e > self.threshold)
    }

    /// The update due within minibatch number `iteration` (0-based), if any.
    pub fn within_step(
        &self,
        iteration: u64,
        epoch: usize,
        validation_error: Option<f64>,
    ) -> Option<UpdateSource> {
        match self.kind {
            PolicyKind::Every if iteration.is_multiple_of(self.every) => {
                Some(UpdateSource::CurrentBatch)
            }
            PolicyKind::Sample if iteration.is_multiple_of(self.every) => {
                Some(UpdateSource::Sample)
            }
            PolicyKind::Paper if self.paper_every_batch(epoch, validation_error) => {
                Some(UpdateSource::CurrentBatch)
            }
            _ => None,
        }
    }

    /// The update due at the end of epoch `epoch`, if any.
    pub fn at_epoch_end(
        &self,
        epoch: usize,
        validation_error: Option<f64>,
    ) -> Option<UpdateSource> {
        match self.kind {
            PolicyKind::Paper if !self.paper_every_batch(epoch, validation_error) => {
                Some(UpdateSource::TrainingSetWithNoise)
            }
            _ => None,
        }
    }

    /// Data used for a re-estimation outside the schedule (a switch, or the user's `r`).
    pub fn on_demand_source(&self) -> UpdateSource {
        match self.kind {
            PolicyKind::Sample => UpdateSource::Sample,
            _ => UpdateSource::CurrentBatch,
        }
    }
}
