//! A run's `summary.json` payload from what the trainer knows (its state, times, steering)
//! and its last and best evaluations; the one rule for the native trainer and `ltmlp host`.

use std::path::Path;

use super::{EpochMetrics, RunState, Summary, WallTime};

/// What the recorder cannot know by itself for the summary.
#[derive(Debug, Clone)]
pub struct SummaryBase {
    pub preset: String,
    pub variant: String,
    pub monitor: crate::preset::Monitor,
    pub state: RunState,
    pub reason: Option<String>,
    pub iterations: u64,
    pub wall_seconds: f64,
    pub train_seconds: f64,
    pub reestimate_seconds: f64,
    pub examples_per_second: f64,
    pub steering_actions: usize,
    pub wall: Option<WallTime>,
}

/// A summary from the last and the best evaluation (none for a run without files).
pub fn summarize(
    base: SummaryBase,
    last: Option<&EpochMetrics>,
    best: Option<&EpochMetrics>,
    dir: Option<&Path>,
) -> Summary {
    Summary {
        preset: base.preset,
        variant: base.variant,
        monitor: base.monitor,
        state: base.state,
        reason: base.reason,
        epochs_completed: last.map_or(0, |m| m.epoch),
        iterations: base.iterations,
        wall_seconds: base.wall_seconds,
        train_seconds: base.train_seconds,
        reestimate_seconds: base.reestimate_seconds,
        examples_per_second: base.examples_per_second,
        final_train_loss: last.map(|m| m.train_loss),
        final_validation_loss: last.map(|m| m.validation_loss),
        final_validation_error: last.and_then(|m| m.validation_error),
        final_test_loss: last.map(|m| m.test_loss),
        final_test_error: last.and_then(|m| m.test_error),
        best_epoch: best.map(|m| m.epoch),
        best_validation_loss: best.map(|m| m.validation_loss),
        best_validation_error: best.and_then(|m| m.validation_error),
        test_loss_at_best: best.map(|m| m.test_loss),
        test_error_at_best: best.and_then(|m| m.test_error),
        out_dir: dir.map(|d| d.display().to_string()),
        steering_actions: base.steering_actions,
        wall: base.wall,
        per_class_error: crate::confusion::PerClassError::of(
            last.and_then(|m| m.confusion.as_deref()),
            best.and_then(|m| m.confusion.as_deref()),
        ),
    }
}

/// A run's last and best evaluation so far (`best`'s rule), for its summary.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    pub last: Option<EpochMetrics>,
    pub best: Option<EpochMetrics>,
}

impl Standing {
    /// The standing after `history`, oldest first.
    pub fn of(history: &[EpochMetrics]) -> Self {
        let mut standing = Standing::default();
        for m in history {
            standing.after(m);
        }
        standing
    }

    /// Takes one more evaluation.
    pub fn after(&mut self, m: &EpochMetrics) {
        if self
            .best
            .as_ref()
            .is_none_or(|b| super::best::improves_on(m, b))
        {
            self.best = Some(m.clone());
        }
        self.last = Some(m.clone());
    }

    /// The summary of a run in folder `dir` that ends as `base` says.
    pub fn summary(&self, base: SummaryBase, dir: Option<&Path>) -> Summary {
        summarize(base, self.last.as_ref(), self.best.as_ref(), dir)
    }
}
