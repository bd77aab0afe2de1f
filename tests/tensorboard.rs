//! `ltmlp export-tb` end to end: a 3-epoch run exported and read back with TensorBoard's own
//! `EventAccumulator` (tests/fixtures/read_tb.py) against its metrics.jsonl, summary.json,
//! config.toml, units.jsonl and actions.jsonl; an export is never written over; a damaged
//! metrics line is named. The Python check runs with `$LTMLP_PYTHON` (else `python3`) and is
//! skipped, saying so, where `import tensorboard` fails.

mod cli_common;

use std::path::Path;
use std::process::{Command, Output};

use cli_common::{text, SMALL};

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn train_small(dir: &Path) {
    let mut args = vec!["run", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(SMALL);
    let out = ltmlp(&args);
    assert!(out.status.success(), "{}", text(&out));
}

fn append_action(dir: &Path) {
    use std::io::Write;
    let line = r#"{"steer":{"iteration":7,"command":"reestimate","ok":true,"message":"re-estimated α β"}}"#;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("actions.jsonl"))
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

fn event_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("tfevents"))
        .collect()
}

#[test]
fn an_exported_run_reads_back_equal_in_tensorboard() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("small");
    train_small(&run);
    append_action(&run);
    let logdir = tmp.path().join("tb");
    let out = ltmlp(&[
        "export-tb",
        run.to_str().unwrap(),
        "--out",
        logdir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(event_files(&logdir.join("small")).len(), 1);
    assert_eq!(
        event_files(&logdir).len(),
        1,
        "the experiment record at the root"
    );

    // A second export into the same folder is refused and leaves the first as it was.
    let before = std::fs::read(&event_files(&logdir.join("small"))[0]).unwrap();
    let again = ltmlp(&[
        "export-tb",
        run.to_str().unwrap(),
        "--out",
        logdir.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("holds an export already"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read(&event_files(&logdir.join("small"))[0]).unwrap(),
        before
    );

    let python = std::env::var("LTMLP_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!(
            "skipped the TensorBoard read-back: {python} cannot import tensorboard \
             (set LTMLP_PYTHON to a Python with `pip install tensorboard`; .ci/run does)"
        );
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/read_tb.py");
    let check = Command::new(&python)
        .arg(script)
        .arg(&logdir)
        .arg("small")
        .arg(&run)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let said = String::from_utf8_lossy(&check.stdout);
    // Every hidden layer's per-unit statistics of every evaluation, and the one action.
    let histograms: usize = said
        .split(" histograms")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(histograms >= 3, "{said}");
    assert!(said.contains(" histograms, 1 actions"), "{said}");
    println!("{said}");
}

#[test]
fn a_sweep_folder_exports_one_sub_folder_per_run_and_a_damaged_line_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep");
    train_small(&sweep.join("cells/a-seed1"));
    train_small(&sweep.join("cells/b-seed1"));
    let logdir = tmp.path().join("tb");
    let out = ltmlp(&[
        "export-tb",
        sweep.to_str().unwrap(),
        "--out",
        logdir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for cell in ["a-seed1", "b-seed1"] {
        assert_eq!(event_files(&logdir.join("sweep/cells").join(cell)).len(), 1);
    }
    // A run folder written before units.jsonl existed exports without histograms, and says so.
    std::fs::remove_file(sweep.join("cells/a-seed1/units.jsonl")).unwrap();
    let older = ltmlp(&[
        "export-tb",
        sweep.join("cells/a-seed1").to_str().unwrap(),
        "--out",
        tmp.path().join("tb-older").to_str().unwrap(),
    ]);
    assert!(older.status.success(), "{}", text(&older));
    assert!(String::from_utf8_lossy(&older.stdout).contains("no units.jsonl"));

    let metrics = sweep.join("cells/b-seed1/metrics.jsonl");
    let mut lines = std::fs::read_to_string(&metrics).unwrap();
    lines.push_str("{\"epoch\": 4, \"train_loss\": \n");
    std::fs::write(&metrics, lines).unwrap();
    let damaged = ltmlp(&[
        "export-tb",
        sweep.to_str().unwrap(),
        "--out",
        tmp.path().join("tb2").to_str().unwrap(),
    ]);
    assert!(!damaged.status.success());
    let said = String::from_utf8_lossy(&damaged.stderr);
    assert!(said.contains("metrics.jsonl:4: not a record"), "{said}");
}

/// Every summary value of an event file as (tag, step, encoded value), sorted: what the file
/// says, apart from wall times and the order the records came in.
fn summary_values(file: &Path) -> Vec<(String, i64, Vec<u8>)> {
    use ltmlp::tensorboard::proto::What;
    use prost::Message;
    let bytes = std::fs::read(file).unwrap();
    let mut out: Vec<(String, i64, Vec<u8>)> = ltmlp::tensorboard::writer::records(&bytes)
        .into_iter()
        .filter_map(|(_, event)| match event.what {
            Some(What::Summary(summary)) => Some((event.step, summary)),
            _ => None,
        })
        .flat_map(|(step, summary)| {
            summary.value.into_iter().map(move |mut value| {
                // The HParams session's times are wall times too.
                if value.tag.starts_with("_hparams_/") {
                    value.metadata = None;
                }
                (value.tag.clone(), step, value.encode_to_vec())
            })
        })
        .collect();
    out.sort();
    out
}

/// Reads `dir`'s own event file back with TensorBoard against its files (read_tb.py --live);
/// `None` (said) where tensorboard cannot be imported.
fn read_back_live(dir: &Path) -> Option<String> {
    let python = std::env::var("LTMLP_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!(
            "skipped the TensorBoard read-back: {python} cannot import tensorboard \
             (set LTMLP_PYTHON to a Python with `pip install tensorboard`; .ci/run does)"
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/read_tb.py");
    let check = Command::new(&python)
        .arg(script)
        .arg(dir.parent().unwrap())
        .arg(dir.file_name().unwrap())
        .arg(dir)
        .arg("--live")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    Some(String::from_utf8_lossy(&check.stdout).into_owned())
}

fn train_small_live(dir: &Path, extra: &[&str], fault: Option<&str>) -> Output {
    let mut args = vec!["run", "--out", dir.to_str().unwrap(), "--tensorboard"];
    args.extend_from_slice(extra);
    args.extend_from_slice(SMALL);
    let mut command = Command::new(env!("CARGO_BIN_EXE_ltmlp"));
    command.args(&args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(fault) = fault {
        command.env("LTMLP_FAULT", fault);
    }
    command.output().expect("the binary runs")
}

#[test]
fn a_live_run_writes_in_its_folder_what_export_tb_makes_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("live");
    let out = train_small_live(&run, &[], None);
    assert!(out.status.success(), "{}", text(&out));
    let live = event_files(&run);
    assert_eq!(live.len(), 1, "one event file in the run folder");
    // An output option: the experiment's config.toml does not mention it.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(!config.contains("tensorboard"), "{config}");

    let logdir = tmp.path().join("tb");
    let out = ltmlp(&[
        "export-tb",
        run.to_str().unwrap(),
        "--out",
        logdir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let exported = summary_values(&event_files(&logdir.join("live"))[0]);
    let written = summary_values(&live[0]);
    assert!(written.len() > 90, "{} values", written.len());
    assert_eq!(written, exported, "the live file and the export differ");

    if let Some(said) = read_back_live(&run) {
        assert!(said.contains(" histograms"), "{said}");
        println!("{said}");
    }
}

#[test]
fn a_killed_and_resumed_run_holds_every_step_once_in_its_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("killed");
    // Killed (as by kill -9) in the middle of epoch 2's event records, after its metrics and
    // before its checkpoint: the checkpoint is epoch 1's.
    let out = train_small_live(&run, &["--checkpoint-every", "1"], Some("crash:75"));
    assert!(!out.status.success(), "{}", text(&out));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        2,
        "the crash came after epoch 2's metrics"
    );
    let before = summary_values(&event_files(&run)[0]);
    assert!(
        before
            .iter()
            .any(|(tag, step, _)| tag.starts_with("metrics/") && *step == 2),
        "the crash came after some of epoch 2's events"
    );

    let resumed = ltmlp(&["run", "--resume", run.to_str().unwrap()]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(event_files(&run).len(), 1, "the same file goes on");
    assert!(run.join("tensorboard.after-checkpoint").is_file());
    let values = summary_values(&event_files(&run)[0]);
    let mut seen = std::collections::BTreeMap::new();
    for (tag, step, _) in &values {
        *seen.entry((tag.clone(), *step)).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    let steps: Vec<i64> = values
        .iter()
        .filter(|(tag, _, _)| tag == "metrics/train_loss")
        .map(|(_, step, _)| *step)
        .collect();
    assert_eq!(steps, [1, 2, 3]);

    if let Some(said) = read_back_live(&run) {
        println!("{said}");
    }
}
