//! Comparison reports: aggregates checked against numbers worked out by hand on generated run
//! folders (finished, in progress with a torn last line, failed), the plot files, and a real
//! `ltmlp compare` in which one variant diverges without stopping the others.

use std::path::Path;
use std::process::Command;

use ltmlp::compare::runs::FAILED_FILE;
use ltmlp::compare::write_report;
use ltmlp::confusion::{Confusion, EpochConfusion};
use ltmlp::net::{Flags, UnitKind};
use ltmlp::preset::PresetFile;
use ltmlp::stats::{LayerStats, Range};
use ltmlp::train::{EpochMetrics, RunState, Summary};
use serde_json::Value;

fn layer(collapsed: f64) -> LayerStats {
    LayerStats {
        layer: 1,
        kind: UnitKind::Tanh,
        units: 10,
        mean_out: 0.0,
        mean_slope: 0.0,
        var_out: 0.1,
        std_pre: 1.0,
        saturated_fraction: 0.0,
        collapsed_fraction: collapsed,
        gamma_capped_fraction: 0.0,
        alpha: Range::default(),
        beta: Range::default(),
        gamma: Range::default(),
        per_unit: Default::default(),
    }
}

/// (validation error, test error, train loss, collapsed fraction) per epoch.
fn metrics(rows: &[(f64, f64, f64, f64)]) -> Vec<EpochMetrics> {
    rows.iter()
        .enumerate()
        .map(|(i, &(valid, test, train, collapsed))| EpochMetrics {
            epoch: i + 1,
            iteration: 10 * (i as u64 + 1),
            elapsed_seconds: 2.0 * (i as f64 + 1.0),
            train_loss: train,
            train_error: Some(0.0),
            validation_loss: valid / 10.0,
            validation_error: Some(valid),
            test_loss: test / 10.0,
            test_error: Some(test),
            learning_rate: 0.1,
            momentum: 0.9,
            examples_per_second: 1000.0,
            flags: Flags::NONE,
            layers: vec![layer(collapsed)],
            transform_events: vec![],
            r2: None,
            wall: None,
            confusion: Some(Box::new(confusion_for(test))),
        })
        .collect()
}

/// Test examples of the two classes (labels 3 and 8) in [`confusion_for`].
const CLASS_EXAMPLES: [usize; 2] = [250, 750];

/// A two-class test confusion matrix with `test` % errors over 1,000 examples, split unevenly
/// between the classes (validation: the same matrix).
fn confusion_for(test: f64) -> EpochConfusion {
    let errors = (test * 10.0).round() as usize;
    let first = (errors / 2).min(CLASS_EXAMPLES[0]);
    let second = errors - first;
    let matrix = Confusion {
        counts: vec![
            vec![CLASS_EXAMPLES[0] - first, first],
            vec![second, CLASS_EXAMPLES[1] - second],
        ],
    };
    assert_eq!(matrix.error_percent(), test);
    EpochConfusion {
        labels: vec![3, 8],
        validation: matrix.clone(),
        test: matrix,
    }
}

fn write_run(
    root: &Path,
    variant: &str,
    seed: u64,
    rows: &[(f64, f64, f64, f64)],
    end: Option<RunState>,
    torn: bool,
) {
    write_run_at(root, variant, None, seed, rows, end, torn)
}

/// A run folder at a learning rate (None: the variant's own), named like a sweep cell.
fn write_run_at(
    root: &Path,
    variant: &str,
    rate: Option<f64>,
    seed: u64,
    rows: &[(f64, f64, f64, f64)],
    end: Option<RunState>,
    torn: bool,
) {
    let name = match rate {
        Some(r) => format!("{variant}-learning_rate={r}-seed{seed}"),
        None => format!("{variant}-seed{seed}"),
    };
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut overrides = vec![
        format!("train.seed={seed}"),
        "compare.target_error=5.0".into(),
        "compare.loss_at_epochs=[1, 3]".into(),
    ];
    if let Some(r) = rate {
        overrides.push(format!("train.learning_rate={r}"));
    }
    let resolved = PresetFile::builtin_default()
        .unwrap()
        .resolve(Some(variant), &overrides)
        .unwrap();
    std::fs::write(dir.join("config.toml"), resolved.to_toml()).unwrap();
    let mut jsonl: String = metrics(rows)
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    if torn {
        jsonl.push_str("{\"epoch\": 9, \"iteration\"");
    }
    std::fs::write(dir.join("metrics.jsonl"), jsonl).unwrap();
    if let Some(state) = end {
        let summary = Summary {
            preset: "default".into(),
            variant: variant.into(),
            monitor: Default::default(),
            state,
            reason: (state == RunState::Diverged).then(|| "diverged at iteration 7".into()),
            epochs_completed: rows.len(),
            iterations: 0,
            wall_seconds: 0.0,
            train_seconds: 0.0,
            reestimate_seconds: 0.0,
            examples_per_second: 0.0,
            final_train_loss: None,
            final_validation_loss: None,
            final_validation_error: None,
            final_test_loss: None,
            final_test_error: None,
            best_epoch: None,
            best_validation_loss: None,
            best_validation_error: None,
            test_loss_at_best: None,
            test_error_at_best: None,
            out_dir: None,
            steering_actions: 0,
            wall: None,
            per_class_error: None,
        };
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string(&summary).unwrap(),
        )
        .unwrap();
    }
}

