//! `ltmlp run` end to end on the embedded data: the default preset reaches its target, runs are
//! reproducible, divergence and bad input end with a clear reason and the files are kept.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// metrics.jsonl without the wall-clock fields, which no two runs share.
fn metrics_without_timing(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("elapsed_seconds");
            obj.remove("wall");
            obj.remove("examples_per_second");
            v
        })
        .collect()
}

#[test]
fn default_preset_trains_below_seven_percent_validation_error() {
    let dir = tempfile::tempdir().unwrap();
    // The preset's first 12 of its 50 epochs: enough for the target, and the suite stays short.
    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--set",
        "train.epochs=12",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(dir.path());
    let error = s["final_validation_error"].as_f64().unwrap();
    assert!(error < 7.0, "validation error {error}%");
    assert_eq!(s["state"], "finished");
    assert!(s["test_error_at_best"].as_f64().is_some());
    assert!(s["examples_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ep ")).count(),
        12,
        "one line per epoch"
    );
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    assert!(config.contains("variant = \"ab\""), "{config}");
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13, "header and one row per epoch");
    // Every scheduled re-estimation is recorded with a tiny output change (f32).
    let metrics = metrics_without_timing(dir.path());
    let events: Vec<&Value> = metrics
        .iter()
        .flat_map(|m| m["transform_events"].as_array().unwrap())
        .collect();
    assert_eq!(events.len(), 12 * 50, "one re-estimation per minibatch");
    for e in events {
        assert!(e["max_output_change"].as_f64().unwrap() < 1e-4, "{e}");
    }
}

#[test]
fn same_seed_same_metrics_other_seed_other_metrics() {
    let run = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = ltmlp(&[
            "run",
            "presets/default.toml",
            "--variant",
            "abg",
            "--seed",
            seed,
            "--set",
            "train.epochs=2",
            "--set",
            "data.shuffle=true",
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        metrics_without_timing(dir.path())
    };
    let (a, b, c) = (run("7"), run("7"), run("8"));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn divergence_stops_with_the_iteration_and_keeps_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--variant",
        "none",
        "--set",
        "train.learning_rate=1e37",
        "--set",
        "train.epochs=2",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("diverged at iteration"), "{stderr}");
    let s = summary(dir.path());
    assert_eq!(s["state"], "diverged");
    assert!(s["reason"].as_str().unwrap().contains("iteration"));
}

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    let out = ltmlp(&["run", "tests/fixtures/invalid-presets/negative-rate.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("negative-rate.toml:9: train.learning_rate"),
        "{stderr}"
    );

    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--data",
        "/nonexistent-ltmlp-data",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent-ltmlp-data") && stderr.contains("no such file or folder"),
        "{stderr}"
    );

    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--set",
        "train.batch_size=100000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than the 5000 training examples"));
}

#[test]
fn an_unwritable_run_folder_is_reported_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out_dir = file.join("run");
    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(out_dir.to_str().unwrap()) && stderr.contains("cannot write"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .all(|l| !l.starts_with("ep ")),
        "no training happened"
    );
}

#[test]
fn divergence_rollbacks_go_back_and_halve_the_rate_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--variant",
        "none",
        "--set",
        "train.learning_rate=1e37",
        "--set",
        "train.epochs=2",
        "--set",
        "train.divergence_rollbacks=2",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("rolled back to iteration 0").count(),
        2,
        "{stderr}"
    );
    assert!(stderr.contains("(0 rollbacks left)"), "{stderr}");
    // Halving 1e37 twice still diverges: the run ends diverged after its two rollbacks.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
}

