//! The one rule that says which evaluation is a run's best: used by the summary, early
//! stopping, a live run's status and `ltmlp ls`.

use super::{EpochMetrics, Summary};

/// The figure a run is judged by: the validation error where the run classifies (its
/// evaluations carry one), else the validation loss.
pub fn validation_figure(m: &EpochMetrics) -> f64 {
    m.validation_error.unwrap_or(m.validation_loss)
}

/// The figure of the best evaluation a finished run recorded in its summary.
pub fn recorded_figure(summary: &Summary) -> Option<f64> {
    summary
        .best_validation_error
        .or(summary.best_validation_loss)
}

/// Whether `candidate` is a better evaluation than `best`: a lower validation figure; on an
/// equal error, a lower validation loss. A NaN figure is never better than a number, and any
/// number is better than a NaN (a diverged first epoch must not stay the best for good).
pub fn improves_on(candidate: &EpochMetrics, best: &EpochMetrics) -> bool {
    let (c, b) = (validation_figure(candidate), validation_figure(best));
    match (c.is_nan(), b.is_nan()) {
        (true, _) => false,
        (false, true) => true,
        (false, false) if c != b => c < b,
        // An equal error: the lower loss wins (for loss-judged runs this is `c < b` again).
        (false, false) => {
            candidate.validation_error.is_some()
                && (candidate.validation_loss < best.validation_loss
                    || best.validation_loss.is_nan() && !candidate.validation_loss.is_nan())
        }
    }
}

/// The best of a run's evaluations under [`improves_on`] (ties: the earlier one).
pub fn best_of(evaluations: &[EpochMetrics]) -> Option<&EpochMetrics> {
    evaluations.iter().fold(None, |best, m| match best {
        Some(b) if !improves_on(m, b) => Some(b),
        _ => Some(m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Flags;

    fn eval(epoch: usize, loss: f64, error: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            iteration: 0,
            elapsed_seconds: 0.0,
            train_loss: 0.0,
            train_error: None,
            validation_loss: loss,
            validation_error: error,
            test_loss: 0.0,
            test_error: None,
            learning_rate: 0.1,
            momentum: 0.0,
            examples_per_second: 0.0,
            flags: Flags::NONE,
            layers: Vec::new(),
            transform_events: Vec::new(),
            r2: None,
            wall: None,
            confusion: None,
        }
    }

    fn best_epoch(evaluations: &[EpochMetrics]) -> Option<usize> {
        best_of(evaluations).map(|m| m.epoch)
    }

    #[test]
    fn the_lower_error_wins_over_a_lower_loss() {
        let runs = [eval(1, 0.2, Some(3.0)), eval(2, 0.1, Some(4.0))];
        assert_eq!(best_epoch(&runs), Some(1));
    }

    #[test]
    fn an_equal_error_goes_to_the_lower_loss_and_a_full_tie_to_the_earlier() {
        let runs = [
            eval(1, 0.3, Some(3.0)),
            eval(2, 0.2, Some(3.0)),
            eval(3, 0.2, Some(3.0)),
        ];
        assert_eq!(best_epoch(&runs), Some(2));
        let losses = [eval(1, 0.5, None), eval(2, 0.5, None)];
        assert_eq!(best_epoch(&losses), Some(1));
    }

    #[test]
    fn a_nan_is_never_best_unless_nothing_else_is() {
        let runs = [
            eval(1, f64::NAN, None),
            eval(2, 0.4, None),
            eval(3, f64::NAN, None),
        ];
        assert_eq!(best_epoch(&runs), Some(2));
        let errors = [eval(1, 0.2, Some(f64::NAN)), eval(2, 0.9, Some(50.0))];
        assert_eq!(best_epoch(&errors), Some(2));
        let tied = [eval(1, f64::NAN, Some(2.0)), eval(2, 0.4, Some(2.0))];
        assert_eq!(best_epoch(&tied), Some(2));
        assert_eq!(best_epoch(&[eval(1, f64::NAN, None)]), Some(1));
        assert_eq!(best_epoch(&[]), None);
    }
}