/// The (only) setting of a variant in a report.
fn variant<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == name)
        .unwrap_or_else(|| panic!("no group of {name}"))
}

/// The choice of a variant in a report.
fn choice<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["choices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["variant"] == name)
        .unwrap_or_else(|| panic!("no choice for {name}"))
}

fn close(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(
        (got - expected).abs() < 1e-9,
        "got {got}, expected {expected}"
    );
}

#[test]
fn aggregates_match_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // ab: two finished seeds.
    write_run(
        root,
        "ab",
        1,
        &[
            (8.0, 9.0, 0.5, 0.0),
            (5.0, 6.0, 0.3, 0.0),
            (4.0, 5.0, 0.2, 0.1),
        ],
        Some(RunState::Finished),
        false,
    );
    write_run(
        root,
        "ab",
        2,
        &[
            (7.0, 8.0, 0.6, 0.0),
            (6.0, 7.0, 0.4, 0.0),
            (6.5, 7.5, 0.3, 0.3),
        ],
        Some(RunState::Finished),
        false,
    );
    // none: one run still in progress, its last line torn by a kill.
    write_run(
        root,
        "none",
        1,
        &[(9.0, 10.0, 0.7, 0.0), (8.0, 9.0, 0.6, 0.0)],
        None,
        true,
    );
    // abg: one diverged run (left out of the statistics) and one that crashed.
    write_run(
        root,
        "abg",
        1,
        &[(6.0, 7.0, 0.4, 0.5)],
        Some(RunState::Diverged),
        false,
    );
    write_run(
        root,
        "abg",
        2,
        &[(4.5, 5.5, 0.3, 0.0), (3.0, 4.0, 0.2, 0.2)],
        Some(RunState::Finished),
        false,
    );
    write_run(root, "abg", 3, &[], None, false);
    std::fs::write(
        root.join("abg-seed3").join(FAILED_FILE),
        "could not start\n",
    )
    .unwrap();

    let files = write_report(root, None, &[]).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(report["runs"], 6);
    assert_eq!(report["in_progress"], 1);

    let ab = variant(&report, "ab");
    // final: 4.0 and 6.5 → mean 5.25, sample std |4.0 − 6.5|/√2.
    close(&ab["final_validation"]["mean"], 5.25);
    close(&ab["final_validation"]["std"], 2.5 / 2f64.sqrt());
    // best: 4.0 (epoch 3) and 6.0 (epoch 2); test there: 5.0 and 7.0.
    close(&ab["best_validation"]["mean"], 5.0);
    close(&ab["test_at_best"]["mean"], 6.0);
    close(&ab["test_at_best"]["std"], 2f64.sqrt());
    // target 5.0: seed 1 at epoch 2 (4 s); seed 2 never.
    assert_eq!(ab["reached_target"], 1);
    close(&ab["epochs_to_target"]["mean"], 2.0);
    close(&ab["seconds_to_target"]["mean"], 4.0);
    // training loss at epochs 1 and 3: (0.5 + 0.6)/2 and (0.2 + 0.3)/2.
    close(&ab["train_loss_at"][0][1]["mean"], 0.55);
    close(&ab["train_loss_at"][1][1]["mean"], 0.25);
    // collapsed at the end: 0.1 and 0.3.
    close(&ab["collapsed_at_end"]["mean"], 0.2);
    // curve: epoch 2 mean of 5.0 and 6.0, band 5.0..6.0.
    let point = &ab["validation_curve"][1];
    close(&point["mean"], 5.5);
    close(&point["min"], 5.0);
    close(&point["max"], 6.0);

    // none: its only run is still going, so nothing is counted yet and it is listed.
    let none = variant(&report, "none");
    assert_eq!(none["in_progress"], 1);
    assert_eq!(none["counted"], 0);
    assert!(none["final_validation"].is_null());
    let missing = report["not_finished"].as_array().unwrap();
    assert!(
        missing.iter().any(|m| m["folder"] == "none-seed1"
            && m["status"].as_str().unwrap().contains("after epoch 2 of")),
        "{missing:?}"
    );
    // none has no finished run, so no setting to show at its best; abg's only setting has
    // failed runs but is still its best (it is chosen among the settings with fewest failures).
    assert_eq!(choice(&report, "ab")["label"], "ab");
    assert_eq!(choice(&report, "abg")["label"], "abg");
    assert!(choice(&report, "none")["group"].is_null());
    assert_eq!(report["variants"].as_array().unwrap().len(), 2);

    let abg = variant(&report, "abg");
    assert_eq!(abg["runs"], 3);
    assert_eq!(abg["failed"].as_array().unwrap().len(), 2);
    close(&abg["final_validation"]["mean"], 3.0);
    assert_eq!(abg["final_validation"]["n"], 1);

    // Per-class test errors at best, averaged over seeds, weighted by the classes' test
    // examples, give the mean test error at best.
    let per_class = ab["per_class_test_at_best"].as_array().unwrap();
    assert_eq!(per_class.len(), 2);
    assert_eq!(per_class[0][0], 3);
    assert_eq!(per_class[1][0], 8);
    let weighted: f64 = per_class
        .iter()
        .zip(CLASS_EXAMPLES)
        .map(|(c, n)| c[1]["mean"].as_f64().unwrap() * n as f64)
        .sum::<f64>()
        / CLASS_EXAMPLES.iter().sum::<usize>() as f64;
    close(&ab["test_at_best"]["mean"], weighted);
    // ab's best evaluations have 50 and 70 errors: 25 and 35 in the first class (of 250).
    close(&per_class[0][1]["mean"], 12.0);
    assert_eq!(per_class[0][1]["n"], 2);

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("### Test error % of each class at best"),
        "{md}"
    );
    assert!(md.contains("| variant | class 3 | class 8 |"), "{md}");
    assert!(
        md.contains("| ab | 12.000 ± 2.828 | 4.000 ± 0.943 |"),
        "{md}"
    );
    assert!(md.contains("| ab | – | 2 | 5.250 ± 1.768 |"), "{md}");
    assert!(md.contains("Test figures are never used to choose"), "{md}");
    assert!(md.contains("`abg-seed1`: diverged at iteration 7"), "{md}");
    assert!(md.contains("`abg-seed3`: could not start"), "{md}");
    for plot in &files.plots {
        let bytes = std::fs::read(plot).unwrap();
        if plot.extension().unwrap() == "png" {
            assert_eq!(&bytes[..4], b"\x89PNG", "{}", plot.display());
        } else {
            let svg = String::from_utf8(bytes).unwrap();
            assert!(
                svg.contains("<svg") && svg.contains("abg"),
                "{}",
                plot.display()
            );
        }
    }
    assert_eq!(files.plots.len(), 8);
}

