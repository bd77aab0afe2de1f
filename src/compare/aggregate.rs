//! Aggregating the runs of each setting: mean ± std over seeds of the final and best figures,
//! the time to a target (in epochs, examples and seconds), the training loss at fixed epochs,
//! collapse at the end, the per-class test error at the best evaluation, and the mean and
//! min–max band of the learning curves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::group::{group, setting_text, Group};
use super::runs::SavedRun;
use crate::confusion::EpochConfusion;
use crate::protocol::best::{best_of, validation_figure};
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

/// One point of a learning curve across seeds (the i-th evaluation of every run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub epoch: usize,
    /// Mean over the runs of the examples trained on so far.
    pub examples: f64,
    /// Mean over the runs of the wall seconds so far.
    pub seconds: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Runs that reached this evaluation.
    pub runs: usize,
}

/// Everything the report says about one setting of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub variant: String,
    /// Values on the sweep's axes.
    pub setting: Vec<(String, String)>,
    /// `ab learning_rate=0.1`, or the variant alone when there are no axes.
    pub label: String,
    pub runs: usize,
    /// Runs counted in the statistics.
    pub counted: usize,
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
    pub examples_to_target: Option<Stat>,
    pub seconds_to_target: Option<Stat>,
    /// Training loss at the requested epochs (None where no run got there).
    pub train_loss_at: Vec<(usize, Option<Stat>)>,
    /// Mean over hidden layers of the collapsed fraction at the last evaluation.
    pub collapsed_at_end: Option<Stat>,
    /// Classifiers: each class's label and its test error % at the best evaluation (the
    /// evaluation `test_at_best` is taken at), over the seeds.
    #[serde(default)]
    pub per_class_test_at_best: Vec<(i64, Option<Stat>)>,
    pub validation_curve: Vec<CurvePoint>,
    pub train_loss_curve: Vec<CurvePoint>,
    /// The config without the seed (for slicing along one axis).
    #[serde(skip)]
    pub config: BTreeMap<String, String>,
}

/// Earlier name of [`GroupReport`], from when there was one group per variant.
pub type VariantReport = GroupReport;

/// Which runs the statistics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Finished runs only (the report).
    Finished,
    /// Every run that has not failed, with its latest figures (live views).
    Running,
}

fn test_value(m: &EpochMetrics) -> f64 {
    m.test_error.unwrap_or(m.test_loss)
}

/// Each class's test error at every run's best evaluation, over the runs whose classes are
/// those of the first run with a confusion matrix (runs of one setting share their data).
fn per_class_at_best(runs: &[&SavedRun]) -> Vec<(i64, Option<Stat>)> {
    let at_best: Vec<&EpochConfusion> = runs
        .iter()
        .filter_map(|r| best_of(&r.metrics)?.confusion.as_deref())
        .collect();
    let Some(first) = at_best.first() else {
        return Vec::new();
    };
    let per_run: Vec<Vec<Option<f64>>> = at_best
        .iter()
        .filter(|c| c.labels == first.labels)
        .map(|c| c.test.per_class_error())
        .collect();
    first
        .labels
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            let values: Vec<f64> = per_run.iter().filter_map(|e| e.get(i).copied()?).collect();
            (label, Stat::of(&values))
        })
        .collect()
}

fn curve(runs: &[&SavedRun], value: fn(&EpochMetrics) -> f64) -> Vec<CurvePoint> {
    let longest = runs.iter().map(|r| r.metrics.len()).max().unwrap_or(0);
    (0..longest)
        .filter_map(|i| {
            let at: Vec<(&SavedRun, &EpochMetrics)> = runs
                .iter()
                .filter_map(|r| r.metrics.get(i).map(|m| (*r, m)))
                .collect();
            let n = at.len() as f64;
            let values: Vec<f64> = at.iter().map(|(_, m)| value(m)).collect();
            Some(CurvePoint {
                epoch: at.first()?.1.epoch,
                examples: at
                    .iter()
                    .map(|(r, m)| (m.iteration as f64) * r.batch_size as f64)
                    .sum::<f64>()
                    / n,
                seconds: at.iter().map(|(_, m)| m.elapsed_seconds).sum::<f64>() / n,
                mean: values.iter().sum::<f64>() / n,
                min: values.iter().copied().fold(f64::INFINITY, f64::min),
                max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                runs: at.len(),
            })
        })
        .collect()
}

