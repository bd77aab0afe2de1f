//! Golden fixtures of the protocol (docs/protocol.md), checked both ways. This test is the
//! trainer of a tiny deterministic run under `ltmlp host`: a viewer attaches half-way and its
//! whole transcript (snapshot, then live events) is `tests/fixtures/protocol/session.jsonl`;
//! the folder the host writes is `tests/fixtures/protocol/run/`. Process ids, paths and the
//! host's wall clock are masked. Today's code must produce them byte for byte
//! (`UPDATE_FIXTURES=1 cargo test --test protocol_fixtures` rewrites them when a format change
//! is meant), and read them: `ls`, `report`, the `watch` follower, the wire decoder, the
//! snapshot and the dashboard.

mod cli_common;
mod host_common;
use host_common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ltmlp::remote::wire::{Reply, PROTOCOL_VERSION};
use ltmlp::train::{Event, RunState};

/// The files of the run folder kept as the fixture (a foreign run has no `config.toml`).
const RUN_FILES: &[&str] = &[
    "metrics.jsonl",
    "metrics.csv",
    "actions.jsonl",
    "summary.json",
    "run.json",
    "units.jsonl",
];

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/protocol")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Before the viewer attaches.
const FIRST: &[&str] = &[
    r#"{"declare":{"protocol":1,"producer":"golden","version":"1.0","epochs":2,"iterations_per_epoch":10,"batch_size":4,"weights":38,"data":"made-up","variant":"ab","precision":"f64","layers":[{"name":"in","units":3,"kind":"input"},{"name":"h1","units":4,"kind":"tanh"},{"name":"out","units":2,"kind":"softmax"}],"commands":["pause","resume","stop","set"],"settings":[{"key":"train.learning_rate","type":"float","min":0,"max":1,"value":"0.1","about":"step size"}],"config":{"seed":7}}}"#,
    r#"{"progress":{"epoch":0,"iteration":5,"batch_loss":0.75,"learning_rate":0.1,"momentum":0.9,"examples_per_second":40.0,"elapsed_seconds":0.5}}"#,
    r#"{"log":"warming up"}"#,
    r#"{"layers":{"iteration":10,"layers":[{"name":"h1","mean_out":0.25,"std_out":0.5,"mean_slope":0.8,"std_pre":1.0,"saturated_fraction":0.25,"collapsed_fraction":0.0,"per_unit":{"mean_out":[0.0,0.25,0.5,0.25],"std_out":[0.5,0.5,0.5,0.5],"saturated":[false,true,false,false]}}]}}"#,
    r#"{"epoch":{"epoch":1,"iteration":10,"train_loss":0.625,"train_error":37.5,"validation_loss":0.75,"validation_error":40.0,"test_loss":0.875,"test_error":50.0,"learning_rate":0.1,"momentum":0.9,"examples_per_second":40.0,"elapsed_seconds":1.0}}"#,
];

/// After the viewer's snapshot and the commands.
const SECOND: &[&str] = &[
    r#"{"progress":{"epoch":1,"iteration":15,"batch_loss":0.5,"learning_rate":0.05,"momentum":0.9,"examples_per_second":40.0,"elapsed_seconds":1.5}}"#,
    r#"{"epoch":{"epoch":2,"iteration":20,"train_loss":0.5,"train_error":25.0,"validation_loss":0.625,"validation_error":30.0,"test_loss":0.75,"test_error":35.0,"learning_rate":0.05,"momentum":0.9,"examples_per_second":40.0,"elapsed_seconds":2.0}}"#,
    r#"{"log":"done"}"#,
    r#"{"finished":{"state":"finished","iterations":20,"train_seconds":2.0}}"#,
];