#[test]
fn compare_runs_every_variant_and_isolates_a_diverging_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let preset = dir.path().join("small.toml");
    std::fs::write(
        &preset,
        r#"name = "small"
[data]
train_limit = 1500
validation_size = 500
test_limit = 300
[model]
task = "classify"
hidden = [16]
[train]
epochs = 2
batch_size = 50
learning_rate = 0.05
[compare]
target_error = 30.0
[variants.abg]
train.learning_rate = 1e37
"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args([
            "compare",
            preset.to_str().unwrap(),
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("2 of 6 runs did not finish"), "{stderr}");
    for name in ["none-seed1", "none-seed2", "ab-seed1", "ab-seed2"] {
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(name).join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["state"], "finished", "{name}");
        assert_eq!(summary["epochs_completed"], 2, "{name}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        variant(&report, "abg")["failed"].as_array().unwrap().len(),
        2
    );
    assert_eq!(variant(&report, "ab")["final_validation"]["n"], 2);
    for f in [
        "report.md",
        "plan.json",
        "validation.svg",
        "validation_seconds.png",
        "validation.png",
        "train_loss.svg",
        "train_loss.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn the_comparison_view_reads_the_folder_and_draws_every_variant() {
    let dir = tempfile::tempdir().unwrap();
    write_run(
        dir.path(),
        "none",
        1,
        &[(9.0, 10.0, 0.7, 0.0), (8.0, 9.0, 0.6, 0.0)],
        Some(RunState::Finished),
        false,
    );
    write_run(dir.path(), "ab", 1, &[(7.0, 8.0, 0.5, 0.0)], None, true);
    let mut state = ltmlp::tui::compare::CompareState::default();
    state.refresh(dir.path());
    assert_eq!((state.runs, state.in_progress), (2, 1));
    let names: Vec<&str> = state.reports.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(names, ["none", "ab"]);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|f| ltmlp::tui::compare::draw(f, &state))
        .unwrap();
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(
        screen.contains("1 of 2 runs finished, 1 in progress"),
        "{screen}"
    );
    assert!(
        screen.contains("8.000") && screen.contains("7.000"),
        "latest figures: {screen}"
    );
}

