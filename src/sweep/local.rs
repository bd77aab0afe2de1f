//! Local workers (`--jobs J`): J threads, each running the next cell of the plan as
//! `ltmlp run-job` would, the costliest first, sharing one data cache; a signal stops them all
//! cleanly.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::cell::{run_cell, CellOutcome};
use super::data_cache::DataCache;
use super::plan::Plan;

/// Runs every cell of the plan, `jobs` at a time; returns (index, outcome) in index order.
pub fn run_all(
    dir: &Path,
    plan: &Plan,
    jobs: usize,
    cache: &DataCache,
    interrupt: Option<Arc<AtomicUsize>>,
    log: &(dyn Fn(String) + Sync),
) -> Vec<(usize, CellOutcome)> {
    let order = longest_first(plan);
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    let stopped = || {
        interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst) != 0)
    };
    let workers = jobs.clamp(1, plan.cells.len().max(1));
    crate::train::trainer::set_concurrent_runs(workers);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if stopped() {
                    break;
                }
                let Some(&index) = order.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                let outcome = run_cell(dir, plan, index, cache, interrupt.clone(), log);
                if let Ok(mut all) = outcomes.lock() {
                    all.push((index, outcome));
                }
            });
        }
    });
    let mut all = outcomes.into_inner().unwrap_or_default();
    // A cell another ltmlp was training (a second sweep on the same folder) is this sweep's
    // too: wait for that process to let go, then take the cell as it left it (finished:
    // skipped; interrupted: resumed here).
    for (index, outcome) in &mut all {
        if matches!(outcome, CellOutcome::Held(_)) {
            log(format!(
                "[{}] another ltmlp is training this cell; waiting for it to end",
                plan.cells[*index].folder
            ));
        }
        while matches!(outcome, CellOutcome::Held(_)) && !stopped() {
            std::thread::sleep(HELD_POLL);
            *outcome = run_cell(dir, plan, *index, cache, interrupt.clone(), log);
        }
    }
    all.sort_by_key(|(i, _)| *i);
    all
}

/// How often a sweep looks whether another process has let go of a cell.
const HELD_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The input width [`relative_cost`] assumes: MNIST's, the embedded data's.
const ASSUMED_INPUTS: usize = 784;

/// The cells in the order to start them: the costliest first (by [`relative_cost`]; equal
/// costs in plan order), so that no worker is left with a long cell while the others idle.
fn longest_first(plan: &Plan) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plan.cells.len()).collect();
    let cost = |i: usize| relative_cost(&plan.cells[i].config, &plan.cells[i].variant);
    order.sort_by(|&a, &b| cost(b).total_cmp(&cost(a)));
    order
}

/// A cell's training work relative to the others of its sweep (they share the data): the
/// epochs (or the time budget) times the weights, doubled when α, β or γ are re-estimated
/// within the steps (about +60–110 % of a step, docs/performance.md). The inputs are counted as
/// [`ASSUMED_INPUTS`] wide, with a shortcut to every hidden layer: only the order matters.
fn relative_cost(config: &crate::preset::Preset, variant: &str) -> f64 {
    use crate::preset::PolicyKind;
    let hidden = &config.model.hidden;
    let weights: usize = ASSUMED_INPUTS * hidden.iter().sum::<usize>()
        + hidden.windows(2).map(|w| w[0] * w[1]).sum::<usize>();
    let length = match config.train.time_budget_seconds {
        Some(seconds) => return seconds,
        None => config.train.epochs as f64,
    };
    let within_steps = matches!(
        config.transforms.policy,
        PolicyKind::Every | PolicyKind::Paper
    ) && crate::preset::Variant::from_name(variant)
        .is_some_and(|v| v.flags().any());
    length * weights.max(1) as f64 * if within_steps { 2.0 } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::axes::Axis;
    use crate::sweep::plan::{build, SweepSpec};

    /// Cells re-estimating within their steps, and wider ones, start before the cheaper ones;
    /// equal cells keep the plan's order.
    #[test]
    fn the_costliest_cells_start_first() {
        let plan = build(&SweepSpec {
            preset: "presets/default.toml".into(),
            variants: vec!["none".into(), "ab".into()],
            seeds: 2,
            axes: vec![Axis {
                variant: None,
                key: "model.hidden".into(),
                values: vec!["[50]".into(), "[400, 400]".into()],
            }],
            overrides: Vec::new(),
            data: None,
            tensorboard: false,
        })
        .unwrap();
        let order = longest_first(&plan);
        let started: Vec<(&str, usize)> = order
            .iter()
            .map(|&i| {
                let cell = &plan.cells[i];
                (cell.variant.as_str(), cell.config.model.hidden.len())
            })
            .collect();
        assert_eq!(
            started,
            [
                ("ab", 2),
                ("ab", 2),
                ("none", 2),
                ("none", 2),
                ("ab", 1),
                ("ab", 1),
                ("none", 1),
                ("none", 1)
            ]
        );
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..plan.cells.len()).collect::<Vec<_>>());
        let (first, second) = (order[0], order[1]);
        assert!(first < second, "equal cells keep the plan's order");
        // One wide layer outweighs two narrow ones: the input layer counts.
        let mut config = plan.cells[0].config.clone();
        config.model.hidden = vec![1000];
        let wide = relative_cost(&config, "none");
        config.model.hidden = vec![100, 100];
        assert!(wide > relative_cost(&config, "none"));
    }
}
