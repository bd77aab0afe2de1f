//! End to end: the real binary under tmux. Pause, switch α off and on, open the help, stop
//! the run from the quit question; then check the screens and the run's saved metrics (both switches recorded, with an output
//! change below 1e-4). Skips with a message only if tmux is not installed.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The test machine is slow and this is a debug build: wait generously.
const TIMEOUT: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(150);
const SESSION: &str = "ltmlp";

/// A private tmux server, killed when dropped (also when the test fails).
struct Tmux {
    socket: String,
    /// A string only this test's ltmlp has on its command line (its run folder).
    marker: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// A detached session of 100×30 running `command` in sh.
    fn start(&self, session: &str, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            "sh",
            "-c",
            command,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
    }

    fn keys(&self, keys: &[&str]) {
        self.keys_to(SESSION, keys)
    }

    fn keys_to(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
    }

    fn screen(&self) -> String {
        self.screen_of(SESSION)
    }

    fn screen_of(&self, session: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", session]).stdout)
            .into_owned()
    }

    /// Polls the screen until it contains `text`; returns that screen.
    fn wait_for(&self, text: &str) -> String {
        self.wait_in(SESSION, text, true)
    }

    /// Polls the screen until `text` is gone.
    fn wait_until_gone(&self, text: &str) -> String {
        self.wait_in(SESSION, text, false)
    }

    fn wait_in(&self, session: &str, text: &str, present: bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen_of(session);
            if screen.contains(text) == present {
                return screen;
            }
            if start.elapsed() > TIMEOUT {
                let what = if present { "for" } else { "for the end of" };
                panic!("timed out waiting {what} {text:?}; the screen was:\n{screen}");
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        // Whatever happened inside tmux, leave no trainer behind.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &self.marker])
            .status();
    }
}

/// The switch events of `metrics.jsonl`: (param, on, max_output_change).
fn switches(run: &Path) -> Vec<(String, bool, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    let mut found = Vec::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        for e in record["transform_events"].as_array().into_iter().flatten() {
            let switch = &e["cause"]["switch"];
            if switch.is_object() {
                found.push((
                    switch["param"].as_str().unwrap_or("?").to_string(),
                    switch["on"].as_bool().unwrap_or(false),
                    e["max_output_change"].as_f64().unwrap_or(f64::NAN),
                ));
            }
        }
    }
    found
}

#[test]
fn pause_switch_help_and_quit_under_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("SKIPPED: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let tmux = Tmux {
        socket: format!("ltmlp-e2e-{}", std::process::id()),
        marker: run.display().to_string(),
    };
    // Many epochs, so that training is still going when the keys arrive; the test quits.
    let command = format!(
        "'{}' tui --out '{}' --set train.epochs=400; echo LTMLP-EXIT:$?; sleep 600",
        env!("CARGO_BIN_EXE_ltmlp"),
        run.display()
    );
    tmux.start(SESSION, &command);

    // The run has started when its name is on screen (the state shows before).
    let screen = tmux.wait_for("default [ab]");
    assert!(screen.contains("RUNNING"), "{screen}");
    assert!(screen.contains("run folder"), "{screen}");

    tmux.keys(&["Space"]);
    let screen = tmux.wait_for("PAUSED");
    assert!(screen.contains("paused"), "the log says so:\n{screen}");

    tmux.keys(&["a"]);
    let screen = tmux.wait_for("α switched off");
    assert!(
        screen.contains("α off"),
        "the transforms panel shows α off:\n{screen}"
    );
    tmux.keys(&["a"]);
    let screen = tmux.wait_for("α switched on");
    assert!(screen.contains("α on"), "{screen}");

    // Resume until an evaluation has written both switches to the metrics.
    tmux.keys(&["Space"]);
    tmux.wait_for("RUNNING");
    let start = Instant::now();
    while switches(&run).len() < 2 {
        assert!(
            start.elapsed() < TIMEOUT,
            "the switches never reached metrics.jsonl; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(POLL);
    }

    tmux.keys(&["?"]);
    let help = tmux.wait_for("Keys (? or esc: close)");
    assert!(help.contains("switch α / β / γ on or off"), "{help}");
    tmux.keys(&["Escape"]);
    // Let the escape arrive alone: escape followed at once by `q` reads as alt-q.
    tmux.wait_until_gone("Keys (? or esc: close)");

    tmux.keys(&["q"]);
    tmux.wait_for("Stop the run, or detach?");
    tmux.keys(&["s"]);
    let after = tmux.wait_for("LTMLP-EXIT:");
    assert!(after.contains("LTMLP-EXIT:0"), "{after}");
    assert!(
        after.contains("stopped after"),
        "the summary is printed:\n{after}"
    );
    assert!(after.contains(&run.display().to_string()), "{after}");

    let found = switches(&run);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("alpha", false));
    assert_eq!((found[1].0.as_str(), found[1].1), ("alpha", true));
    for (_, _, change) in &found {
        assert!(
            *change < 1e-4,
            "output change {change} (switches preserve the function)"
        );
    }
    let summary = std::fs::read_to_string(run.join("summary.json")).expect("summary.json");
    assert!(summary.contains("\"stopped\""), "{summary}");
    for file in ["config.toml", "metrics.csv"] {
        assert!(run.join(file).exists(), "{file} is written");
    }
}

