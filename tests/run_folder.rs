//! The run folder as a format: `run.json` is written at the start and completed at the end,
//! `units.jsonl` keeps every evaluation's per-unit statistics (cut back on a resume like the
//! metrics), and `ls`, `watch` and the reports read a folder from its `run.json`, from any
//! producer, and still read folders written before it existed.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SMALL: &[&str] = &[
    "--set",
    "model.hidden=[16]",
    "--set",
    "data.train_limit=1500",
    "--set",
    "train.train_eval_size=500",
    "--set",
    "stats.probe_size=100",
];

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn small_run(dir: &Path, epochs: &str) -> Output {
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    let epochs = format!("train.epochs={epochs}");
    args.extend_from_slice(&["--set", &epochs]);
    ltmlp(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The `epoch` of every line of a JSON-lines file.
fn epochs_of(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn run_json_describes_the_run_and_units_jsonl_keeps_every_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let out = small_run(dir.path(), "3");
    assert!(out.status.success(), "{}", text(&out));
    let header = json(&dir.path().join("run.json"));
    assert_eq!(header["format"], 1);
    assert_eq!(header["producer"]["name"], "ltmlp");
    assert_eq!(header["producer"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(header["weights"], 784 * 16 + 16 * 10 + 784 * 10);
    // 1500 examples, 1000 of them held out for validation, in minibatches of 100.
    assert_eq!(header["iterations_per_epoch"], 5);
    assert_eq!(header["epochs"], 3);
    let layers: Vec<(String, u64, String)> = header["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["units"].as_u64().unwrap(),
                l["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        [
            ("input".into(), 784, "input".into()),
            ("hidden1".into(), 16, "tanh".into()),
            ("output".into(), 10, "softmax".into())
        ]
    );
    assert_eq!(header["settings"]["model.hidden"], serde_json::json!([16]));
    assert_eq!(header["settings"]["train.epochs"], 3);
    assert_eq!(header["state"], "finished");
    assert!(header["ended"].is_string(), "{header}");

    let units = dir.path().join("units.jsonl");
    assert_eq!(epochs_of(&units), [1, 2, 3]);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&units)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["layers"][0]["layer"], 1);
    for field in ["mean_out", "std_out", "alpha", "beta", "gamma", "collapsed"] {
        let values = first["layers"][0]["units"][field].as_array().unwrap();
        assert_eq!(values.len(), 16, "{field}");
    }
}

#[test]
fn a_killed_run_is_running_in_its_header_and_resumes_with_its_units_cut_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&[
        "--set",
        "train.epochs=40",
        "--set",
        "model.hidden=[128, 128]",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while epochs_of_or_none(&dir.path().join("metrics.jsonl")) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let header = json(&dir.path().join("run.json"));
    assert_eq!(header["state"], "running", "{header}");
    assert!(header["ended"].is_null(), "{header}");

    let out = ltmlp(&["run", "--resume", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let header = json(&dir.path().join("run.json"));
    assert_eq!(header["state"], "finished", "{header}");
    // Every evaluation once, in order: the records after the checkpoint were moved aside.
    let expected: Vec<u64> = (1..=40).collect();
    assert_eq!(epochs_of(&dir.path().join("units.jsonl")), expected);
    assert_eq!(epochs_of(&dir.path().join("metrics.jsonl")), expected);
}

/// Whole lines of a file that may not exist yet.
fn epochs_of_or_none(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn ls_watch_and_report_read_run_json_from_any_producer_and_folders_without_it() {
    let root = tempfile::tempdir().unwrap();
    let native = root.path().join("native");
    let out = small_run(&native, "2");
    assert!(out.status.success(), "{}", text(&out));

    // `watch` takes the header from run.json: the weights are known (0 from config.toml).
    // and the unit view gets each evaluation's units from units.jsonl.
    let events = ltmlp::sink::follow::follow(&native).unwrap();
    match events.recv_timeout(Duration::from_secs(10)).unwrap() {
        ltmlp::protocol::Event::Started(info) => assert_eq!(info.weights, 20544),
        other => panic!("{other:?}"),
    }
    let (mut statistics, mut evaluation) = (None, None);
    while evaluation.is_none() {
        match events.recv_timeout(Duration::from_secs(10)).unwrap() {
            ltmlp::protocol::Event::Layers { layers, .. } => statistics = Some(layers),
            ltmlp::protocol::Event::Epoch(m) => evaluation = Some(m.layers),
            _ => {}
        }
    }
    for layers in [statistics.unwrap(), evaluation.unwrap()] {
        assert_eq!(layers[0].per_unit.std_out.len(), 16);
    }

    // Another producer: settings this build's preset does not know, no config.toml.
    let foreign = root.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    let mut header = json(&native.join("run.json"));
    header["producer"] = serde_json::json!({"name": "torch-trainer", "version": "2.1"});
    header["settings"]["torch.compile"] = Value::Bool(true);
    header["variant"] = Value::String("abg".into());
    header["settings"]["variant"] = Value::String("abg".into());
    std::fs::write(foreign.join("run.json"), header.to_string()).unwrap();
    for file in ["metrics.jsonl", "summary.json"] {
        std::fs::copy(native.join(file), foreign.join(file)).unwrap();
    }

    // A folder written before run.json existed.
    let old = root.path().join("old");
    let out = small_run(&old, "2");
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(old.join("run.json")).unwrap();

    let o = ltmlp(&["ls", root.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    for name in ["native", "foreign", "old"] {
        assert!(listing.contains(name), "{listing}");
    }
    assert!(
        listing.contains("2/2"),
        "the header gives the run's length: {listing}"
    );

    let scan = ltmlp::compare::scan(root.path()).unwrap();
    assert!(scan.unreadable.is_empty(), "{:?}", scan.unreadable);
    let names: Vec<String> = scan.runs.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["foreign", "native", "old"]);
    assert_eq!(scan.runs[0].variant, "abg");
    assert_eq!(scan.runs[0].config["torch.compile"], "true");
    // The same settings whether read from run.json or config.toml.
    assert_eq!(scan.runs[1].config, scan.runs[2].config);
    let o = ltmlp(&["report", root.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}
