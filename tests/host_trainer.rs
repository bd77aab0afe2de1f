//! `ltmlp host` with a trainer in another language: tests/fixtures/trainer.py (Python's
//! standard library only) trains for 3 epochs and more under the host; `ltmlp attach` shows it
//! under tmux; `ctl pause`, `set train.learning_rate` and `stop` reach the script and are
//! acknowledged; the host refuses what the script did not declare; `ls` and `report` read the
//! folder; a trainer killed with -9 leaves a stopped run with its reason. Skips with a message
//! where python3 (or, for the dashboard, tmux) is missing.

mod cli_common;
mod host_common;
use host_common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The commands the script logged (`{"got": …}` lines).
fn received(log: &Path) -> Vec<Value> {
    lines(log)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("got").cloned())
        .collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `ltmlp attach DIR` in a private tmux server until the script's run shows; skipped without
/// tmux.
fn attach_shows_the_run(dir: &Path) {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("SKIPPED (the dashboard part): tmux is not installed");
        return;
    }
    let socket = format!("ltmlp-host-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &socket])
            .args(args)
            .output()
            .expect("tmux runs")
    };
    struct Server<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Server<'_> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let _server = Server(&tmux);
    let command = format!("{} attach {}", env!("CARGO_BIN_EXE_ltmlp"), s(dir));
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        "host",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &command,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");
    let start = Instant::now();
    let screen = loop {
        let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "host"]).stdout)
            .into_owned();
        if screen.contains("toy-trainer.py [toy]") && screen.contains("4-3(tanh)-3(tanh)") {
            break screen;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the dashboard did not show the hosted run; the screen was:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(150));
    };
    assert!(
        screen.contains("RUNNING") || screen.contains("PAUSED"),
        "{screen}"
    );
    // Detach: the run goes on.
    tmux(&["send-keys", "-t", "host", "d"]);
}

