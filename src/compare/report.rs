//! `report.md`, `report.json` and the learning-curve plots of a comparison folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::aggregate::{aggregate, Stat, VariantReport};
use super::plot::{write_plot, PlotSpec, Series};
use super::runs::{read_runs, SavedRun};
use crate::preset::VARIANTS;

/// Files written by [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub plots: Vec<PathBuf>,
    pub text: String,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    folder: String,
    runs: usize,
    in_progress: usize,
    variants: &'a [VariantReport],
}

fn fmt_stat(s: &Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3}", s.mean, s.std),
        Some(s) => format!("{:.3}", s.mean),
        None => "–".to_string(),
    }
}

/// A fraction as a percentage, mean ± std.
fn fmt_percent(s: &Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.1}% ± {:.1}%", 100.0 * s.mean, 100.0 * s.std),
        Some(s) => format!("{:.1}%", 100.0 * s.mean),
        None => "–".to_string(),
    }
}

/// Variants present in the runs, in the canonical order (none, ab, abg) first.
fn variants_of(runs: &[SavedRun]) -> Vec<String> {
    let mut names: Vec<String> = VARIANTS
        .iter()
        .map(|v| v.to_string())
        .filter(|v| runs.iter().any(|r| &r.variant == v))
        .collect();
    for r in runs {
        if !names.contains(&r.variant) {
            names.push(r.variant.clone());
        }
    }
    names
}

/// Reads every run below `dir` and writes the report and plots there.
pub fn write_report(
    dir: &Path,
    target: Option<f64>,
    loss_epochs: &[usize],
) -> Result<ReportFiles, String> {
    let runs =
        read_runs(dir).map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?;
    if runs.is_empty() {
        return Err(format!(
            "{}: no runs found (each run is a folder with a config.toml)",
            dir.display()
        ));
    }
    let target = target.or_else(|| first_config(&runs).and_then(|c| c.compare.target_error));
    let loss_epochs: Vec<usize> = if loss_epochs.is_empty() {
        first_config(&runs)
            .map(|c| c.compare.loss_at_epochs)
            .unwrap_or_default()
    } else {
        loss_epochs.to_vec()
    };
    let variants = variants_of(&runs);
    let reports = aggregate(&runs, &variants, target, &loss_epochs);
    let text = markdown(dir, &runs, &reports);
    let markdown_path = dir.join("report.md");
    std::fs::write(&markdown_path, &text)
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(&ReportJson {
        folder: dir.display().to_string(),
        runs: runs.len(),
        in_progress: runs.iter().filter(|r| r.in_progress()).count(),
        variants: &reports,
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    let metric = reports
        .first()
        .map_or("validation error %", |r| r.metric.as_str());
    let plots = [
        (
            "validation",
            format!("{metric} (mean, min–max over seeds)"),
            metric.to_string(),
            false,
            true,
        ),
        (
            "train_loss",
            "training loss (mean, min–max over seeds)".to_string(),
            "training loss".to_string(),
            true,
            false,
        ),
    ];
    let mut files = Vec::new();
    for (stem, title, y_label, log_y, validation) in plots {
        let spec = PlotSpec {
            title: &title,
            y_label: &y_label,
            log_y,
            series: reports
                .iter()
                .map(|r| Series {
                    label: &r.variant,
                    points: if validation {
                        &r.validation_curve
                    } else {
                        &r.train_loss_curve
                    },
                })
                .collect(),
        };
        write_plot(dir, stem, &spec)?;
        files.push(dir.join(format!("{stem}.svg")));
        files.push(dir.join(format!("{stem}.png")));
    }
    Ok(ReportFiles {
        markdown: markdown_path,
        json: json_path,
        plots: files,
        text,
    })
}

fn first_config(runs: &[SavedRun]) -> Option<crate::preset::Preset> {
    runs.iter()
        .find_map(|r| crate::preset::PresetFile::read(&r.dir.join(crate::sink::CONFIG_FILE)).ok())
        .map(|f| f.preset)
}

fn markdown(dir: &Path, runs: &[SavedRun], reports: &[VariantReport]) -> String {
    let mut md = String::new();
    let in_progress = runs.iter().filter(|r| r.in_progress()).count();
    let _ = writeln!(md, "# Comparison: {}\n", dir.display());
    let _ = writeln!(
        md,
        "{} runs ({} still in progress). Mean ± sample std over seeds; failed runs are listed and left out.\n",
        runs.len(),
        in_progress
    );
    let metric = reports
        .first()
        .map_or("validation error %", |r| r.metric.as_str());
    let _ = writeln!(md, "| variant | runs | final {metric} | best {metric} | test at best | final train loss | collapsed at end |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in reports {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.variant,
            r.runs,
            fmt_stat(&r.final_validation),
            fmt_stat(&r.best_validation),
            fmt_stat(&r.test_at_best),
            fmt_stat(&r.final_train_loss),
            fmt_percent(&r.collapsed_at_end),
        );
    }
    if let Some(target) = reports.iter().find_map(|r| r.target) {
        let _ = writeln!(md, "\n## Time to {metric} ≤ {target}\n");
        let _ = writeln!(md, "| variant | reached | epochs | seconds |");
        let _ = writeln!(md, "|---|---|---|---|");
        for r in reports {
            let good = r.runs - r.failed.len();
            let _ = writeln!(
                md,
                "| {} | {}/{} | {} | {} |",
                r.variant,
                r.reached_target,
                good,
                fmt_stat(&r.epochs_to_target),
                fmt_stat(&r.seconds_to_target)
            );
        }
    }
    let epochs: Vec<usize> = reports
        .first()
        .map(|r| r.train_loss_at.iter().map(|(e, _)| *e).collect())
        .unwrap_or_default();
    if !epochs.is_empty() {
        let _ = writeln!(md, "\n## Training loss at fixed epochs\n");
        let header: Vec<String> = epochs.iter().map(|e| format!("epoch {e}")).collect();
        let _ = writeln!(md, "| variant | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(epochs.len()));
        for r in reports {
            let cells: Vec<String> = r.train_loss_at.iter().map(|(_, s)| fmt_stat(s)).collect();
            let _ = writeln!(md, "| {} | {} |", r.variant, cells.join(" | "));
        }
    }
    let failed: Vec<&(String, String)> = reports.iter().flat_map(|r| &r.failed).collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "\n## Failed runs\n");
        for (name, reason) in failed {
            let _ = writeln!(md, "- `{name}`: {reason}");
        }
    }
    let _ = writeln!(
        md,
        "\n## Plots\n\n![validation](validation.svg)\n\n![training loss](train_loss.svg)\n"
    );
    md
}
