//! Hostile runs (issue 29, sections 2, 3, 4, 6 and 8): names and plans that point outside their
//! folder, symlinked run files, a second writer after `run.lock` is removed, reports on
//! damaged or duplicated records, a damaged action log, and what a late viewer sees. Every
//! child process has a deadline and is killed at the end of its test.

mod cli_common;
use cli_common::{text, SMALL};

mod tui_common;
use tui_common as common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ltmlp::remote::snapshot::Snapshot;
use ltmlp::train::{Command as Steering, Event, RunState, Steer};
use ltmlp::tui::App;
use serde_json::Value;

/// No single ltmlp call of this suite may take longer.
const DEADLINE: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A child process that is killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs ltmlp in `cwd` to its end, or kills it at the deadline (and fails).
fn ltmlp_in(cwd: &Path, args: &[&str]) -> Output {
    cli_common::ltmlp_within(Some(cwd), args, DEADLINE)
}

fn ltmlp(args: &[&str]) -> Output {
    ltmlp_in(repo(), args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A finished small run in `dir`.
fn small_run(dir: &Path) {
    let mut args = vec!["run", "presets/default.toml", "--out", s(dir)];
    args.extend_from_slice(SMALL);
    let out = ltmlp(&args);
    assert!(out.status.success(), "{}", text(&out));
}

fn resume(dir: &Path) -> Output {
    ltmlp(&["run", "--resume", s(dir)])
}

/// Every file below `dir` (links as links, sockets by name) with its length and checksum,
/// for "nothing changed" checks. `run.lock` is left out: it holds the pid of the last process
/// that took the lock, which a refused resume did before it looked at the run's files.
fn contents(dir: &Path) -> Vec<(PathBuf, usize, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.ends_with("run.lock") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let bytes = if meta.file_type().is_symlink() {
            std::fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if meta.is_dir() {
            out.extend(contents(&p));
            continue;
        } else if meta.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        out.push((p, bytes.len(), crc32fast::hash(&bytes)));
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

// ---- Section 2: writes outside the folder they belong to ----

/// A preset whose `name` is `name`, small and on the embedded data.
fn preset_named(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("presets/default.toml")).unwrap();
    let text = text.replacen(
        "name = \"default\"",
        &format!("name = {}", toml_string(name)),
        1,
    );
    let path = dir.join("named.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Every folder below `root` (not following links).
fn folders(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.push(e.path());
                todo.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_preset_name_never_places_a_run_outside_runs() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("a").join("b").join("work");
    std::fs::create_dir_all(&work).unwrap();
    let absolute = root.path().join("absolute");
    for name in [
        "../../escaped".to_string(),
        absolute.display().to_string(),
        format!("{}x", "../".repeat(40)),
        "..".to_string(),
    ] {
        let preset = preset_named(root.path(), &name);
        let mut args = vec!["run", s(&preset)];
        args.extend_from_slice(SMALL);
        args.extend_from_slice(&["--set", "train.epochs=1"]);
        let out = ltmlp_in(&work, &args);
        assert!(out.status.success(), "name {name:?}: {}", text(&out));
        let runs = work.join("runs");
        for f in folders(root.path()) {
            let inside = f.starts_with(&runs) || work.starts_with(&f) || f == runs;
            assert!(inside, "name {name:?} made {} outside runs/", f.display());
        }
        // The run is in a folder directly below runs/, named after the preset.
        let made: Vec<PathBuf> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("config.toml").is_file())
            .collect();
        assert!(!made.is_empty(), "name {name:?}: no run below runs/");
        std::fs::remove_dir_all(&runs).unwrap();
    }
}

/// A plan of one small cell in `dir` (`sweep --emit plan`).
fn plan_of_one_cell(dir: &Path) {
    let mut args = vec![
        "sweep",
        "presets/default.toml",
        "--variants",
        "ab",
        "--seeds",
        "1",
        "--emit",
        "plan",
        "--out",
        s(dir),
    ];
    args.extend_from_slice(SMALL);
    let out = ltmlp(&args);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_plan_cell_outside_the_sweep_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let sweep = root.path().join("sweep");
    plan_of_one_cell(&sweep);
    let plan_path = sweep.join("plan.json");
    let plan = std::fs::read_to_string(&plan_path).unwrap();
    let outside = root.path().join("outside");
    for folder in [
        "../x".to_string(),
        outside.display().to_string(),
        "a/../../y".to_string(),
        ".".to_string(),
    ] {
        let mut v: Value = serde_json::from_str(&plan).unwrap();
        v["cells"][0]["folder"] = Value::String(folder.clone());
        std::fs::write(&plan_path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        let out = ltmlp(&["run-job", s(&sweep), "--index", "0"]);
        assert!(!out.status.success(), "folder {folder:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("plan.json") && err.contains("cell 0"),
            "folder {folder:?}: {}",
            text(&out)
        );
        assert!(!root.path().join("x").exists(), "folder {folder:?}");
        assert!(!root.path().join("y").exists(), "folder {folder:?}");
        assert!(!outside.exists(), "folder {folder:?}");
        assert!(!sweep.join("config.toml").exists(), "folder {folder:?}");
    }
}

#[test]
fn a_symlinked_run_file_is_refused_and_its_target_untouched() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    let target = root.path().join("elsewhere.jsonl");
    std::fs::write(&target, "").unwrap();
    for name in ["actions.jsonl", "metrics.csv"] {
        let file = dir.join(name);
        let saved = std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&target, &file).unwrap();
        let before = contents(&dir);
        let out = resume(&dir);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && err.contains("symbolic link"),
            "{name}: {}",
            text(&out)
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"",
            "{name}: target written"
        );
        assert_eq!(contents(&dir), before, "{name}: the folder changed");
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, saved).unwrap();
    }
}

// ---- Section 3: two writers after the lock file is removed ----

fn long_run(dir: &Path) -> Reaped {
    let mut args = vec!["run", "presets/default.toml", "--out", s(dir)];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--set", "train.epochs=100000", "--checkpoint-every", "1"]);
    let child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("checkpoint.bin").exists() {
        assert!(Instant::now() < deadline, "the run never checkpointed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn removing_run_lock_does_not_let_a_second_writer_in() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("live");
    let mut first = long_run(&dir);
    std::fs::remove_file(dir.join("run.lock")).unwrap();
    let out = resume(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another ltmlp is writing"),
        "{}",
        text(&out)
    );
    // The first run still trains, still answers on its socket, and no record was moved aside.
    assert!(first.0.try_wait().unwrap().is_none(), "the first run died");
    assert!(
        ltmlp::remote::client::status(&dir).is_ok(),
        "the socket is gone"
    );
    assert!(!dir.join("metrics.jsonl.after-checkpoint").exists());
}

#[test]
fn a_run_whose_socket_answers_is_alive_without_any_lock() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    // Another host's run on a shared folder: no lock reaches here, but its socket answers.
    let _listener = std::os::unix::net::UnixListener::bind(dir.join("control.sock")).unwrap();
    let before = contents(&dir);
    let out = resume(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("control socket answers"),
        "{}",
        text(&out)
    );
    assert_eq!(contents(&dir), before);
}

#[test]
fn a_run_recorded_on_another_host_is_not_taken_over() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    std::fs::write(dir.join("run.writer"), "4242 on other-host.example\n").unwrap();
    let before = contents(&dir);
    let out = resume(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other-host.example") && err.contains("4242"),
        "{}",
        text(&out)
    );
    assert_eq!(contents(&dir), before);
    // A record of this host whose process is gone is a run that ended: resumed.
    std::fs::write(dir.join("run.writer"), format!("4242 on {}\n", hostname())).unwrap();
    let out = resume(&dir);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_requeued_slurm_job_takes_over_its_own_record_from_another_host() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    // The job ran on a node that died; Slurm requeued it (same job id) onto this host.
    std::fs::write(
        dir.join("run.writer"),
        "4242 on dead-node.example slurm job 77\n",
    )
    .unwrap();
    let resume_as = |job: &str| {
        Command::new(env!("CARGO_BIN_EXE_ltmlp"))
            .args(["run", "--resume", s(&dir)])
            .current_dir(repo())
            .env("SLURM_JOB_ID", job)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let before = contents(&dir);
    let other = resume_as("78");
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("dead-node.example"),
        "{}",
        text(&other)
    );
    assert_eq!(contents(&dir), before);
    let same = resume_as("77");
    assert!(same.status.success(), "{}", text(&same));
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

// ---- Section 4: reports that are wrong without saying so ----

/// A comparison of two seeds of one variant, finished.
fn two_seeds(dir: &Path) {
    let mut args = vec![
        "compare",
        "presets/default.toml",
        "--variants",
        "ab",
        "--seeds",
        "2",
        "--out",
        s(dir),
    ];
    args.extend_from_slice(SMALL);
    let out = ltmlp(&args);
    assert!(out.status.success(), "{}", text(&out));
}

fn report(dir: &Path) -> (Output, Value) {
    let out = ltmlp(&["report", s(dir)]);
    assert!(out.status.success(), "{}", text(&out));
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    (out, serde_json::from_str(&json).unwrap())
}

/// The (folder, reason) pairs a report says it left out.
fn left_out(report: &Value) -> Vec<(String, String)> {
    report["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["folder"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn cells(dir: &Path) -> Vec<PathBuf> {
    let mut cells: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    cells.sort();
    cells
}

/// Asserts that the report leaves `folder` out with a reason containing `why`, in report.md,
/// report.json and on stdout, and counts only the other run.
fn assert_left_out(dir: &Path, folder: &str, why: &str) {
    let (out, json) = report(dir);
    let left = left_out(&json);
    assert!(
        left.iter().any(|(f, r)| f == folder && r.contains(why)),
        "{folder} not left out for {why:?}: {left:?}"
    );
    assert_eq!(json["runs"], 1, "{json}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains(folder) && md.contains(why), "{md}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(folder) && stdout.contains(why), "{stdout}");
}

#[test]
fn a_report_checks_each_runs_records() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    two_seeds(&base);
    let (_, clean) = report(&base);
    assert!(left_out(&clean).is_empty(), "{clean}");
    assert_eq!(clean["runs"], 2);

    // A duplicated last record.
    let dup = root.path().join("dup");
    copy_dir(&base, &dup);
    let cell = cells(&dup)[0].clone();
    let name = cell.file_name().unwrap().to_string_lossy().into_owned();
    let jsonl = cell.join("metrics.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let last = text.lines().last().unwrap().to_string();
    std::fs::write(&jsonl, format!("{text}{last}\n")).unwrap();
    assert_left_out(&dup, &name, "epoch 3 twice");

    // A copied last record that claims a perfect validation error.
    let zero = root.path().join("zero");
    copy_dir(&base, &zero);
    let jsonl = cells(&zero)[0].join("metrics.jsonl");
    let mut record: Value = serde_json::from_str(&last).unwrap();
    record["validation_error"] = Value::from(0.0);
    std::fs::write(&jsonl, format!("{text}{record}\n")).unwrap();
    assert_left_out(&zero, &name, "epoch 3 twice");

    // An empty metrics.jsonl in a finished cell.
    let empty = root.path().join("empty");
    copy_dir(&base, &empty);
    std::fs::write(cells(&empty)[0].join("metrics.jsonl"), "").unwrap();
    assert_left_out(&empty, &name, "summary.json");

    // A record edited so that it disagrees with summary.json.
    let edited = root.path().join("edited");
    copy_dir(&base, &edited);
    let jsonl = cells(&edited)[0].join("metrics.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    record = serde_json::from_str(&last).unwrap();
    record["validation_error"] = Value::from(0.0);
    *lines.last_mut().unwrap() = record.to_string();
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    assert_left_out(&edited, &name, "summary.json");
}

#[test]
fn a_cell_folder_linked_to_another_cell_counts_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cmp");
    two_seeds(&dir);
    let first = cells(&dir)[0].clone();
    std::os::unix::fs::symlink(&first, dir.join("copy-seed9")).unwrap();
    let (out, json) = report(&dir);
    assert_eq!(json["runs"], 2, "{json}");
    assert!(
        left_out(&json)
            .iter()
            .any(|(f, r)| f == "copy-seed9" && r.contains("symbolic link")),
        "{json}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("copy-seed9"));
}

#[test]
fn watch_says_when_metrics_are_damaged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    let jsonl = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    std::fs::write(&jsonl, format!("garbage\n{text}")).unwrap();
    let events = ltmlp::sink::follow::follow(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = None;
    while let Ok(e) = events.recv_deadline(deadline) {
        if let Event::Failed(m) = &e {
            said = Some(m.clone());
            break;
        }
    }
    let said = said.expect("watch never said the file is damaged");
    assert!(
        said.contains("metrics.jsonl") && said.contains("line 1"),
        "{said}"
    );
}

#[test]
fn watch_says_when_metrics_are_not_text() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    let jsonl = dir.join("metrics.jsonl");
    let mut bytes = std::fs::read(&jsonl).unwrap();
    bytes.extend_from_slice(b"\xff\xfe not text\n");
    std::fs::write(&jsonl, bytes).unwrap();
    let events = ltmlp::sink::follow::follow(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut said = None;
    while let Ok(e) = events.recv_deadline(deadline) {
        if let Event::Log(m) | Event::Failed(m) = &e {
            if m.contains("UTF-8") {
                said = Some(m.clone());
                break;
            }
        }
    }
    let said = said.expect("watch never said the file is not text");
    assert!(said.contains("metrics.jsonl"), "{said}");
}

// ---- Section 6: a damaged actions.jsonl ----

#[test]
fn a_damaged_action_log_is_named_and_nothing_changes() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    small_run(&dir);
    // Records after the checkpoint would be moved aside by a resume that went ahead.
    let jsonl = dir.join("metrics.jsonl");
    let records = std::fs::read_to_string(&jsonl).unwrap();
    let last = records
        .lines()
        .last()
        .unwrap()
        .replacen("\"epoch\":3", "\"epoch\":4", 1);
    std::fs::write(&jsonl, format!("{records}{last}\n")).unwrap();
    std::fs::write(dir.join("actions.jsonl"), "garbage\n").unwrap();
    let before = contents(&dir);
    for _ in 0..2 {
        let out = resume(&dir);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("actions.jsonl:1"), "{}", text(&out));
        assert!(!err.contains("free some space"), "{}", text(&out));
        assert_eq!(
            contents(&dir),
            before,
            "a refused resume changed the folder"
        );
    }
}

// ---- Section 8: the dashboard, seen as a new user ----

fn steer(iteration: u64, command: Steering, ok: bool, message: &str) -> Steer {
    Steer {
        iteration,
        command,
        ok,
        message: message.into(),
    }
}

/// The events of a run steered twice between progress reports (which are rate-limited), as
/// the trainer sends them: the log line of a command, then its `Steered` event.
fn steered_run() -> Vec<Event> {
    let mut events = vec![
        Event::Started(common::info()),
        Event::State(RunState::Running),
    ];
    for it in (50..=3950u64).step_by(50) {
        events.push(Event::Progress(common::progress(it, 0.5)));
        if it == 3900 {
            events.push(Event::Log("train.learning_rate = 0.5".into()));
            events.push(Event::Steered(steer(
                3920,
                Steering::Set {
                    key: "train.learning_rate".into(),
                    value: "0.5".into(),
                },
                true,
                "train.learning_rate = 0.5",
            )));
        }
        if it % 500 == 0 {
            events.push(Event::Epoch(Box::new(common::epoch(
                (it / 50) as usize,
                0.3,
            ))));
        }
    }
    events.push(Event::Log(
        "refused: momentum 2 must be in [0, 1), e.g. 0.9".into(),
    ));
    events.push(Event::Steered(steer(
        3961,
        Steering::SetMomentum(2.0),
        false,
        "momentum 2 must be in [0, 1), e.g. 0.9",
    )));
    events
}

fn iteration_of_line(app: &App, text: &str) -> Option<u64> {
    app.log
        .iter()
        .find(|l| l.text.contains(text))
        .unwrap_or_else(|| panic!("no log line {text:?}"))
        .iteration
}

#[test]
fn steering_shows_at_its_own_iteration_live_and_to_a_late_viewer() {
    let mut live = App::new(common::AB);
    let mut snapshot = Snapshot::default();
    for e in steered_run() {
        snapshot.apply(&e);
        live.on_event(e);
    }
    let mut late = App::new(common::AB);
    for e in snapshot.events() {
        late.on_event(e);
    }
    for app in [&live, &late] {
        assert_eq!(
            iteration_of_line(app, "train.learning_rate = 0.5"),
            Some(3920)
        );
        assert_eq!(iteration_of_line(app, "momentum 2 must be"), Some(3961));
    }
}

#[test]
fn the_whole_run_panel_spans_what_has_been_trained() {
    let mut app = App::new(common::AB);
    let mut info = common::info();
    info.epochs = 100_000;
    app.on_event(Event::Started(info));
    app.on_event(Event::State(RunState::Running));
    for it in (5..=15_000u64).step_by(5) {
        app.on_event(Event::Progress(common::progress(it, 1.0 / it as f64)));
        if it % 50 == 0 {
            app.on_event(Event::Epoch(Box::new(common::epoch(
                (it / 50) as usize,
                0.3,
            ))));
        }
    }
    let (start, end) = ltmlp::tui::loss::window(&app);
    assert_eq!(start, 0);
    assert!(
        (15_000..=16_500).contains(&end),
        "the whole-run window ends at {end}, trained 15,000 of 5,000,000 iterations"
    );
}