#[test]
fn a_python_trainer_is_attached_to_steered_stopped_and_reported() {
    if !have_python() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let dir = runs.join("toy");
    let log = tmp.path().join("commands.jsonl");
    let mut host = host_python(
        &dir,
        &[
            "--epochs",
            "10",
            "--iterations",
            "20",
            "--sleep",
            "0.05",
            "--log",
            s(&log),
        ],
        &tmp.path().join("host.err"),
    );
    wait_until("the hosted run to answer", || answers(&dir));
    attach_shows_the_run(&dir);

    let status: Value = serde_json::from_slice(&ltmlp(&["ctl", s(&dir), "status"]).stdout).unwrap();
    assert_eq!(status["preset"], "toy-trainer.py");
    assert_eq!(
        status["commands"],
        serde_json::json!(["pause", "resume", "step", "stop", "set"])
    );
    assert_eq!(status["tunables"][0]["key"], "train.learning_rate");

    let metrics = dir.join("metrics.jsonl");
    wait_until("the first epoch", || !lines(&metrics).is_empty());
    let out = ltmlp(&["ctl", s(&dir), "pause"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "paused");
    let out = ltmlp(&["ctl", s(&dir), "set", "train.learning_rate=0.05"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("learning rate → 0.05"));
    let status: Value = serde_json::from_slice(&ltmlp(&["ctl", s(&dir), "status"]).stdout).unwrap();
    assert_eq!(status["state"], "paused");
    assert_eq!(status["tunables"][0]["value"], "0.05");

    // Refused by the host, as declared: out of range, not a setting, not a command.
    for (args, says) in [
        (vec!["set", "train.learning_rate=50"], "outside [0, 10]"),
        (
            vec!["set", "train.input_noise=0.1"],
            "not a live setting of toy-trainer.py",
        ),
        (vec!["toggle", "a"], "does not carry out `toggle`"),
    ] {
        let mut all = vec!["ctl", s(&dir)];
        all.extend(&args);
        let out = ltmlp(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = ltmlp(&["ctl", s(&dir), "resume"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("three epochs", || lines(&metrics).len() >= 3);
    let out = ltmlp(&["ctl", s(&dir), "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        host.wait().success(),
        "the host ends as the trainer finished"
    );

    // The script got exactly what the host let through, in order.
    let got = received(&log);
    assert_eq!(got[0], "pause");
    assert_eq!(got[1]["set"]["key"], "train.learning_rate");
    assert_eq!(got[1]["set"]["value"], "0.05");
    assert_eq!(got[2], "resume");
    assert_eq!(got[3], "stop");
    assert_eq!(got.len(), 4, "{got:?}");

    let actions = lines(&dir.join("actions.jsonl"));
    let oks: Vec<bool> = actions
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["steer"]["ok"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(oks, [true, true, false, false, false, true, true]);
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["state"], "stopped");
    assert_eq!(summary["reason"], "stopped on request");
    assert_eq!(summary["steering_actions"], 7);
    let epochs = summary["epochs_completed"].as_u64().unwrap();
    assert!(epochs >= 3, "{summary}");
    assert_eq!(lines(&metrics).len() as u64, epochs);
    // The learning rate the trainer used after the change is in its records.
    let last: Value = serde_json::from_str(lines(&metrics).last().unwrap()).unwrap();
    assert_eq!(last["learning_rate"], 0.05);

    let out = ltmlp(&["ls", s(&runs)]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped on request"),
        "{}",
        text(&out)
    );
    let out = ltmlp(&["report", s(&runs)]);
    assert!(out.status.success(), "{}", text(&out));
    let report = std::fs::read_to_string(runs.join("report.md")).unwrap();
    assert!(report.contains("toy"), "{report}");
}

#[test]
fn a_trainer_killed_with_sigkill_leaves_a_stopped_run_that_ls_and_report_read() {
    if !have_python() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let dir = runs.join("toy");
    let log = tmp.path().join("commands.jsonl");
    let stderr = tmp.path().join("host.err");
    let mut host = host_python(
        &dir,
        &[
            "--epochs",
            "50",
            "--iterations",
            "10",
            "--sleep",
            "0.05",
            "--log",
            s(&log),
        ],
        &stderr,
    );
    let metrics = dir.join("metrics.jsonl");
    wait_until("the first epoch", || !lines(&metrics).is_empty());
    let pid = serde_json::from_str::<Value>(&lines(&log)[0]).unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert!(Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = host.wait();
    assert_eq!(
        status.code(),
        Some(1),
        "{}",
        std::fs::read_to_string(&stderr).unwrap()
    );

    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["state"], "stopped");
    let reason = summary["reason"].as_str().unwrap();
    assert!(
        reason.contains("without a `finished` event") && reason.contains("signal 9"),
        "{reason}"
    );
    assert_eq!(
        summary["epochs_completed"].as_u64().unwrap() as usize,
        lines(&metrics).len()
    );
    assert!(!dir.join("control.sock").exists(), "the endpoint is gone");

    let out = ltmlp(&["ls", s(&runs)]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("stopped") && listing.contains("signal 9"),
        "{listing}"
    );
    let out = ltmlp(&["report", s(&runs)]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_trainer_resumes_its_own_run_and_the_host_keeps_the_records_up_to_its_epoch() {
    if !have_python() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("toy");
    let log = tmp.path().join("commands.jsonl");
    let stderr = tmp.path().join("host.err");
    let fast = ["--iterations", "5", "--sleep", "0.01", "--log", s(&log)];
    let mut first = vec!["--epochs", "3"];
    first.extend(fast);
    assert!(host_python(&dir, &first, &stderr).wait().success());
    let metrics = dir.join("metrics.jsonl");
    let before = lines(&metrics);
    assert_eq!(before.len(), 3);

    // It continues after epoch 1: epochs 2 and 3 are trained again, the old ones moved aside.
    let mut again = vec!["--epochs", "4", "--resume-from", "1"];
    again.extend(fast);
    let status = host_python(&dir, &again, &stderr).wait();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&stderr).unwrap()
    );
    let after = lines(&metrics);
    let epochs: Vec<u64> = after
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
    assert_eq!(after[0], before[0], "the kept record is untouched");
    assert_eq!(
        lines(&dir.join("metrics.jsonl.after-checkpoint")),
        before[1..]
    );
    assert_eq!(lines(&dir.join("metrics.csv")).len(), 5);
    assert_eq!(
        lines(&dir.join("actions.jsonl")),
        ["{\"resumed_at\":5}"],
        "the resume is marked at the kept record's iteration"
    );
    let summary = json(&dir.join("summary.json"));
    assert_eq!(summary["state"], "finished");
    assert_eq!(summary["epochs_completed"], 4);

    // A resume from further than the records go is refused before anything changes.
    let mut too_far = vec!["--epochs", "9", "--resume-from", "7"];
    too_far.extend(fast);
    let status = host_python(&dir, &too_far, &stderr).wait();
    assert_eq!(status.code(), Some(2));
    let said = std::fs::read_to_string(&stderr).unwrap();
    assert!(said.contains("holds 4 whole records"), "{said}");
    assert_eq!(lines(&metrics), after);
}
