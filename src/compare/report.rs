//! `report.md`, `report.json` and the plots of a sweep or comparison folder: every setting's
//! figures, each variant's best setting chosen on validation, the variants compared at their
//! best (against epochs, examples and seconds), one sensitivity plot per axis, and what has not
//! finished or could not be read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::aggregate::{aggregate_groups, CurvePoint, GroupReport, Include, Stat};
use super::group::{setting_text, short_key};
use super::plot::{write_plot, PlotSpec, Point, Series, Style};
use super::runs::{scan, Scan};
use super::select::{choose, rule, slice, Choice, Slice};
use crate::sweep::plan::{Plan, PLAN_FILE};

/// Files written by [`write_report`].
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub plots: Vec<PathBuf>,
    pub text: String,
}

/// A planned cell or a run that has not finished.
#[derive(Debug, Clone, Serialize)]
struct NotFinished {
    index: Option<usize>,
    folder: String,
    status: String,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    folder: String,
    /// Cells in plan.json, when there is one.
    planned: Option<usize>,
    runs: usize,
    finished: usize,
    in_progress: usize,
    metric: &'a str,
    rule: &'a str,
    axes: &'a [String],
    choices: &'a [Choice],
    /// Each variant at its chosen setting.
    variants: Vec<&'a GroupReport>,
    groups: &'a [GroupReport],
    sensitivity: &'a [Slice],
    not_finished: &'a [NotFinished],
    /// Every run left out (unreadable, records that are not one per epoch or disagree with
    /// the summary, a link to another folder), with the reason; the key keeps its old name.
    unreadable: Vec<Unreadable<'a>>,
}

#[derive(Serialize)]
struct Unreadable<'a> {
    folder: &'a str,
    reason: &'a str,
}

fn fmt_stat(s: &Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.3} ± {:.3}", s.mean, s.std),
        Some(s) => format!("{:.3}", s.mean),
        None => "–".to_string(),
    }
}

/// Large counts (examples) without decimals.
fn fmt_count(s: &Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.0} ± {:.0}", s.mean, s.std),
        Some(s) => format!("{:.0}", s.mean),
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

/// What has not finished: every planned cell without a finished run, or (without a plan)
/// every run that has not finished.
fn not_finished(scan: &Scan, plan: Option<&Plan>) -> Vec<NotFinished> {
    let unreadable = |folder: &str| {
        scan.unreadable
            .iter()
            .find(|(f, _)| f == folder)
            .map(|(_, r)| format!("left out: {r}"))
    };
    match plan {
        Some(plan) => plan
            .cells
            .iter()
            .filter_map(|c| {
                let run = scan.runs.iter().find(|r| r.name() == c.folder);
                let status = match run {
                    Some(r) if r.finished() => return None,
                    Some(r) => r.status(),
                    None => unreadable(&c.folder).unwrap_or_else(|| "not started".into()),
                };
                Some(NotFinished {
                    index: Some(c.index),
                    folder: c.folder.clone(),
                    status,
                })
            })
            .collect(),
        None => scan
            .runs
            .iter()
            .filter(|r| !r.finished())
            .map(|r| NotFinished {
                index: None,
                folder: r.name(),
                status: r.status(),
            })
            .collect(),
    }
}

fn points(curve: &[CurvePoint], x: fn(&CurvePoint) -> f64) -> Vec<Point> {
    curve
        .iter()
        .map(|p| Point {
            x: x(p),
            mean: p.mean,
            low: p.min,
            high: p.max,
        })
        .collect()
}

