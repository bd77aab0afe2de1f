//! `ltmlp report DIR --csv`: the runs of a comparison or sweep as two CSV tables, `runs.csv`
//! (a row per run and evaluation, every setting a column) and `settings.csv` (a row per
//! setting: mean, std and count over seeds of the report's figures).

use std::path::{Path, PathBuf};

use super::aggregate::{aggregate_groups, GroupReport, Include, Stat};
use super::report::figure_settings;
use super::runs::{scan, SavedRun};
use crate::sweep::plan::{Plan, PLAN_FILE};
use crate::train::EpochMetrics;

pub const RUNS_CSV: &str = "runs.csv";
pub const SETTINGS_CSV: &str = "settings.csv";

/// A column's name and how its value is read.
type Column<T, V> = (&'static str, fn(&T) -> Option<V>);

/// The evaluation columns of `runs.csv`, each with how it is read from a record.
const EVALUATION_COLUMNS: [Column<EpochMetrics, f64>; 12] = [
    ("epoch", |m| Some(m.epoch as f64)),
    ("iteration", |m| Some(m.iteration as f64)),
    ("elapsed_seconds", |m| Some(m.elapsed_seconds)),
    ("train_loss", |m| Some(m.train_loss)),
    ("train_error", |m| m.train_error),
    ("validation_loss", |m| Some(m.validation_loss)),
    ("validation_error", |m| m.validation_error),
    ("test_loss", |m| Some(m.test_loss)),
    ("test_error", |m| m.test_error),
    ("learning_rate", |m| Some(m.learning_rate)),
    ("momentum", |m| Some(m.momentum)),
    ("examples_per_second", |m| Some(m.examples_per_second)),
];

/// The report's figures in `settings.csv`, each a mean, std and count over the seeds.
const FIGURE_COLUMNS: [Column<GroupReport, Stat>; 8] = [
    ("final_validation", |g| g.final_validation),
    ("best_validation", |g| g.best_validation),
    ("test_at_best", |g| g.test_at_best),
    ("final_train_loss", |g| g.final_train_loss),
    ("epochs_to_target", |g| g.epochs_to_target),
    ("examples_to_target", |g| g.examples_to_target),
    ("seconds_to_target", |g| g.seconds_to_target),
    ("collapsed_at_end", |g| g.collapsed_at_end),
];

/// Writes `runs.csv` and `settings.csv` into `dir`; returns their paths.
pub fn write_tables(dir: &Path, target: Option<f64>) -> Result<(PathBuf, PathBuf), String> {
    let scan = scan(dir).map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?;
    if scan.runs.is_empty() {
        return Err(format!(
            "{}: no runs found (each run is a folder with a run.json or, written before it existed, a config.toml)",
            dir.display()
        ));
    }
    let plan = if dir.join(PLAN_FILE).exists() {
        Some(Plan::read(dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let (target, loss_epochs) = figure_settings(&scan, plan.as_ref(), target, &[]);
    let runs_path = dir.join(RUNS_CSV);
    write_csv(&runs_path, runs_table(&scan.runs))?;
    let (groups, axes) = aggregate_groups(&scan.runs, target, &loss_epochs, Include::Finished);
    let settings_path = dir.join(SETTINGS_CSV);
    write_csv(&settings_path, settings_table(&groups, &axes))?;
    Ok((runs_path, settings_path))
}

fn number(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite())
        .map_or_else(String::new, |x| x.to_string())
}

/// A row per run and evaluation (one row with empty figures for a run without any).
pub fn runs_table(runs: &[SavedRun]) -> Vec<Vec<String>> {
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.config.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut header: Vec<String> = ["run", "variant", "seed", "status"]
        .map(String::from)
        .to_vec();
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend(EVALUATION_COLUMNS.iter().map(|(name, _)| name.to_string()));
    let mut rows = vec![header];
    for run in runs {
        let mut lead = vec![
            run.name(),
            run.variant.clone(),
            run.seed.to_string(),
            run.status(),
        ];
        lead.extend(
            keys.iter()
                .map(|k| run.config.get(*k).cloned().unwrap_or_default()),
        );
        if run.metrics.is_empty() {
            let mut row = lead.clone();
            row.extend(EVALUATION_COLUMNS.iter().map(|_| String::new()));
            rows.push(row);
        }
        for m in &run.metrics {
            let mut row = lead.clone();
            row.extend(EVALUATION_COLUMNS.iter().map(|(_, read)| number(read(m))));
            rows.push(row);
        }
    }
    rows
}

/// A row per setting of a variant, with its values on the axes and the figures over seeds.
pub fn settings_table(groups: &[GroupReport], axes: &[String]) -> Vec<Vec<String>> {
    let mut loss_epochs: Vec<usize> = groups
        .iter()
        .flat_map(|g| g.train_loss_at.iter().map(|(e, _)| *e))
        .collect();
    loss_epochs.sort_unstable();
    loss_epochs.dedup();
    let mut header: Vec<String> = vec!["variant".into(), "setting".into()];
    header.extend(axes.iter().cloned());
    header.extend(
        [
            "runs",
            "counted",
            "in_progress",
            "failed",
            "metric",
            "target",
            "reached_target",
        ]
        .map(String::from),
    );
    let figure_names = FIGURE_COLUMNS
        .iter()
        .map(|(name, _)| name.to_string())
        .chain(
            loss_epochs
                .iter()
                .map(|e| format!("train_loss_at_epoch_{e}")),
        );
    for name in figure_names {
        for part in ["mean", "std", "n"] {
            header.push(format!("{name}_{part}"));
        }
    }
    let mut rows = vec![header];
    for g in groups {
        let mut row = vec![g.variant.clone(), g.label.clone()];
        row.extend(axes.iter().map(|axis| {
            g.setting
                .iter()
                .find(|(k, _)| k == axis)
                .map_or_else(String::new, |(_, v)| v.clone())
        }));
        row.extend([
            g.runs.to_string(),
            g.counted.to_string(),
            g.in_progress.to_string(),
            g.failed.len().to_string(),
            g.metric.clone(),
            number(g.target),
            g.reached_target.to_string(),
        ]);
        let stats = FIGURE_COLUMNS
            .iter()
            .map(|(_, read)| read(g))
            .chain(loss_epochs.iter().map(|e| {
                g.train_loss_at
                    .iter()
                    .find(|(at, _)| at == e)
                    .and_then(|(_, s)| *s)
            }));
        for stat in stats {
            row.push(number(stat.map(|s| s.mean)));
            row.push(number(stat.map(|s| s.std)));
            row.push(stat.map_or_else(String::new, |s| s.n.to_string()));
        }
        rows.push(row);
    }
    rows
}

fn write_csv(path: &Path, rows: Vec<Vec<String>>) -> Result<(), String> {
    let cannot = |e: &dyn std::fmt::Display| format!("{}: cannot write ({e})", path.display());
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row).map_err(|e| cannot(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| cannot(&e))?;
    crate::durable::write_atomic(path, &bytes).map_err(|e| cannot(&e))
}

/// `ltmlp report DIR [--csv]`: the report, and with `csv` the two tables.
pub fn report_command(
    dir: &Path,
    target: Option<f64>,
    csv: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let code = super::report::report_command(dir, target)?;
    if csv {
        let (runs, settings) = write_tables(dir, target).map_err(anyhow::Error::msg)?;
        crate::say!("tables: {} and {}", runs.display(), settings.display());
    }
    Ok(code)
}
