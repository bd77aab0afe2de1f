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

    /// Everything decided on the validation error measured after epoch `epoch` (0-based): its
    /// epoch-end update, and whether epoch `epoch + 1` re-estimates within its minibatches (the
    /// paper rule). Equal decisions for two errors mean the same training from there on.
    pub fn decisions_after(
        &self,
        epoch: usize,
        validation_error: Option<f64>,
    ) -> (Option<UpdateSource>, bool) {
        (
            self.at_epoch_end(epoch, validation_error),
            self.kind == PolicyKind::Paper && self.paper_every_batch(epoch + 1, validation_error),
        )
    }

    /// Data used for a re-estimation outside the schedule (a switch, or the user's `r`).
    pub fn on_demand_source(&self) -> UpdateSource {
        match self.kind {
            PolicyKind::Sample => UpdateSource::Sample,
            _ => UpdateSource::CurrentBatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: PolicyKind) -> Policy {
        Policy {
            kind,
            every: 1,
            threshold: 1.0,
        }
    }

    /// The paper rule's decisions change across its threshold and only there; the other
    /// policies never read the error.
    #[test]
    fn only_the_paper_rule_decides_on_the_validation_error() {
        let paper = policy(PolicyKind::Paper);
        for epoch in [0, 1, 7] {
            let above = paper.decisions_after(epoch, Some(1.5));
            assert_eq!(above, paper.decisions_after(epoch, Some(4.0)));
            assert_eq!(above, paper.decisions_after(epoch, None));
            assert_ne!(above, paper.decisions_after(epoch, Some(0.5)));
        }
        // After epoch 0 no epoch-end update is due either way; the next epoch's steps differ.
        assert_eq!(paper.decisions_after(0, Some(0.5)), (None, false));
        assert_eq!(
            paper.decisions_after(3, Some(0.5)),
            (Some(UpdateSource::TrainingSetWithNoise), false)
        );
        for kind in [PolicyKind::Every, PolicyKind::Sample, PolicyKind::Never] {
            let other = policy(kind);
            assert_eq!(
                other.decisions_after(2, Some(0.5)),
                other.decisions_after(2, Some(40.0))
            );
        }
    }
}