/// A headless run says when γ's blow-up control rolled back, with the iteration (it used to
/// be visible only in the dashboard's log and the metrics' transformation events).
#[test]
fn a_headless_run_prints_each_blow_up_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltmlp(&[
        "run",
        "--variant",
        "abg",
        "--set",
        "model.hidden=[16, 16]",
        "--set",
        "train.learning_rate=3.0",
        "--set",
        "train.epochs=1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("training loss jumped: rolled back to iteration"))
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(lines[0].starts_with("iteration "), "{stderr}");
}

#[test]
fn bench_reports_the_networks_and_what_reestimation_costs() {
    let out = ltmlp(&[
        "bench",
        "--batch",
        "50",
        "--net",
        "paper",
        "--net",
        "paper-never",
        "--examples",
        "50",
        "--repeats",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    let (paper, never) = (row("paper"), row("paper-never"));
    assert_eq!(paper[1], "50");
    assert!(
        paper[2].parse::<f64>().unwrap() > 0.0,
        "examples/s: {paper:?}"
    );
    // The re-est column: time inside re-estimation, which only the paper network spends.
    assert!(
        paper[8].trim_end_matches('%').parse::<f64>().unwrap() > 0.0,
        "{paper:?}"
    );
    assert_eq!(never[8], "0.0%");
    assert!(
        text.contains("re-estimating every minibatch at batch 50: paper "),
        "{text}"
    );
}

/// The authors' protocol: every training example is trained on, the test set is monitored,
/// and the outputs say so; validation and test figures are then one and the same.
#[test]
fn monitoring_the_test_set_trains_on_everything_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltmlp(&[
        "run",
        "presets/default.toml",
        "--set",
        "data.monitor=test",
        "--set",
        "train.epochs=2",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let epochs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ep ")).collect();
    assert_eq!(epochs.len(), 2, "{stdout}");
    assert!(
        epochs
            .iter()
            .all(|l| l.contains("test(monitored)") && !l.contains("valid")),
        "{stdout}"
    );
    // 6,000 embedded training images at batch 100: 60 iterations per epoch, not 50.
    let s = summary(dir.path());
    assert_eq!(s["monitor"], "test");
    assert_eq!(s["iterations"], 120);
    assert_eq!(s["final_validation_error"], s["final_test_error"]);
    assert!(stdout.contains("test (monitored)"), "{stdout}");
}

/// `train.bias_momentum` changes training (the biases keep their own momentum) and is kept
/// in the run's resolved config.
#[test]
fn bias_momentum_is_a_real_option() {
    let run = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "run",
            "presets/default.toml",
            "--set",
            "train.epochs=1",
            "--set",
            "train.momentum=0.5",
            "--out",
            dir.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = ltmlp(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        (metrics_without_timing(dir.path()), config)
    };
    let (plain, plain_config) = run(&[]);
    let (same, _) = run(&["--set", "train.bias_momentum=0.5"]);
    let (own, own_config) = run(&["--set", "train.bias_momentum=0.9"]);
    assert_eq!(
        plain, same,
        "bias momentum equal to the weights' changes nothing"
    );
    assert_ne!(plain[0]["train_loss"], own[0]["train_loss"]);
    assert!(!plain_config.contains("bias_momentum"));
    assert!(own_config.contains("bias_momentum = 0.9"), "{own_config}");
}

/// The wall-time accounts: cumulative in every metrics line, never more than the wall time,
/// `steps` equal to the training seconds, and carried on by a resume (not restarted).
#[test]
fn the_wall_time_is_accounted_for_and_survives_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let small = [
        "--set",
        "model.hidden=[32]",
        "--set",
        "data.train_limit=2000",
        "--set",
        "train.train_eval_size=500",
    ];
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--set", "train.epochs=2"]);
    assert!(ltmlp(&args).status.success());
    let s = summary(&run);
    let w = &s["wall"];
    let parts: f64 = ["steps", "evaluation", "statistics", "files"]
        .iter()
        .map(|k| w[k].as_f64().unwrap())
        .sum();
    assert!(parts <= s["wall_seconds"].as_f64().unwrap() + 1e-6, "{s}");
    assert_eq!(w["steps"], s["train_seconds"], "{s}");
    assert!(w["evaluation"].as_f64().unwrap() > 0.0, "{s}");
    let lines: Vec<Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let evaluation = |m: &Value| m["wall"]["evaluation"].as_f64().unwrap();
    assert!(evaluation(&lines[1]) > evaluation(&lines[0]));

    // Interrupted after its first epoch (SIGTERM on the first metrics line), then resumed.
    let again = dir.path().join("again");
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        again.to_str().unwrap(),
    ];
    args.extend_from_slice(&small);
    args.extend_from_slice(&["--set", "train.epochs=40"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = again.join("metrics.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 1 {
        assert!(start.elapsed().as_secs() < 60, "no first epoch");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert_eq!(
        summary(&again)["state"],
        "stopped",
        "interrupted before its end"
    );
    let kept: Vec<Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let before = evaluation(kept.last().unwrap());
    assert!(ltmlp(&["run", "--resume", again.to_str().unwrap()])
        .status
        .success());
    let after = summary(&again)["wall"]["evaluation"].as_f64().unwrap();
    assert!(
        after > before,
        "the resumed run continues the accounts: {after} vs {before}"
    );
    assert_eq!(summary(&again)["epochs_completed"], 40);
}

#[test]
fn bench_scale_sweeps_depth_with_growing_cost() {
    let out = ltmlp(&[
        "bench",
        "--scale",
        "depth",
        "--batch",
        "50",
        "--examples",
        "50",
        "--repeats",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One plain and one paper row per depth: weights, FLOPs per example, a positive speed.
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() == 9 && (f[0] == "plain" || f[0] == "paper"))
        .collect();
    assert_eq!(rows.len(), 10, "{text}");
    for net in ["plain", "paper"] {
        let of: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == net).collect();
        let layers: Vec<&str> = of.iter().map(|r| r[1]).collect();
        assert_eq!(layers, ["1×512", "2×512", "3×512", "4×512", "6×512"]);
        let number = |r: &Vec<&str>, i: usize| r[i].trim_end_matches('%').parse::<f64>().unwrap();
        for pair in of.windows(2) {
            assert!(number(pair[1], 2) > number(pair[0], 2), "weights: {text}");
            assert!(number(pair[1], 3) > number(pair[0], 3), "MFLOP/ex: {text}");
        }
        assert!(of.iter().all(|r| number(r, 4) > 0.0), "ex/s: {text}");
        // Only the paper network re-estimates (and, with one layer, still pays for it).
        assert_eq!(
            of.iter().all(|r| number(r, 8) > 0.0),
            net == "paper",
            "{text}"
        );
    }
}

/// The splits evaluated side by side (the default on a machine with a second core) give the
/// same metrics, to the bit, as one after another; with the test split monitored too.
#[test]
fn parallel_evaluation_changes_no_number() {
    let tmp = tempfile::tempdir().unwrap();
    // Monitoring the test set trains on every training example: no split is held out.
    let tiny = std::fs::read_to_string("presets/tiny.toml").unwrap();
    let monitored = tmp.path().join("tiny-monitored.toml");
    let without_validation: Vec<&str> = tiny
        .lines()
        .filter(|l| !l.starts_with("validation_size"))
        .collect();
    std::fs::write(&monitored, without_validation.join("\n")).unwrap();
    for (monitor, preset) in [
        ("validation", "presets/tiny.toml"),
        ("test", monitored.to_str().unwrap()),
    ] {
        let mut runs = Vec::new();
        for parallel in ["true", "false"] {
            let dir = tmp.path().join(format!("{monitor}-{parallel}"));
            let out = ltmlp(&[
                "run",
                preset,
                "--out",
                dir.to_str().unwrap(),
                "--set",
                "train.epochs=3",
                "--set",
                &format!("data.monitor={monitor}"),
                "--set",
                &format!("train.parallel_evaluation={parallel}"),
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs.push(metrics_without_timing(&dir));
        }
        assert_eq!(runs[0].len(), 3);
        assert_eq!(runs[0], runs[1], "monitor {monitor}");
    }
}

/// The summary without its timings and folder: what two runs of one recipe must share.
fn untimed_summary(dir: &Path) -> Value {
    let mut summary = summary(dir);
    let fields = summary.as_object_mut().unwrap();
    for timed in [
        "wall_seconds",
        "train_seconds",
        "reestimate_seconds",
        "examples_per_second",
        "wall",
        "out_dir",
    ] {
        fields.remove(timed);
    }
    summary
}

/// An epoch's evaluation overlapped with the next epoch's steps (the default with a free
/// core) gives the same metrics, summary and final network as waiting for it: when the paper
/// rule's phase changes on the result (the steps taken since are taken again), and when an
/// early stop comes with the result (the steps taken since are dropped).
#[test]
fn overlapped_evaluation_changes_no_number() {
    let tmp = tempfile::tempdir().unwrap();
    let overlaps = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "paper",
            "presets/tiny.toml",
            &[
                "train.epochs=8",
                "transforms.policy=paper",
                // tiny's validation error falls below 40% after the fourth epoch.
                "transforms.paper_threshold=40",
            ],
        ),
        (
            "early-stop",
            "presets/tiny.toml",
            &["train.epochs=60", "train.patience=1"],
        ),
        // A statistics probe (1,000 rows) larger than an evaluation chunk (500): the overlapped
        // evaluation must cut the splits into the chunks the one after another does.
        (
            "large-probe",
            "presets/default.toml",
            &[
                "train.epochs=3",
                "model.hidden=[24]",
                "data.train_limit=2500",
                "data.validation_size=1000",
                "stats.probe_size=1000",
                // In f32 the loss sums are exact in f64 whatever the chunks: f64 shows them.
                "train.precision=f64",
            ],
        ),
    ];
    for (case, preset, settings) in cases {
        let mut runs = Vec::new();
        for parallel in ["true", "false"] {
            let dir = tmp.path().join(format!("{case}-{parallel}"));
            let mut args = vec!["run", preset, "--out", dir.to_str().unwrap()];
            let parallel_setting = format!("train.parallel_evaluation={parallel}");
            for s in settings.iter().copied().chain([parallel_setting.as_str()]) {
                args.extend(["--set", s]);
            }
            let out = ltmlp(&args);
            let said = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let evaluated = ltmlp(&["eval", dir.to_str().unwrap()]);
            assert!(evaluated.status.success());
            // The final network's evaluation, without the lines naming the files written.
            let evaluation: Vec<String> = String::from_utf8_lossy(&evaluated.stdout)
                .lines()
                .filter(|l| !l.starts_with("wrote "))
                .map(String::from)
                .collect();
            runs.push((
                metrics_without_timing(&dir),
                untimed_summary(&dir),
                evaluation,
            ));
            let went_back = said.contains("changed the paper rule's phase");
            assert_eq!(
                went_back,
                case == "paper" && parallel == "true" && overlaps,
                "{case}, parallel evaluation {parallel}: {said}"
            );
        }
        assert!(runs[0].0 == runs[1].0, "{case}: the metrics differ");
        assert_eq!(runs[0].1, runs[1].1, "{case}: the summaries differ");
        assert_eq!(runs[0].2, runs[1].2, "{case}: the final networks differ");
    }
    let stopped = metrics_without_timing(&tmp.path().join("early-stop-true"));
    assert!(stopped.len() < 60, "the early stop never came");
}

/// A reader that has gone away (`ltmlp eval DIR | head -c 0`) neither panics the command nor
/// stops it before its files are written.
#[test]
fn a_closed_stdout_ends_no_command_early() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let trained = ltmlp(&[
        "run",
        "presets/tiny.toml",
        "--out",
        run.to_str().unwrap(),
        "--set",
        "train.epochs=1",
    ]);
    assert!(trained.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(["eval", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe's read end is closed at once, before the command has loaded the run.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(run.join("eval.json").is_file());
}

/// A regression run's epoch lines give each split's mean squared error with its R² (and no
/// error percentages), within 100 columns.
#[test]
fn regression_epoch_lines_show_r2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("a,b,y\n");
    for i in 0..200 {
        let (a, b) = (
            (i * 37 % 101) as f64 / 50.0 - 1.0,
            (i * 59 % 97) as f64 / 48.0 - 1.0,
        );
        csv += &format!("{a},{b},{}\n", 2.0 * a - b);
    }
    std::fs::write(tmp.path().join("r.csv"), csv).unwrap();
    let preset = format!(
        "name = \"r\"\nvariant = \"ab\"\n[data]\nsource = \"{}\"\nstandardize = true\n\
         [model]\ntask = \"regress\"\nhidden = [6]\n[train]\nepochs = 3\nbatch_size = 20\n\
         learning_rate = 0.05\n",
        tmp.path().join("r.csv").display()
    );
    std::fs::write(tmp.path().join("r.toml"), preset).unwrap();
    let out = ltmlp(&[
        "run",
        tmp.path().join("r.toml").to_str().unwrap(),
        "--out",
        tmp.path().join("run").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ep ")).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in lines {
        assert_eq!(line.matches(" R² ").count(), 3, "{line}");
        let figures = line.split(" lr ").next().unwrap();
        assert!(!figures.contains('%'), "an error percentage in: {line}");
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

/// Pixels held as bytes and decoded when read give the numbers of pixels decoded once to
/// floats: plain, centred and standardised inputs, and an autoencoder whose targets are its
/// inputs.
#[test]
fn byte_storage_changes_no_number() {
    let tmp = tempfile::tempdir().unwrap();
    let settings: [&[&str]; 4] = [
        &["data.zero_mean=false"],
        &["data.zero_mean=true"],
        &["data.standardize=true"],
        &[
            "model.task=\"autoencode\"",
            "model.hidden=[20,5,20]",
            "train.learning_rate=0.001",
        ],
    ];
    for (case, extra) in settings.iter().enumerate() {
        let mut runs = Vec::new();
        for bytes in ["true", "false"] {
            let dir = tmp.path().join(format!("{case}-{bytes}"));
            let mut args = vec![
                "run".to_string(),
                "presets/tiny.toml".into(),
                "--out".into(),
                dir.to_str().unwrap().into(),
            ];
            for set in [
                "train.epochs=2",
                "data.downsample=1",
                "data.train_limit=2000",
                &format!("data.byte_storage={bytes}"),
            ]
            .iter()
            .chain(extra.iter())
            {
                args.extend(["--set".to_string(), set.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = ltmlp(&args);
            assert!(
                out.status.success(),
                "{extra:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs.push(metrics_without_timing(&dir));
        }
        assert_eq!(runs[0].len(), 2, "{extra:?}");
        assert_eq!(runs[0], runs[1], "{extra:?}");
    }
}
