//! Aggregating runs per variant: mean ± std over seeds of the final and best figures, the time
//! to a target, the training loss at fixed epochs, collapse at the end, and the mean and
//! min–max band of the learning curves.

use serde::{Deserialize, Serialize};

use super::runs::SavedRun;
use crate::train::EpochMetrics;

/// Mean and sample standard deviation over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    /// `None` for no values; the std of one value is 0.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stat {
            mean,
            std: var.sqrt(),
            n,
        })
    }
}

/// One point of a learning curve across seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub epoch: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that reached this epoch.
    pub runs: usize,
}

/// Everything the report says about one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    pub variant: String,
    pub runs: usize,
    pub in_progress: usize,
    /// (run folder, reason) of every failed run; they are left out of the statistics.
    pub failed: Vec<(String, String)>,
    /// Validation error % for classifiers, validation loss otherwise.
    pub metric: String,
    pub final_validation: Option<Stat>,
    pub best_validation: Option<Stat>,
    pub test_at_best: Option<Stat>,
    pub final_train_loss: Option<Stat>,
    pub target: Option<f64>,
    pub reached_target: usize,
    pub epochs_to_target: Option<Stat>,
    pub seconds_to_target: Option<Stat>,
    /// Training loss at the requested epochs (None where no run got there).
    pub train_loss_at: Vec<(usize, Option<Stat>)>,
    /// Mean over hidden layers of the collapsed fraction at the last evaluation.
    pub collapsed_at_end: Option<Stat>,
    pub validation_curve: Vec<CurvePoint>,
    pub train_loss_curve: Vec<CurvePoint>,
}

fn validation_value(m: &EpochMetrics) -> f64 {
    m.validation_error.unwrap_or(m.validation_loss)
}

fn test_value(m: &EpochMetrics) -> f64 {
    m.test_error.unwrap_or(m.test_loss)
}

/// The evaluation with the best validation result (ties: the earlier one).
fn best(metrics: &[EpochMetrics]) -> Option<&EpochMetrics> {
    metrics
        .iter()
        .fold(None, |best: Option<&EpochMetrics>, m| match best {
            Some(b) if validation_value(b) <= validation_value(m) => Some(b),
            _ => Some(m),
        })
}

fn curve(runs: &[&SavedRun], value: fn(&EpochMetrics) -> f64) -> Vec<CurvePoint> {
    let longest = runs.iter().map(|r| r.metrics.len()).max().unwrap_or(0);
    (0..longest)
        .filter_map(|i| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.metrics.get(i).map(value))
                .collect();
            let epoch = runs
                .iter()
                .find_map(|r| r.metrics.get(i).map(|m| m.epoch))?;
            Some(CurvePoint {
                epoch,
                mean: values.iter().sum::<f64>() / values.len() as f64,
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                runs: values.len(),
            })
        })
        .collect()
}

/// Aggregates the runs of each variant (in the order of `variants`).
pub fn aggregate(
    runs: &[SavedRun],
    variants: &[String],
    target: Option<f64>,
    loss_epochs: &[usize],
) -> Vec<VariantReport> {
    variants
        .iter()
        .map(|variant| {
            let mine: Vec<&SavedRun> = runs.iter().filter(|r| &r.variant == variant).collect();
            let good: Vec<&SavedRun> = mine
                .iter()
                .copied()
                .filter(|r| r.failure.is_none() && !r.metrics.is_empty())
                .collect();
            let collect = |f: &dyn Fn(&SavedRun) -> Option<f64>| -> Option<Stat> {
                Stat::of(&good.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let hits: Vec<&EpochMetrics> = good
                .iter()
                .filter_map(|r| {
                    let t = target?;
                    r.metrics.iter().find(|m| validation_value(m) <= t)
                })
                .collect();
            VariantReport {
                variant: variant.clone(),
                runs: mine.len(),
                in_progress: mine.iter().filter(|r| r.in_progress()).count(),
                failed: mine
                    .iter()
                    .filter_map(|r| r.failure.as_ref().map(|f| (r.name(), f.clone())))
                    .collect(),
                metric: if mine.first().is_none_or(|r| r.classify) {
                    "validation error %".into()
                } else {
                    "validation loss".into()
                },
                final_validation: collect(&|r| r.metrics.last().map(validation_value)),
                best_validation: collect(&|r| best(&r.metrics).map(validation_value)),
                test_at_best: collect(&|r| best(&r.metrics).map(test_value)),
                final_train_loss: collect(&|r| r.metrics.last().map(|m| m.train_loss)),
                target,
                reached_target: hits.len(),
                epochs_to_target: Stat::of(
                    &hits.iter().map(|m| m.epoch as f64).collect::<Vec<_>>(),
                ),
                seconds_to_target: Stat::of(
                    &hits.iter().map(|m| m.elapsed_seconds).collect::<Vec<_>>(),
                ),
                train_loss_at: loss_epochs
                    .iter()
                    .map(|&e| {
                        (
                            e,
                            collect(&|r| {
                                r.metrics
                                    .iter()
                                    .find(|m| m.epoch == e)
                                    .map(|m| m.train_loss)
                            }),
                        )
                    })
                    .collect(),
                collapsed_at_end: collect(&|r| {
                    r.metrics.last().map(|m| {
                        m.layers.iter().map(|l| l.collapsed_fraction).sum::<f64>()
                            / m.layers.len().max(1) as f64
                    })
                }),
                validation_curve: curve(&good, validation_value),
                train_loss_curve: curve(&good, |m| m.train_loss),
            }
        })
        .collect()
}
