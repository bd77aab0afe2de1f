//! End to end: the real binary under tmux. Pause, switch α off and on, open the help, quit;
//! then check the screens and the run's saved metrics (both switches recorded, with an output
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

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", SESSION];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {out:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", SESSION]).stdout)
            .into_owned()
    }

    /// Polls the screen until it contains `text`; returns that screen.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, true)
    }

    /// Polls the screen until `text` is gone.
    fn wait_until_gone(&self, text: &str) -> String {
        self.wait_until(text, false)
    }

    fn wait_until(&self, text: &str, present: bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
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
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &command,
    ]);
    assert!(out.status.success(), "tmux new-session: {out:?}");

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
    tmux.wait_for("Quit?");
    tmux.keys(&["y"]);
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
