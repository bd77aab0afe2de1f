//! Local workers (`--jobs J`): J threads, each running the next cell of the plan as
//! `ltmlp run-job` would, sharing one data cache; a signal stops them all cleanly.

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
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= plan.cells.len() {
                    break;
                }
                let outcome = run_cell(dir, plan, index, cache, interrupt.clone(), log);
                if let Ok(mut all) = outcomes.lock() {
                    all.push((index, outcome));
                }
            });
        }
    });
    let mut all = outcomes.into_inner().unwrap_or_default();
    all.sort_by_key(|(i, _)| *i);
    all
}