/// Two evaluations whose best validation is `valid` with `test` there.
fn best_at(valid: f64, test: f64) -> [(f64, f64, f64, f64); 2] {
    [(valid + 2.0, test + 2.0, 0.5, 0.0), (valid, test, 0.3, 0.0)]
}

#[test]
fn each_variant_gets_its_best_setting_on_validation_never_on_test() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let done = Some(RunState::Finished);
    // none: 0.01 has the best test error but not the best validation error; 0.02 has the
    // best validation mean (5.5); 0.04 is lower still on its finished seed, but its other
    // seed diverged, and other settings have no failed run.
    for (seed, v) in [(1, 6.0), (2, 7.0)] {
        write_run_at(
            root,
            "none",
            Some(0.01),
            seed,
            &best_at(v, 1.0),
            done,
            false,
        );
    }
    for (seed, v) in [(1, 5.0), (2, 6.0)] {
        write_run_at(
            root,
            "none",
            Some(0.02),
            seed,
            &best_at(v, 9.0),
            done,
            false,
        );
    }
    write_run_at(root, "none", Some(0.04), 1, &best_at(2.0, 2.0), done, false);
    write_run_at(
        root,
        "none",
        Some(0.04),
        2,
        &best_at(50.0, 50.0),
        Some(RunState::Diverged),
        false,
    );
    // ab: 0.1 and 0.2 tie on validation (4.0); the first listed (the smaller rate) wins.
    for rate in [0.2, 0.1] {
        for seed in [1, 2] {
            write_run_at(
                root,
                "ab",
                Some(rate),
                seed,
                &best_at(4.0, 5.0 - rate),
                done,
                false,
            );
        }
    }
    // A folder whose config cannot be read is listed, not dropped.
    std::fs::create_dir_all(root.join("broken")).unwrap();
    std::fs::write(root.join("broken").join("config.toml"), "name = \n").unwrap();

    let files = write_report(root, None, &[]).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(report["axes"], serde_json::json!(["train.learning_rate"]));
    let none = choice(&report, "none");
    assert_eq!(none["label"], "none learning_rate=0.02", "{none}");
    close(&none["value"], 5.5);
    assert_eq!(none["eligible"], 2);
    assert_eq!(none["settings"], 3);
    let ab = choice(&report, "ab");
    assert_eq!(ab["label"], "ab learning_rate=0.1", "{ab}");
    close(&ab["value"], 4.0);
    // The variants at their best are the chosen groups, with their own test figures.
    let best: Vec<&Value> = report["variants"].as_array().unwrap().iter().collect();
    assert_eq!(best.len(), 2);
    close(&best[0]["test_at_best"]["mean"], 9.0);
    // Sensitivity along the rate: per variant, its values in order, on a log axis.
    let slice = &report["sensitivity"][0];
    assert_eq!(slice["key"], "train.learning_rate");
    assert_eq!(slice["log_x"], true);
    let line = |v: &str| {
        slice["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["variant"] == v)
            .unwrap()["points"]
            .clone()
    };
    let none_line = line("none");
    let xs: Vec<&str> = none_line
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(xs, ["0.01", "0.02", "0.04"]);
    close(&none_line[1][1]["mean"], 5.5);
    close(&none_line[2][1]["mean"], 2.0);
    assert_eq!(none_line[2][1]["n"], 1);
    let unreadable = report["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0]["folder"], "broken");
    assert!(
        unreadable[0]["reason"]
            .as_str()
            .unwrap()
            .contains("config.toml"),
        "{unreadable:?}"
    );
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        md.contains("| none | learning_rate=0.02 | 5.500 | 2/3 |"),
        "{md}"
    );
    assert!(md.contains("`broken`"), "{md}");
    assert!(
        files
            .plots
            .iter()
            .any(|p| p.ends_with("sensitivity-train.learning_rate.svg")),
        "{:?}",
        files.plots
    );
}

#[test]
fn the_report_picks_the_best_evaluation_by_the_runs_own_rule() {
    // Two evaluations tie on validation error (4.0); the later has the lower validation loss,
    // so it is the run's best (as its summary and early stopping say), and the test error at
    // the best is the later one's (3.0), not the earlier one's (6.0).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_run(
        root,
        "ab",
        1,
        &[(4.0, 6.0, 0.5, 0.0), (4.0, 3.0, 0.4, 0.0)],
        Some(RunState::Finished),
        false,
    );
    let run = root.join("ab-seed1");
    let mut rows = metrics(&[(4.0, 6.0, 0.5, 0.0), (4.0, 3.0, 0.4, 0.0)]);
    rows[1].validation_loss = 0.1;
    let jsonl: String = rows
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    std::fs::write(run.join("metrics.jsonl"), jsonl).unwrap();

    let files = write_report(root, None, &[]).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    let ab = variant(&report, "ab");
    close(&ab["best_validation"]["mean"], 4.0);
    close(&ab["test_at_best"]["mean"], 3.0);
}