fn report_of(
    mine: &[&SavedRun],
    g: Group,
    axes: &[String],
    target: Option<f64>,
    loss_epochs: &[usize],
    include: Include,
) -> GroupReport {
    let setting = g.setting(axes);
    let label = if setting.is_empty() {
        g.variant.clone()
    } else {
        format!("{} {}", g.variant, setting_text(&setting, axes))
    };
    let good: Vec<&SavedRun> = mine
        .iter()
        .copied()
        .filter(|r| match include {
            Include::Finished => r.finished(),
            Include::Running => r.failure.is_none() && !r.metrics.is_empty(),
        })
        .collect();
    let collect = |f: &dyn Fn(&SavedRun) -> Option<f64>| -> Option<Stat> {
        Stat::of(&good.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let hits: Vec<(&SavedRun, &EpochMetrics)> = good
        .iter()
        .filter_map(|r| {
            let t = target?;
            r.metrics
                .iter()
                .find(|m| validation_figure(m) <= t)
                .map(|m| (*r, m))
        })
        .collect();
    let hit_stat = |f: &dyn Fn(&SavedRun, &EpochMetrics) -> f64| {
        Stat::of(&hits.iter().map(|(r, m)| f(r, m)).collect::<Vec<_>>())
    };
    GroupReport {
        variant: g.variant,
        setting,
        label,
        runs: mine.len(),
        counted: good.len(),
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
        final_validation: collect(&|r| r.metrics.last().map(validation_figure)),
        best_validation: collect(&|r| best_of(&r.metrics).map(validation_figure)),
        test_at_best: collect(&|r| best_of(&r.metrics).map(test_value)),
        final_train_loss: collect(&|r| r.metrics.last().map(|m| m.train_loss)),
        target,
        reached_target: hits.len(),
        epochs_to_target: hit_stat(&|_, m| m.epoch as f64),
        examples_to_target: hit_stat(&|r, m| m.iteration as f64 * r.batch_size as f64),
        seconds_to_target: hit_stat(&|_, m| m.elapsed_seconds),
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
        per_class_test_at_best: per_class_at_best(&good),
        validation_curve: curve(&good, validation_figure),
        train_loss_curve: curve(&good, |m| m.train_loss),
        config: g.config,
    }
}

/// Aggregates the runs of every setting; returns the groups (ordered by variant, then by
/// setting) and the axes along which the settings of a variant differ.
pub fn aggregate_groups(
    runs: &[SavedRun],
    target: Option<f64>,
    loss_epochs: &[usize],
    include: Include,
) -> (Vec<GroupReport>, Vec<String>) {
    let grouping = group(runs);
    let axes = grouping.axes.clone();
    let reports = grouping
        .groups
        .into_iter()
        .map(|g| {
            let mine: Vec<&SavedRun> = g.runs.iter().map(|&i| &runs[i]).collect();
            report_of(&mine, g, &axes, target, loss_epochs, include)
        })
        .collect();
    (reports, axes)
}

/// The settings of the given variants (in that order) with the latest figures of every run
/// that has not failed, for live views.
pub fn aggregate(
    runs: &[SavedRun],
    variants: &[String],
    target: Option<f64>,
    loss_epochs: &[usize],
) -> Vec<GroupReport> {
    let (reports, _) = aggregate_groups(runs, target, loss_epochs, Include::Running);
    variants
        .iter()
        .flat_map(|v| reports.iter().filter(move |r| &r.variant == v).cloned())
        .collect()
}