/// `ctl DIR status` as JSON.
fn status(run: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(["ctl", &run.display().to_string(), "status"])
        .output()
        .expect("ltmlp runs");
    assert!(out.status.success(), "ctl status: {out:?}");
    serde_json::from_slice(&out.stdout).expect("status is JSON")
}

#[test]
fn a_background_run_outlives_its_viewers_and_their_terminals() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("SKIPPED: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let tmux = Tmux {
        socket: format!("ltmlp-attach-{}", std::process::id()),
        marker: run.display().to_string(),
    };
    let bin = env!("CARGO_BIN_EXE_ltmlp");
    let started = Command::new(bin)
        .args([
            "run",
            "presets/tiny.toml",
            "--background",
            "--set",
            "train.epochs=100000",
        ])
        .arg("--out")
        .arg(&run)
        .output()
        .expect("ltmlp runs");
    assert!(started.status.success(), "{started:?}");
    let said = String::from_utf8_lossy(&started.stdout);
    assert!(said.contains("ltmlp attach"), "{said}");

    // The first viewer switches α off and detaches.
    let attach = format!(
        "'{bin}' attach '{}'; echo LTMLP-EXIT:$?; sleep 600",
        run.display()
    );
    tmux.start("first", &attach);
    tmux.wait_in("first", "tiny [ab]", true);
    tmux.keys_to("first", &["a"]);
    tmux.wait_in("first", "α switched off", true);
    tmux.keys_to("first", &["d"]);
    let after = tmux.wait_in("first", "LTMLP-EXIT:", true);
    assert!(after.contains("LTMLP-EXIT:0"), "{after}");
    assert_eq!(status(&run)["state"], "running");

    // A second viewer, whose terminal is then killed: the run goes on.
    tmux.start("second", &attach);
    tmux.wait_in("second", "tiny [ab]", true);
    // A read-only viewer at the same time: no steering keys in its footer.
    let watch = format!("'{bin}' watch '{}'; sleep 600", run.display());
    tmux.start("watcher", &watch);
    let watching = tmux.wait_in("watcher", "tiny [ab]", true);
    assert!(!watching.contains("pause"), "{watching}");
    let start = Instant::now();
    while status(&run)["viewers"] != 2 {
        assert!(start.elapsed() < TIMEOUT, "two viewers: {}", status(&run));
        std::thread::sleep(POLL);
    }
    tmux.run(&["kill-session", "-t", "second"]);
    let start = Instant::now();
    while status(&run)["viewers"] != 1 {
        assert!(
            start.elapsed() < TIMEOUT,
            "the killed viewer left: {}",
            status(&run)
        );
        std::thread::sleep(POLL);
    }
    let before = status(&run)["iteration"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let now = status(&run);
    assert_eq!(now["state"], "running");
    assert!(
        now["iteration"].as_u64().unwrap() > before,
        "it trains on: {now}"
    );

    // A new viewer sees the switch in the run's history.
    tmux.start("third", &attach);
    let screen = tmux.wait_in("third", "α switched off", true);
    assert!(screen.contains("α off"), "{screen}");
    tmux.keys_to("third", &["q"]);
    tmux.wait_in("third", "Stop the run, or detach?", true);
    tmux.keys_to("third", &["s"]);
    let after = tmux.wait_in("third", "LTMLP-EXIT:", true);
    assert!(after.contains("LTMLP-EXIT:0"), "{after}");
    let summary = std::fs::read_to_string(run.join("summary.json")).expect("summary.json");
    assert!(summary.contains("\"stopped\""), "{summary}");
    assert!(
        !run.join("control.sock").exists(),
        "the socket is removed at the end"
    );
}