/// Replaces the number or string after each `"key":` (compact or pretty) with `with`.
fn mask(text: &str, key: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let needle = format!("\"{key}\":");
    while let Some(at) = rest.find(&needle) {
        let value_start = at + needle.len();
        out.push_str(&rest[..value_start]);
        let after = &rest[value_start..];
        let spaces = after.len() - after.trim_start().len();
        out.push_str(&after[..spaces]);
        let value = &after[spaces..];
        let len = if let Some(string) = value.strip_prefix('"') {
            string.find('"').map_or(value.len(), |e| e + 2)
        } else {
            value.find([',', '}', '\n']).unwrap_or(value.len())
        };
        out.push_str(with);
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// What varies between two runs of the same story: the process, the folder, the wall clock.
fn masked(text: &str) -> String {
    let text = mask(text, "pid", "0");
    let text = mask(&text, "dir", "\"RUN\"");
    let text = mask(&text, "out_dir", "\"RUN\"");
    mask(&text, "wall_seconds", "0.0")
}

/// Plays the story against `ltmlp host` in `dir`; returns the viewer's transcript, masked.
fn record(dir: &Path, stderr: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(["host", s(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    let mut trainer = child.stdin.take().unwrap();
    let mut commands = BufReader::new(child.stdout.take().unwrap());
    let mut host = Reaped(child);
    let mut send = |line: &str| {
        trainer.write_all(line.as_bytes()).unwrap();
        trainer.write_all(b"\n").unwrap();
        trainer.flush().unwrap();
    };
    for line in FIRST {
        send(line);
    }
    // The viewer attaches once the hub holds the first epoch (the first part's last event).
    wait_until("the first epoch in the hub", || {
        let out = ltmlp(&["ctl", s(dir), "status"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|v| v["epoch"] == 1)
    });
    let mut viewer = ltmlp::remote::endpoint::connect(dir).unwrap();
    viewer
        .write_all(
            format!("{{\"hello\":{{\"version\":{PROTOCOL_VERSION},\"role\":\"viewer\"}}}}\n")
                .as_bytes(),
        )
        .unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(viewer).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut transcript = Vec::new();
    loop {
        let line = lines_rx.recv_timeout(DEADLINE).expect("the snapshot comes");
        let end = line.starts_with("{\"snapshot_end\"");
        transcript.push(line);
        if end {
            break;
        }
    }
    // A command the host refuses by itself, then one the trainer carries out.
    let out = ltmlp(&["ctl", s(dir), "toggle", "a"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let ctl = std::thread::spawn({
        let dir = dir.to_owned();
        move || ltmlp(&["ctl", s(&dir), "set", "train.learning_rate=0.05"])
    });
    let mut command = String::new();
    commands.read_line(&mut command).unwrap();
    assert_eq!(
        command,
        "{\"id\":1,\"command\":{\"set\":{\"key\":\"train.learning_rate\",\"value\":\"0.05\"}}}\n"
    );
    send(r#"{"ack":{"id":1,"ok":true,"message":"learning rate → 0.05","iteration":12}}"#);
    let out = ctl.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for line in SECOND {
        send(line);
    }
    drop(trainer);
    assert!(
        host.wait().success(),
        "{}",
        std::fs::read_to_string(stderr).unwrap()
    );
    let mut rest = String::new();
    commands.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "no other command reached the trainer");
    reader.join().unwrap();
    transcript.extend(lines_rx.try_iter());
    masked(&(transcript.join("\n") + "\n"))
}

#[test]
fn todays_host_produces_the_golden_session_and_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("golden");
    let session = record(&dir, &tmp.path().join("host.err"));
    let mut produced = vec![("session.jsonl".to_string(), session)];
    assert!(
        !dir.join("config.toml").exists(),
        "a foreign run has no config.toml: run.json describes it"
    );
    for name in RUN_FILES {
        let mut text = masked(&std::fs::read_to_string(dir.join(name)).unwrap());
        if *name == "run.json" {
            // The header's clock times (RFC 3339 strings).
            text = mask(&mask(&text, "started", "\"TIME\""), "ended", "\"TIME\"");
        }
        produced.push((format!("run/{name}"), text));
    }
    let update = std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1");
    for (name, text) in produced {
        let path = fixtures().join(&name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            golden == text,
            "{} differs from what today's ltmlp produces; if the change is meant, rewrite the \
             fixtures with UPDATE_FIXTURES=1 cargo test --test protocol_fixtures and say so in \
             docs/protocol.md. Produced:\n{text}",
            path.display()
        );
    }
}

/// The fixture folder, copied where a run would be: `runs/golden`.
fn fixture_run(tmp: &Path) -> PathBuf {
    let dir = tmp.join("runs/golden");
    std::fs::create_dir_all(&dir).unwrap();
    for name in RUN_FILES {
        std::fs::copy(fixtures().join("run").join(name), dir.join(name)).unwrap();
    }
    dir
}

#[test]
fn todays_ls_report_and_watch_read_the_golden_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_run(tmp.path());
    let runs = dir.parent().unwrap();
    let out = ltmlp(&["ls", s(runs)]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = listing
        .lines()
        .find(|l| l.contains("golden"))
        .unwrap_or_default();
    assert!(
        row.contains("finished") && row.contains("30.0000"),
        "{listing}"
    );
    let out = ltmlp(&["report", s(runs)]);
    assert!(out.status.success(), "{}", text(&out));
    let report = std::fs::read_to_string(runs.join("report.md")).unwrap();
    assert!(report.contains("1 runs finished"), "{report}");

    // What `ltmlp watch` shows of an ended run: its header, its evaluations, its end.
    let events = ltmlp::sink::follow::follow(&dir).unwrap();
    let mut epochs = Vec::new();
    let mut started = None;
    loop {
        match events
            .recv_timeout(DEADLINE)
            .expect("the follower ends the story")
        {
            Event::Started(info) => started = Some(info),
            Event::Epoch(m) => epochs.push((m.epoch, m.validation_error)),
            Event::Finished(summary) => {
                assert_eq!(summary.state, RunState::Finished);
                assert_eq!(summary.best_epoch, Some(2));
                break;
            }
            _ => {}
        }
    }
    let info = started.expect("a header");
    assert_eq!(info.preset, "golden");
    assert_eq!(epochs, [(1, Some(40.0)), (2, Some(30.0))]);
}

#[test]
fn todays_wire_snapshot_and_dashboard_read_the_golden_session() {
    let text = std::fs::read_to_string(fixtures().join("session.jsonl")).unwrap();
    let mut snapshot = ltmlp::remote::snapshot::Snapshot::default();
    let mut app = ltmlp::tui::App::new(ltmlp::net::Flags::NONE);
    let (mut begun, mut ended, mut events) = (false, false, 0);
    for (n, line) in text.lines().enumerate() {
        let reply: Reply =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("session.jsonl:{}: {e}", n + 1));
        match reply {
            Reply::Welcome { version, .. } => assert_eq!(version, PROTOCOL_VERSION),
            Reply::SnapshotBegin { resync } => {
                assert!(!resync);
                begun = true;
            }
            Reply::SnapshotEnd => ended = true,
            reply @ Reply::Event { .. } => {
                let event = reply.into_event().unwrap();
                snapshot.apply(&event);
                app.on_event(event);
                events += 1;
            }
            other => panic!("session.jsonl:{}: a viewer does not get {other:?}", n + 1),
        }
    }
    assert!(begun && ended && events > 10);
    let status = snapshot.status("RUN", 0, 0);
    assert_eq!(status.state, Some(RunState::Finished));
    assert_eq!(status.epoch, 2);
    assert_eq!(status.steering_actions, 2);
    assert_eq!(status.tunables[0].value, "0.05");
    assert_eq!(
        status.commands.as_deref(),
        Some(&["pause", "resume", "stop", "set"].map(String::from)[..])
    );
}
