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