/// Reads every run below `dir` (and its plan.json, if any) and writes the report and plots.
pub fn write_report(
    dir: &Path,
    target: Option<f64>,
    loss_epochs: &[usize],
) -> Result<ReportFiles, String> {
    let scan = scan(dir).map_err(|e| format!("{}: cannot read the folder: {e}", dir.display()))?;
    let plan = if dir.join(PLAN_FILE).exists() {
        Some(Plan::read(dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    if scan.runs.is_empty() && plan.is_none() && scan.unreadable.is_empty() {
        return Err(format!(
            "{}: no runs found (each run is a folder with a run.json or, written before it existed, a config.toml)",
            dir.display()
        ));
    }
    let (target, loss_epochs) = figure_settings(&scan, plan.as_ref(), target, loss_epochs);
    let (groups, axes) = aggregate_groups(&scan.runs, target, &loss_epochs, Include::Finished);
    let choices = choose(&groups);
    let slices: Vec<Slice> = axes
        .iter()
        .filter_map(|k| slice(&groups, &choices, k))
        .collect();
    let missing = not_finished(&scan, plan.as_ref());
    let metric = groups
        .first()
        .map_or("validation error %", |r| r.metric.as_str())
        .to_string();
    let mut rule = rule(&metric);
    if scan
        .runs
        .iter()
        .any(|r| r.config.get("data.monitor").is_some_and(|m| m == "test"))
    {
        rule.push_str(
            " WARNING: runs here set data.monitor = \"test\": their validation figures are the \
             test set's, so this choice is made on test data and the figures at the chosen \
             settings are optimistic; sweep with a held-out validation set for a fair choice.",
        );
    }
    let best: Vec<&GroupReport> = choices
        .iter()
        .filter_map(|c| c.group.map(|i| &groups[i]))
        .collect();
    let doc = Doc {
        dir,
        scan: &scan,
        plan: plan.as_ref(),
        groups: &groups,
        axes: &axes,
        choices: &choices,
        best: &best,
        slices: &slices,
        missing: &missing,
        metric: &metric,
        rule: &rule,
    };
    let text = doc.markdown();
    let markdown_path = dir.join("report.md");
    std::fs::write(&markdown_path, &text)
        .map_err(|e| format!("{}: {e}", markdown_path.display()))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(&ReportJson {
        folder: dir.display().to_string(),
        planned: plan.as_ref().map(|p| p.cells.len()),
        runs: scan.runs.len(),
        finished: scan.runs.iter().filter(|r| r.finished()).count(),
        in_progress: scan.runs.iter().filter(|r| r.in_progress()).count(),
        metric: &metric,
        rule: &rule,
        axes: &axes,
        choices: &choices,
        variants: best.clone(),
        groups: &groups,
        sensitivity: &slices,
        not_finished: &missing,
        unreadable: scan
            .unreadable
            .iter()
            .map(|(folder, reason)| Unreadable { folder, reason })
            .collect(),
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    let plots = doc.plots()?;
    Ok(ReportFiles {
        markdown: markdown_path,
        json: json_path,
        plots,
        text,
    })
}

/// The target error and the epochs of the loss table: the given ones, else the first run's
/// `compare` settings (or the plan's first cell's).
pub fn figure_settings(
    scan: &Scan,
    plan: Option<&Plan>,
    target: Option<f64>,
    loss_epochs: &[usize],
) -> (Option<f64>, Vec<usize>) {
    let first = scan
        .runs
        .iter()
        .find_map(|r| {
            crate::preset::PresetFile::read_config(&r.dir.join(crate::sink::CONFIG_FILE)).ok()
        })
        .map(|f| f.preset)
        .or_else(|| plan.and_then(|p| p.cells.first()).map(|c| c.config.clone()));
    let target = target.or_else(|| first.as_ref().and_then(|c| c.compare.target_error));
    let loss_epochs: Vec<usize> = if loss_epochs.is_empty() {
        first.map(|c| c.compare.loss_at_epochs).unwrap_or_default()
    } else {
        loss_epochs.to_vec()
    };
    (target, loss_epochs)
}

/// `ltmlp report DIR`.
pub fn report_command(dir: &Path, target: Option<f64>) -> anyhow::Result<ExitCode> {
    let files = write_report(dir, target, &[]).map_err(anyhow::Error::msg)?;
    crate::say!("{}", files.text);
    crate::say!("report: {}", files.markdown.display());
    Ok(ExitCode::SUCCESS)
}

/// Everything the report is written from.
struct Doc<'a> {
    dir: &'a Path,
    scan: &'a Scan,
    plan: Option<&'a Plan>,
    groups: &'a [GroupReport],
    axes: &'a [String],
    choices: &'a [Choice],
    best: &'a [&'a GroupReport],
    slices: &'a [Slice],
    missing: &'a [NotFinished],
    metric: &'a str,
    rule: &'a str,
}

/// One learning-curve plot of the variants at their best.
struct CurvePlot {
    stem: &'static str,
    title: String,
    x_label: &'static str,
    /// The x of a curve point.
    x: fn(&CurvePoint) -> f64,
    /// Training loss (log y) instead of the validation metric.
    train: bool,
}

/// Plot file stem of an axis.
fn slice_stem(key: &str) -> String {
    format!("sensitivity-{key}")
}

impl Doc<'_> {
    fn markdown(&self) -> String {
        let mut md = String::new();
        self.summary(&mut md);
        self.choice_table(&mut md);
        self.best_table(&mut md);
        self.per_class(&mut md);
        self.time_to_target(&mut md);
        self.loss_at_epochs(&mut md);
        self.every_setting(&mut md);
        self.not_finished(&mut md);
        self.failed_runs(&mut md);
        self.left_out(&mut md);
        self.plot_links(&mut md);
        md
    }

    /// The title, what was found, and the axes.
    fn summary(&self, md: &mut String) {
        let runs = &self.scan.runs;
        let finished = runs.iter().filter(|r| r.finished()).count();
        let kind = if self.axes.is_empty() {
            "Comparison"
        } else {
            "Sweep"
        };
        let _ = writeln!(md, "# {kind}: {}\n", self.dir.display());
        let planned = self.plan.map_or(String::new(), |p| {
            format!(" of {} planned cells", p.cells.len())
        });
        let _ = writeln!(
            md,
            "{finished} runs finished{planned} ({} found, {} not finished, {} left out). \
             Mean ± sample std over seeds of finished runs; runs of one setting (everything \
             but the seed) are grouped.\n",
            runs.len(),
            self.missing.len(),
            self.scan.unreadable.len()
        );
        if !self.axes.is_empty() {
            let _ = writeln!(md, "Axes: {}.\n", self.axes.join(", "));
        }
    }

    /// The rule that chose each variant's setting, and what it chose.
    fn choice_table(&self, md: &mut String) {
        let metric = self.metric;
        let _ = writeln!(md, "## Choice of setting\n\n{}\n", self.rule);
        let _ = writeln!(
            md,
            "| variant | chosen setting | mean best {metric} | eligible settings |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        for c in self.choices {
            let setting = c.group.map_or("none eligible".into(), |i| {
                setting_text(&self.groups[i].setting, self.axes)
            });
            let value = c.value.map_or("–".into(), |v| format!("{v:.3}"));
            let _ = writeln!(
                md,
                "| {} | {setting} | {value} | {}/{} |",
                c.variant, c.eligible, c.settings
            );
        }
    }

    /// Each variant at its chosen setting.
    fn best_table(&self, md: &mut String) {
        let metric = self.metric;
        let _ = writeln!(md, "\n## Variants at their best setting\n");
        let _ = writeln!(md, "| variant | setting | runs | final {metric} | best {metric} | test at best | final train loss | collapsed at end |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for r in self.best {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.variant,
                setting_text(&r.setting, self.axes),
                r.counted,
                fmt_stat(&r.final_validation),
                fmt_stat(&r.best_validation),
                fmt_stat(&r.test_at_best),
                fmt_stat(&r.final_train_loss),
                fmt_percent(&r.collapsed_at_end),
            );
        }
    }

    /// How soon each variant reached the target, when one is set.
    fn time_to_target(&self, md: &mut String) {
        let Some(target) = self.best.iter().find_map(|r| r.target) else {
            return;
        };
        let metric = self.metric;
        let _ = writeln!(md, "\n### Time to {metric} ≤ {target}\n");
        let _ = writeln!(md, "| variant | reached | epochs | examples | seconds |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for r in self.best {
            let _ = writeln!(
                md,
                "| {} | {}/{} | {} | {} | {} |",
                r.variant,
                r.reached_target,
                r.counted,
                fmt_stat(&r.epochs_to_target),
                fmt_count(&r.examples_to_target),
                fmt_stat(&r.seconds_to_target)
            );
        }
    }

    /// The training loss at the epochs `[compare] loss_at_epochs` names, when it names some.
    fn loss_at_epochs(&self, md: &mut String) {
        let epochs: Vec<usize> = self
            .best
            .first()
            .map(|r| r.train_loss_at.iter().map(|(e, _)| *e).collect())
            .unwrap_or_default();
        if epochs.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n### Training loss at fixed epochs\n");
        let header: Vec<String> = epochs.iter().map(|e| format!("epoch {e}")).collect();
        let _ = writeln!(md, "| variant | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(epochs.len()));
        for r in self.best {
            let cells: Vec<String> = r.train_loss_at.iter().map(|(_, s)| fmt_stat(s)).collect();
            let _ = writeln!(md, "| {} | {} |", r.variant, cells.join(" | "));
        }
    }

    /// Every setting of a sweep, the chosen ones starred.
    fn every_setting(&self, md: &mut String) {
        if self.axes.is_empty() {
            return;
        }
        let metric = self.metric;
        let _ = writeln!(md, "\n## Every setting\n");
        let _ = writeln!(md, "| variant | setting | finished/runs | best {metric} | final {metric} | test at best | failed | chosen |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for (i, r) in self.groups.iter().enumerate() {
            let chosen = self.choices.iter().any(|c| c.group == Some(i));
            let _ = writeln!(
                md,
                "| {} | {} | {}/{} | {} | {} | {} | {} | {} |",
                r.variant,
                setting_text(&r.setting, self.axes),
                r.counted,
                r.runs,
                fmt_stat(&r.best_validation),
                fmt_stat(&r.final_validation),
                fmt_stat(&r.test_at_best),
                r.failed.len(),
                if chosen { "★" } else { "" }
            );
        }
    }

    /// Runs (or planned cells) that have not finished.
    fn not_finished(&self, md: &mut String) {
        if self.missing.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Not finished\n");
        for m in self.missing {
            let index = m.index.map_or(String::new(), |i| format!("cell {i} "));
            let _ = writeln!(md, "- {index}`{}`: {}", m.folder, m.status);
        }
    }

    /// Runs that failed, with why.
    fn failed_runs(&self, md: &mut String) {
        let failed: Vec<&(String, String)> = self.groups.iter().flat_map(|r| &r.failed).collect();
        if failed.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Failed runs\n");
        for (name, reason) in failed {
            let _ = writeln!(md, "- `{name}`: {reason}");
        }
    }

    /// Folders that could not be read as runs, with why.
    fn left_out(&self, md: &mut String) {
        if self.scan.unreadable.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Runs left out\n");
        for (name, reason) in &self.scan.unreadable {
            let _ = writeln!(md, "- `{name}`: {reason}");
        }
    }

    /// Links to the plot files.
    fn plot_links(&self, md: &mut String) {
        let metric = self.metric;
        let _ = writeln!(md, "\n## Plots\n");
        let _ = writeln!(
            md,
            "Each variant at its chosen setting (mean, min–max over seeds):\n"
        );
        for (stem, what) in [
            ("validation", "against epochs"),
            ("validation_examples", "against examples seen"),
            ("validation_seconds", "against wall seconds"),
            ("train_loss", "training loss"),
        ] {
            let _ = writeln!(md, "![{what}]({stem}.svg)\n");
        }
        for s in self.slices {
            let _ = writeln!(
                md,
                "![best {metric} against {}]({}.svg)\n",
                s.key,
                slice_stem(&s.key)
            );
        }
    }

    /// The per-class test error of each variant at its chosen setting (classifiers).
    fn per_class(&self, md: &mut String) {
        let Some(labels) = self
            .best
            .iter()
            .map(|r| &r.per_class_test_at_best)
            .find(|p| !p.is_empty())
        else {
            return;
        };
        let _ = writeln!(md, "\n### Test error % of each class at best\n");
        let _ = writeln!(
            md,
            "At the evaluation of `test at best`, mean ± std over seeds; a row whose classes \
             differ from the first one's is left blank.\n"
        );
        let header: Vec<String> = labels.iter().map(|(l, _)| format!("class {l}")).collect();
        let _ = writeln!(md, "| variant | {} |", header.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(labels.len()));
        for r in self.best {
            let same = r.per_class_test_at_best.len() == labels.len()
                && r.per_class_test_at_best
                    .iter()
                    .zip(labels)
                    .all(|(a, b)| a.0 == b.0);
            let cells: Vec<String> = if same {
                r.per_class_test_at_best
                    .iter()
                    .map(|(_, s)| fmt_stat(s))
                    .collect()
            } else {
                vec!["".into(); labels.len()]
            };
            let _ = writeln!(md, "| {} | {} |", r.variant, cells.join(" | "));
        }
    }

    fn plots(&self) -> Result<Vec<PathBuf>, String> {
        let metric = self.metric;
        let mut files = Vec::new();
        let curves = [
            CurvePlot {
                stem: "validation",
                title: format!("{metric} at each variant's best setting"),
                x_label: "epoch",
                x: |p| p.epoch as f64,
                train: false,
            },
            CurvePlot {
                stem: "validation_examples",
                title: format!("{metric} against examples seen"),
                x_label: "examples seen",
                x: |p| p.examples,
                train: false,
            },
            CurvePlot {
                stem: "validation_seconds",
                title: format!("{metric} against wall time"),
                x_label: "wall seconds",
                x: |p| p.seconds,
                train: false,
            },
            CurvePlot {
                stem: "train_loss",
                title: "training loss at each variant's best setting".into(),
                x_label: "epoch",
                x: |p| p.epoch as f64,
                train: true,
            },
        ];
        for CurvePlot {
            stem,
            title,
            x_label,
            x,
            train,
        } in curves
        {
            let spec = PlotSpec {
                title: &title,
                x_label,
                y_label: if train { "training loss" } else { metric },
                log_x: false,
                log_y: train,
                categories: None,
                style: Style::Band,
                series: self
                    .best
                    .iter()
                    .map(|r| Series {
                        label: r.label.clone(),
                        points: points(
                            if train {
                                &r.train_loss_curve
                            } else {
                                &r.validation_curve
                            },
                            x,
                        ),
                    })
                    .collect(),
            };
            files.extend(write_plot(self.dir, stem, &spec)?);
        }
        for s in self.slices {
            let position = |v: &str| -> f64 {
                if s.numeric {
                    v.parse().unwrap_or(f64::NAN)
                } else {
                    s.values
                        .iter()
                        .position(|x| x == v)
                        .map_or(f64::NAN, |i| i as f64)
                }
            };
            let title = format!(
                "best {metric} against {} (others at each variant's choice)",
                short_key(&s.key, self.axes)
            );
            let spec = PlotSpec {
                title: &title,
                x_label: &s.key,
                y_label: metric,
                log_x: s.log_x,
                log_y: false,
                categories: (!s.numeric).then(|| s.values.clone()),
                style: Style::Bars,
                series: s
                    .lines
                    .iter()
                    .map(|l| Series {
                        label: l.variant.clone(),
                        points: l
                            .points
                            .iter()
                            .map(|(v, st)| Point {
                                x: position(v),
                                mean: st.mean,
                                low: st.mean - st.std,
                                high: st.mean + st.std,
                            })
                            .collect(),
                    })
                    .collect(),
            };
            files.extend(write_plot(self.dir, &slice_stem(&s.key), &spec)?);
        }
        Ok(files)
    }
}
