//! `ltmlp report DIR --csv` on a small sweep: `runs.csv` holds a row per run and evaluation
//! equal to each run's metrics.jsonl with its settings as columns, and `settings.csv` a row
//! per setting equal to report.json's figures over the seeds.

mod cli_common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use cli_common::{text, SMALL};
use serde_json::Value;

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// The table's rows as column name → value.
fn table(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn the_tables_hold_every_evaluation_and_the_reports_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    let mut args = vec![
        "sweep",
        "presets/default.toml",
        "--variants",
        "ab",
        "--grid",
        "train.learning_rate=0.05,0.1",
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    let out = ltmlp(&args);
    assert!(out.status.success(), "{}", text(&out));
    let out = ltmlp(&["report", dir.to_str().unwrap(), "--csv"]);
    assert!(out.status.success(), "{}", text(&out));

    let runs = table(&dir.join("runs.csv"));
    let mut evaluations = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let run = entry.unwrap().path();
        let Ok(metrics) = std::fs::read_to_string(run.join("metrics.jsonl")) else {
            continue;
        };
        let name = run.file_name().unwrap().to_string_lossy().into_owned();
        let rows: Vec<_> = runs.iter().filter(|r| r["run"] == name).collect();
        let records: Vec<Value> = metrics
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), records.len(), "{name}");
        let rate = if name.contains("0.05") { "0.05" } else { "0.1" };
        for (row, record) in rows.iter().zip(&records) {
            assert_eq!(row["train.learning_rate"], rate);
            assert_eq!(row["status"], "finished");
            for column in ["epoch", "validation_error", "train_loss", "test_error"] {
                let got: f64 = row[column].parse().unwrap();
                assert_eq!(got, record[column].as_f64().unwrap(), "{name} {column}");
            }
        }
        evaluations += records.len();
    }
    assert_eq!(runs.len(), evaluations);
    assert_eq!(evaluations, 4 * 3);

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let settings = table(&dir.join("settings.csv"));
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(settings.len(), groups.len());
    assert_eq!(settings.len(), 2);
    for (row, group) in settings.iter().zip(groups) {
        assert_eq!(row["setting"], group["label"].as_str().unwrap());
        for figure in ["final_validation", "best_validation", "test_at_best"] {
            for part in ["mean", "std"] {
                let got: f64 = row[&format!("{figure}_{part}")].parse().unwrap();
                assert_eq!(
                    got,
                    group[figure][part].as_f64().unwrap(),
                    "{figure}_{part}"
                );
            }
            assert_eq!(row[&format!("{figure}_n")], "2");
        }
    }
}
