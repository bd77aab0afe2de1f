//! The control endpoint from outside, as scripts and other users meet it: `ctl` steers a
//! background run and is told what happened; a replay repeats a steered run exactly; hostile
//! messages get error replies and leave training alone; another uid is refused.

mod cli_common;
use cli_common::text;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

fn ltmlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .output()
        .expect("ltmlp runs")
}

/// A background run of the tiny preset, long enough to be steered; stopped when dropped.
struct Background {
    dir: PathBuf,
    _root: tempfile::TempDir,
}

impl Background {
    fn start(extra: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        let mut args = vec![
            "run",
            "presets/tiny.toml",
            "--background",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = ltmlp(&args);
        assert!(out.status.success(), "{}", text(&out));
        Background { dir, _root: root }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["ctl", self.dir.to_str().unwrap()];
        all.extend_from_slice(args);
        ltmlp(&all)
    }

    fn status(&self) -> serde_json::Value {
        let out = self.ctl(&["status"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until the run has ended and its process has gone.
    fn wait_for_end(&self) {
        let start = Instant::now();
        while self.dir.join("control.sock").exists() {
            assert!(start.elapsed() < TIMEOUT, "the run did not end");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Background {
    /// Stops the run and waits for its process to exit before the folder is removed: a run
    /// whose folder vanished while it wrote its last files would wait to write them forever.
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("run.lock"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if self.dir.join("control.sock").exists() {
            let _ = self.ctl(&["stop"]);
        }
        let Some(pid) = pid else { return };
        // A zombie (exited, not yet reaped by whoever adopted it) counts as gone.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let start = Instant::now();
        while alive() && start.elapsed() < TIMEOUT {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

#[test]
fn ctl_steers_a_background_run_and_says_what_the_trainer_did() {
    let run = Background::start(&["--set", "train.epochs=100000"]);
    let out = run.ctl(&["pause"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "paused");
    assert_eq!(run.status()["state"], "paused");

    let out = run.ctl(&["toggle", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("α switched off"));

    // A value the preset rules refuse is refused with the preset's message, exit 1.
    let out = run.ctl(&["set", "train.momentum=1.2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[0, 1)"),
        "{}",
        text(&out)
    );
    let out = run.ctl(&["set", "model.hidden=[4]"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot change"));

    let out = run.ctl(&["set", "train.momentum=0.5"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = run.status();
    let momentum = status["tunables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "train.momentum")
        .unwrap()["value"]
        .clone();
    assert_eq!(momentum, "0.5", "{status}");
    assert_eq!(status["flags"]["alpha"], false, "{status}");

    let out = run.ctl(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    run.wait_for_end();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["state"], "stopped");
    // pause, toggle, two refusals, the accepted set, stop.
    assert_eq!(summary["steering_actions"], 6, "{summary}");

    // No run there any more: a clear message, not a hang.
    let out = run.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live run"));
}

#[test]
fn a_momentum_out_of_range_is_refused_with_the_presets_message_and_recorded() {
    use ltmlp::protocol::Command as Steering;
    let run = Background::start(&["--set", "train.epochs=100000"]);
    let steer = |command| ltmlp::remote::client::steer(&run.dir, command, TIMEOUT).unwrap();
    let refused = steer(Steering::SetMomentum(1.5));
    assert!(!refused.ok, "{refused:?}");
    // The preset's own rule and wording (`--set train.momentum=1.5` says the same).
    let preset_says = ltmlp(&["run", "presets/tiny.toml", "--set", "train.momentum=1.5"]);
    assert_eq!(preset_says.status.code(), Some(2), "{}", text(&preset_says));
    let preset_says = String::from_utf8_lossy(&preset_says.stderr).to_string();
    assert!(
        refused.message.contains("train.momentum")
            && refused.message.contains("1.5 must be in [0, 1)")
            && preset_says.contains(&refused.message),
        "{refused:?} / {preset_says}"
    );
    let accepted = steer(Steering::SetMomentum(0.5));
    assert!(accepted.ok, "{accepted:?}");
    assert_eq!(steer(Steering::Stop).command, Steering::Stop);
    run.wait_for_end();

    let actions = std::fs::read_to_string(run.dir.join("actions.jsonl")).unwrap();
    let recorded: Vec<serde_json::Value> = actions
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["steer"].clone())
        .collect();
    assert_eq!(recorded[0]["command"]["set_momentum"], 1.5, "{actions}");
    assert_eq!(recorded[0]["ok"], false, "{actions}");
    assert_eq!(
        recorded[0]["message"],
        refused.message.as_str(),
        "{actions}"
    );
    assert_eq!(recorded[1]["command"]["set_momentum"], 0.5, "{actions}");
    assert_eq!(recorded[1]["ok"], true, "{actions}");
}

/// metrics.jsonl without the fields that measure time.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let m = v.as_object_mut().unwrap();
            m.remove("elapsed_seconds");
            m.remove("wall");
            m.remove("examples_per_second");
            v
        })
        .collect()
}

#[test]
fn a_replay_repeats_a_steered_run_exactly() {
    let run = Background::start(&["--set", "train.epochs=100000"]);
    let steps = [
        vec!["toggle", "a"],
        vec!["set", "train.momentum=0.3"],
        vec!["reestimate"],
        vec!["set", "train.input_noise=0.1"],
        vec!["toggle", "a"],
        vec!["stop"],
    ];
    for step in &steps {
        let out = run.ctl(step);
        assert!(out.status.success(), "{step:?}: {}", text(&out));
    }
    run.wait_for_end();
    let original = metrics(&run.dir);
    assert!(!original.is_empty());

    let again = run.dir.with_file_name("replayed");
    let out = ltmlp(&[
        "run",
        "--replay",
        run.dir.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 recorded actions"));
    assert_eq!(metrics(&again), original);
}

fn raw_connection(dir: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let stream = UnixStream::connect(dir.join("control.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn reply(reader: &mut BufReader<UnixStream>) -> serde_json::Value {
    let mut line = String::new();
    // A closed connection reads as null.
    if reader.read_line(&mut line).is_err() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&line).unwrap_or(serde_json::Value::Null)
}

#[test]
fn hostile_messages_get_error_replies_and_training_goes_on() {
    let run = Background::start(&["--set", "train.epochs=100000"]);

    // No hello: refused and closed.
    let (mut s, mut r) = raw_connection(&run.dir);
    s.write_all(b"{\"command\":\"stop\"}\n").unwrap();
    assert!(reply(&mut r)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("hello"));

    // A wrong protocol version.
    let (mut s, mut r) = raw_connection(&run.dir);
    s.write_all(b"{\"hello\":{\"version\":999,\"role\":\"control\"}}\n")
        .unwrap();
    assert!(reply(&mut r)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("version"));

    // After hello: junk, binary and unknown commands get errors; the connection stays.
    let (mut s, mut r) = raw_connection(&run.dir);
    s.write_all(b"{\"hello\":{\"version\":1,\"role\":\"control\"}}\n")
        .unwrap();
    assert!(reply(&mut r)["welcome"].is_object());
    for junk in [
        &b"not json\n"[..],
        &b"\xff\xfe\x00\n"[..],
        &b"{\"command\":\"format_disk\"}\n"[..],
        &b"{\"command\":{\"set_momentum\":\"x\"}}\n"[..],
    ] {
        s.write_all(junk).unwrap();
        let mut got = reply(&mut r);
        // Events may come between; skip to the reply.
        while got.get("event").is_some() {
            got = reply(&mut r);
        }
        assert!(got["error"].is_object(), "{junk:?} → {got}");
    }
    // An oversized line: an error, then the run closes this connection.
    let huge = vec![b'x'; 200 * 1024];
    let _ = s.write_all(&huge);
    let _ = s.write_all(b"\n");
    let mut saw_error = false;
    for _ in 0..10_000 {
        let got = reply(&mut r);
        if got.is_null() {
            break;
        }
        if got["error"].is_object() {
            saw_error = true;
        }
    }
    assert!(saw_error, "an oversized message gets an error reply");

    let before = run.status()["iteration"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let now = run.status();
    assert_eq!(now["state"], "running", "{now}");
    assert!(now["iteration"].as_u64().unwrap() > before, "{now}");
}

#[test]
fn a_client_of_another_uid_is_refused() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !root || !setpriv {
        println!("SKIPPED: needs root and setpriv to act as another user");
        return;
    }
    let run = Background::start(&["--set", "train.epochs=100000"]);
    // Loosen every mode on the way: only the peer-credential check is left to refuse.
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = bin_dir.path().join("ltmlp");
    std::fs::copy(env!("CARGO_BIN_EXE_ltmlp"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    open(bin_dir.path(), 0o755).unwrap();
    open(&bin, 0o755).unwrap();
    open(run.dir.parent().unwrap(), 0o777).unwrap();
    open(&run.dir, 0o777).unwrap();
    open(&run.dir.join("control.sock"), 0o777).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["ctl", run.dir.to_str().unwrap(), "stop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("refused") && said.contains("uid 65534"),
        "{said}"
    );
    assert_eq!(run.status()["state"], "running");
}

/// A run whose folder is deleted under it (here while paused) cannot write its last files;
/// SIGTERM still ends it: the endpoint's acceptor is woken without the vanished socket file.
#[test]
fn a_run_whose_folder_vanished_still_ends_on_sigterm() {
    let run = Background::start(&["--set", "train.epochs=100000"]);
    let out = run.ctl(&["pause"]);
    assert!(out.status.success(), "{}", text(&out));
    let pid: u32 = std::fs::read_to_string(run.dir.join("run.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::fs::remove_dir_all(&run.dir).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let start = Instant::now();
    while !gone() {
        if start.elapsed() > TIMEOUT {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the run ignored SIGTERM after its folder vanished");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
