//! Sweeps: the plan is deterministic and resolves every cell; `run-job` is idempotent and
//! refuses a cell another process holds; killing a worker and running the sweep again finishes
//! exactly the missing cells; each data configuration is loaded once and used by its own
//! cells; the Slurm script carries the array, resources and the dependent report job.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ltmlp::sweep::axes::parse_grid;
use ltmlp::sweep::data_cache::DataCache;
use ltmlp::sweep::lock::lock_folder;
use ltmlp::sweep::{plan, Plan, SweepSpec};
use serde_json::Value;

const SMALL: &str = r#"name = "small"
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
train_eval_size = 500
"#;

fn preset(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("small.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn all_variants() -> Vec<String> {
    ["none", "ab", "abg"].map(String::from).to_vec()
}

#[test]
fn the_plan_is_deterministic_and_resolves_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = preset(dir.path(), SMALL);
    let variants = vec!["none".to_string(), "abg".to_string()];
    let spec = SweepSpec {
        preset: path.clone(),
        variants: variants.clone(),
        seeds: 2,
        axes: vec![
            parse_grid("train.learning_rate=0.01,0.02", &variants).unwrap(),
            parse_grid("abg:train.learning_rate=0.3", &variants).unwrap(),
            parse_grid("model.hidden=[8],[4,4]", &variants).unwrap(),
        ],
        overrides: vec!["train.epochs=3".into()],
        data: None,
        tensorboard: false,
    };
    let a = plan::build(&spec).unwrap();
    let b = plan::build(&spec).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    // Per seed: none 2 rates × 2 shapes, abg its one rate × 2 shapes.
    assert_eq!(a.cells.len(), 2 * (4 + 2));
    let folders: Vec<&str> = a.cells.iter().map(|c| c.folder.as_str()).collect();
    assert_eq!(
        &folders[..6],
        [
            "none-learning_rate=0.01-hidden=8-seed1",
            "none-learning_rate=0.01-hidden=4x4-seed1",
            "none-learning_rate=0.02-hidden=8-seed1",
            "none-learning_rate=0.02-hidden=4x4-seed1",
            "abg-learning_rate=0.3-hidden=8-seed1",
            "abg-learning_rate=0.3-hidden=4x4-seed1",
        ]
    );
    for (i, c) in a.cells.iter().enumerate() {
        assert_eq!(c.index, i);
        assert_eq!(c.config.variant, c.variant);
        assert_eq!(c.config.train.seed, c.seed);
        assert_eq!(c.config.train.epochs, 3, "--set applies to every cell");
        let rate: f64 = c.setting[0].value.parse().unwrap();
        assert_eq!(c.config.train.learning_rate, rate, "{}", c.folder);
    }
    assert_eq!(a.cells[6].seed, 2);
    assert_eq!(a.cells[1].config.model.hidden, [4, 4]);

    // The [sweep] table does the same; a --grid on the same key replaces its axis, and the
    // plan written by two runs of one command is byte-identical.
    let table = format!(
        "{SMALL}[sweep]\nvariants = [\"ab\"]\nseeds = 1\n[sweep.grid]\n\"train.learning_rate\" = [0.05, 0.1]\n\"train.momentum\" = [0.5, 0.9]\n"
    );
    let path = preset(dir.path(), &table);
    let out1 = dir.path().join("p1");
    let out2 = dir.path().join("p2");
    for out in [&out1, &out2] {
        let o = ltmlp(&[
            "sweep",
            s(&path),
            "--grid",
            "train.learning_rate=0.2,0.4,0.8",
            "--emit",
            "plan",
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("6 cells"), "{}", text(&o));
    }
    let p1 = std::fs::read_to_string(out1.join("plan.json")).unwrap();
    assert_eq!(p1, std::fs::read_to_string(out2.join("plan.json")).unwrap());
    let plan = Plan::read(&out1).unwrap();
    assert!(plan.cells.iter().all(|c| c.variant == "ab" && c.seed == 1));
    let rates: Vec<f64> = plan
        .cells
        .iter()
        .map(|c| c.config.train.learning_rate)
        .collect();
    // The preset's axes come first (momentum), then the command line's (the rate).
    assert_eq!(rates, [0.2, 0.4, 0.8, 0.2, 0.4, 0.8]);
    assert_eq!(plan.cells[3].config.train.momentum, 0.9);
    // Another grid in the same folder is refused, naming the fix.
    let o = ltmlp(&[
        "sweep",
        s(&path),
        "--grid",
        "train.learning_rate=0.3",
        "--emit",
        "plan",
        "--out",
        s(&out1),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("holds another sweep"), "{}", text(&o));
    // A bad key names the cell and the key.
    let o = ltmlp(&[
        "sweep",
        s(&path),
        "--grid",
        "train.lerning_rate=0.3",
        "--emit",
        "plan",
        "--out",
        s(&dir.path().join("p3")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("lerning_rate"), "{}", text(&o));
}

#[test]
fn run_job_is_idempotent_and_refuses_a_held_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = preset(dir.path(), SMALL);
    let out = dir.path().join("sweep");
    let o = ltmlp(&[
        "sweep",
        s(&path),
        "--variants",
        "none",
        "--seeds",
        "1",
        "--grid",
        "train.learning_rate=0.05,0.1",
        "--emit",
        "plan",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = Plan::read(&out).unwrap();
    let cell = out.join(&plan.cells[0].folder);

    let o = ltmlp(&["run-job", s(&out), "--index", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("finished"), "{}", text(&o));
    // The cell's config is the plan's, exactly.
    let config = std::fs::read_to_string(cell.join("config.toml")).unwrap();
    assert_eq!(config, plan.cells[0].resolve(&out).unwrap().to_toml());
    let files = ["summary.json", "metrics.jsonl", "checkpoint.bin"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(cell.join(f)).unwrap())
        .collect();
    let mtime = std::fs::metadata(cell.join("checkpoint.bin"))
        .unwrap()
        .modified()
        .unwrap();

    let o = ltmlp(&["run-job", s(&out), "--index", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("already finished, skipped"),
        "{}",
        text(&o)
    );
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(cell.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "a second run-job changed the cell's files");
    assert_eq!(
        mtime,
        std::fs::metadata(cell.join("checkpoint.bin"))
            .unwrap()
            .modified()
            .unwrap()
    );

    // Cell 1 held by "another process" (this one): refused with exit status 4.
    let held = out.join(&plan.cells[1].folder);
    std::fs::create_dir_all(&held).unwrap();
    let lock = lock_folder(&held).unwrap();
    let o = ltmlp(&["run-job", s(&out), "--index", "1"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("another ltmlp is writing this run folder (pid"),
        "{}",
        text(&o)
    );
    assert!(!held.join("metrics.jsonl").exists());
    drop(lock);
    let o = ltmlp(&["run-job", s(&out), "--index", "1"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = ltmlp(&["run-job", s(&out), "--index", "9"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no cell 9; the plan has cells 0 to 1"),
        "{}",
        text(&o)
    );
}

/// Metric lines in a cell folder.
fn lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

fn state(dir: &Path) -> Option<String> {
    let t = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: Value = serde_json::from_str(&t).ok()?;
    v["state"].as_str().map(String::from)
}

#[test]
fn killing_a_worker_and_rerunning_finishes_exactly_the_missing_cells() {
    let dir = tempfile::tempdir().unwrap();
    // Slow enough to be caught between epochs: about a second per cell.
    let path = preset(
        dir.path(),
        &SMALL
            .replace("train_limit = 1500", "train_limit = 3000")
            .replace("hidden = [16]", "hidden = [128, 128]")
            .replace("epochs = 2", "epochs = 8"),
    );
    let out = dir.path().join("sweep");
    let args = [
        "sweep",
        s(&path),
        "--variants",
        "none,ab",
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--out",
        s(&out),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let plan = loop {
        if let Ok(plan) = Plan::read(&out) {
            break plan;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no plan.json");
        std::thread::sleep(Duration::from_millis(20));
    };
    let dirs: Vec<PathBuf> = plan.cells.iter().map(|c| out.join(&c.folder)).collect();
    // Kill once a cell has finished and another is past its second epoch (so it has a
    // checkpoint) but not done.
    loop {
        let finished = dirs.iter().any(|d| state(d).is_some());
        let midway = dirs.iter().any(|d| state(d).is_none() && lines(d) >= 2);
        if finished && midway {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the sweep was never caught midway"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no chance to save anything
    child.wait().unwrap();
    let done: Vec<usize> = (0..dirs.len())
        .filter(|&i| state(&dirs[i]).is_some())
        .collect();
    let midway: Vec<usize> = (0..dirs.len())
        .filter(|&i| state(&dirs[i]).is_none() && lines(&dirs[i]) >= 2)
        .collect();
    assert!(!done.is_empty() && done.len() < dirs.len() && midway.len() == 1);
    let summaries: Vec<Vec<u8>> = done
        .iter()
        .map(|&i| std::fs::read(dirs[i].join("summary.json")).unwrap())
        .collect();

    // The partial report lists what has not finished, and why.
    let o = ltmlp(&["report", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let missing: Vec<usize> = report["not_finished"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["index"].as_u64().unwrap() as usize)
        .collect();
    let expected: Vec<usize> = (0..dirs.len()).filter(|i| !done.contains(i)).collect();
    assert_eq!(missing, expected);
    assert_eq!(report["finished"], done.len());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("running, or killed, after epoch"), "{md}");
    if midway[0] + 1 < dirs.len() {
        assert!(md.contains("not started"), "{md}");
    }

    let o = ltmlp(&args);
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(log.contains("continuing"), "{log}");
    for (i, cell) in plan.cells.iter().enumerate() {
        let skipped = log.contains(&format!("[{}] already finished, skipped", cell.folder));
        assert_eq!(skipped, done.contains(&i), "cell {i}: {log}");
        let resumed = log.contains(&format!("[{}] resuming from its checkpoint", cell.folder));
        assert_eq!(resumed, midway.contains(&i), "cell {i}: {log}");
        if resumed {
            // The evaluations it kept arrive marked as replayed: each epoch is logged once.
            let kept: u64 = log
                .split(&format!(
                    "[{}] resuming from its checkpoint after ",
                    cell.folder
                ))
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(kept >= 1, "{log}");
            for epoch in 1..=8 {
                let logged = log.contains(&format!("[{}] ep {epoch}/8 ", cell.folder));
                assert_eq!(logged, epoch > kept, "cell {i}, epoch {epoch}: {log}");
            }
        }
        assert_eq!(state(&dirs[i]).as_deref(), Some("finished"), "cell {i}");
        // Every epoch exactly once, in order, also in the resumed cell.
        let epochs: Vec<u64> = std::fs::read_to_string(dirs[i].join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["epoch"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(epochs, (1..=8).collect::<Vec<u64>>(), "cell {i}");
    }
    for (k, &i) in done.iter().enumerate() {
        assert_eq!(
            summaries[k],
            std::fs::read(dirs[i].join("summary.json")).unwrap(),
            "cell {i} was run again"
        );
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["finished"], dirs.len());
    assert_eq!(report["not_finished"], serde_json::json!([]));
}

#[test]
fn each_data_configuration_is_loaded_once_and_used_by_its_own_cells() {
    let dir = tempfile::tempdir().unwrap();
    let path = preset(dir.path(), &SMALL.replace("epochs = 2", "epochs = 1"));
    let variants = vec!["ab".to_string()];
    let spec = SweepSpec {
        preset: path,
        variants: variants.clone(),
        seeds: 2,
        // 500 or 1000 training examples after the 500 held out: 10 or 20 minibatches of 50.
        axes: vec![parse_grid("data.train_limit=1000,1500", &variants).unwrap()],
        overrides: vec![],
        data: None,
        tensorboard: false,
    };
    let plan = plan::build(&spec).unwrap();
    let out = dir.path().join("sweep");
    plan.write_or_check(&out).unwrap();
    let cache = DataCache::default();
    let outcomes = ltmlp::sweep::local::run_all(&out, &plan, 2, &cache, None, &|_| {});
    assert!(outcomes.iter().all(|(_, o)| o.is_done()), "{outcomes:?}");
    assert_eq!(
        cache.counts(),
        (1, 2),
        "one source read, two configurations prepared"
    );
    for cell in &plan.cells {
        let first = std::fs::read_to_string(out.join(&cell.folder).join("metrics.jsonl")).unwrap();
        let m: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        let expected = if cell.setting[0].value == "1000" {
            10
        } else {
            20
        };
        assert_eq!(m["iteration"], expected, "{}", cell.folder);
    }
    // Grouping is by setting: two groups of two seeds, and the axis is found in the configs.
    let files = ltmlp::compare::write_report(&out, None, &[]).unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(files.json).unwrap()).unwrap();
    assert_eq!(report["axes"], serde_json::json!(["data.train_limit"]));
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|g| g["counted"] == 2));
}

#[test]
fn emit_slurm_writes_the_job_array_with_its_resources_and_report_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = preset(dir.path(), SMALL);
    let out = dir.path().join("sweep");
    let o = ltmlp(&[
        "sweep",
        s(&path),
        "--variants",
        "none,ab",
        "--seeds",
        "1",
        "--grid",
        "train.learning_rate=0.05,0.1",
        "--jobs",
        "3",
        "--set",
        "train.threads=2",
        "--set",
        "train.time_budget_seconds=60",
        "--sbatch=--partition=short",
        "--emit",
        "slurm",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let script = std::fs::read_to_string(out.join("sweep.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-3%3",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --time=0:07:00",
        "#SBATCH --requeue",
        "#SBATCH --partition=short",
        "--dependency=afterany:$SLURM_ARRAY_JOB_ID",
        "report '$DIR'",
        "exec \"$LTMLP\" run-job \"$DIR\" --index \"$SLURM_ARRAY_TASK_ID\"",
    ] {
        assert!(script.contains(line), "missing {line:?} in\n{script}");
    }
    assert!(
        out.join("slurm").is_dir(),
        "the log folder must exist before sbatch"
    );
    assert!(
        !out.join(&Plan::read(&out).unwrap().cells[0].folder)
            .exists(),
        "nothing ran"
    );
    let _ = all_variants();
}

#[test]
fn tensorboard_output_is_not_part_of_a_sweeps_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = preset(dir.path(), SMALL);
    let variants = vec!["ab".to_string()];
    let spec = |tensorboard: bool, overrides: Vec<String>| SweepSpec {
        preset: path.clone(),
        variants: variants.clone(),
        seeds: 1,
        axes: Vec::new(),
        overrides,
        data: None,
        tensorboard,
    };
    let out = dir.path().join("sweep");
    let first = plan::build(&spec(false, Vec::new())).unwrap();
    assert!(!first.tensorboard);
    assert!(!first.write_or_check(&out).unwrap());
    // Run again with --tensorboard, or with the preset key: the same sweep, its cells unchanged.
    let flagged = plan::build(&spec(true, Vec::new())).unwrap();
    assert!(flagged.tensorboard);
    assert!(flagged.write_or_check(&out).unwrap());
    let keyed = plan::build(&spec(false, vec!["train.tensorboard=true".into()])).unwrap();
    assert!(keyed.tensorboard);
    assert!(keyed.cells.iter().all(|c| !c.config.train.tensorboard));
    assert!(keyed.write_or_check(&out).unwrap());
}
