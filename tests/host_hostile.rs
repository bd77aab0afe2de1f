//! A hostile trainer against `ltmlp host` (the host's own stdin and stdout as its pipes):
//! malformed lines, a 100 MB line, events out of order, non-UTF-8, a first line that is no
//! declaration, a trainer that stops reading commands or never answers, and one whose output
//! ends without `finished`. Each gets a clear message on stderr; no file is corrupted; the
//! host never hangs (every child has a deadline).

mod cli_common;
mod host_common;
use host_common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const DECLARE: &str = r#"{"declare":{"protocol":1,"producer":"hostile","version":"0","epochs":5,"layers":[{"name":"in","units":2,"kind":"input"},{"name":"h","units":2,"kind":"tanh"},{"name":"out","units":2,"kind":"softmax"}],"commands":["pause","stop"]}}"#;

fn epoch(n: usize, iteration: u64) -> String {
    format!(
        r#"{{"epoch":{{"epoch":{n},"iteration":{iteration},"train_loss":0.5,"validation_loss":0.6,"validation_error":20.0}}}}"#
    )
}

/// `ltmlp host DIR` with this test as its trainer: (host, its stdin, its stderr file).
fn host(dir: &Path, stderr: &Path, stdout: Stdio) -> (Reaped, ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(["host", s(dir)])
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("the binary runs");
    let stdin = child.stdin.take().unwrap();
    (Reaped(child), stdin)
}

fn send(stdin: &mut ChildStdin, line: &str) {
    stdin.write_all(line.as_bytes()).unwrap();
    stdin.write_all(b"\n").unwrap();
    stdin.flush().unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn junk_overlong_non_utf8_and_out_of_order_lines_are_each_named_and_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = tmp.path().join("host.err");
    let (mut host, mut stdin) = host(&dir, &err, Stdio::null());
    send(&mut stdin, DECLARE); // line 1
    send(&mut stdin, &epoch(1, 10)); // 2
    send(&mut stdin, "{this is not json"); // 3
    stdin.write_all(b"{\"log\":\"caf\xe9\"}\n").unwrap(); // 4: Latin-1, not UTF-8
                                                          // 5: 100 MB without a newline until its end, written in pieces.
    let piece = vec![b'x'; 1 << 20];
    let started = Instant::now();
    for _ in 0..100 {
        stdin.write_all(&piece).unwrap();
    }
    stdin.write_all(b"\n").unwrap();
    assert!(started.elapsed() < DEADLINE);
    send(&mut stdin, &epoch(3, 30)); // 6: epoch 2 is missing
    send(&mut stdin, &epoch(1, 40)); // 7: epoch 1 again
    send(&mut stdin, r#"{"progress":{"epoch":1,"iteration":5}}"#); // 8: back in time
    send(
        &mut stdin,
        r#"{"epoch":{"epoch":2,"iteration":20,"train_loss":0.5,"validation_loss":0.6,"validation_error":250}}"#,
    ); // 9
    send(&mut stdin, r#"{"state":"finished"}"#); // 10
    send(
        &mut stdin,
        r#"{"layers":{"iteration":20,"layers":[{"name":"nope"}]}}"#,
    ); // 11
    send(&mut stdin, r#"{"ack":{"id":99,"ok":true}}"#); // 12
    send(&mut stdin, DECLARE); // 13
    send(
        &mut stdin,
        r#"{"epoch":{"epoch":2,"iteration":20,"train_loss":0.5,"validation_loss":0.6,"extra":1}}"#,
    ); // 14
    send(&mut stdin, &epoch(2, 20)); // 15: the right one
    send(&mut stdin, r#"{"finished":{"state":"finished"}}"#);
    drop(stdin);
    let status = host.wait();
    let stderr = read(&err);
    assert!(status.success(), "{stderr}");
    for (line, says) in [
        (3, "not a trainer event"),
        (4, "not UTF-8"),
        (5, "longer than 67108864 bytes"),
        (6, "epoch 3 where epoch 2 comes next"),
        (7, "epoch 1 where epoch 2 comes next"),
        (8, "progress at iteration 5 after iteration 10"),
        (9, "[0, 100]"),
        (10, "its end comes as a `finished` event"),
        (11, "\"nope\" is not a declared layer"),
        (12, "an answer to command 99"),
        (13, "a second `declare`"),
        (14, "unknown field `extra`"),
    ] {
        let prefix = format!("ltmlp host: trainer line {line}: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(says)),
            "line {line} should be refused with {says:?}; stderr:\n{stderr}"
        );
    }
    // Exactly the two good evaluations, each a whole record; the summary agrees.
    let records: Vec<Value> = read(&dir.join("metrics.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let epochs: Vec<u64> = records
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2]);
    assert_eq!(read(&dir.join("metrics.csv")).lines().count(), 3);
    let summary: Value = serde_json::from_str(&read(&dir.join("summary.json"))).unwrap();
    assert_eq!(summary["state"], "finished");
    assert_eq!(summary["epochs_completed"], 2);
    assert!(stderr.len() < 100_000, "the long line is not echoed");
}

#[test]
fn a_first_line_that_is_no_declaration_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (first, says) in [
        (
            r#"{"log":"hello"}"#.to_string(),
            "the first event must be `declare`",
        ),
        (
            DECLARE.replace("\"protocol\":1", "\"protocol\":7"),
            "protocol 7",
        ),
        (
            DECLARE.replace("\"pause\"", "\"launch\""),
            "`launch` is not a command",
        ),
        ("\u{0}".to_string(), "not a trainer event"),
    ] {
        let dir = tmp.path().join("run");
        let err = tmp.path().join("host.err");
        let (mut host, mut stdin) = host(&dir, &err, Stdio::null());
        send(&mut stdin, &first);
        drop(stdin);
        let status = host.wait();
        let stderr = read(&err);
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("nothing was written"),
            "{stderr}"
        );
        assert!(!dir.exists(), "{first}: the folder was not created");
    }
}

#[test]
fn a_trainer_that_never_answers_or_stops_reading_gets_refusals_and_never_blocks_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = tmp.path().join("host.err");
    // Commands go to a pipe the test reads but never answers.
    let (mut host, mut stdin) = host(&dir, &err, Stdio::piped());
    let mut commands = host.0.stdout.take().unwrap();
    send(&mut stdin, DECLARE);
    wait_until("the hosted run to answer", || answers(&dir));
    let started = Instant::now();
    let out = ltmlp(&["ctl", s(&dir), "pause"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not answer within 10 s"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() >= Duration::from_secs(10));
    let mut sent = [0u8; 256];
    let n = commands.read(&mut sent).unwrap();
    assert_eq!(
        std::str::from_utf8(&sent[..n]).unwrap(),
        "{\"id\":1,\"command\":\"pause\"}\n"
    );
    // A late answer is dropped with a message.
    send(&mut stdin, r#"{"ack":{"id":1,"ok":true}}"#);
    // Now the trainer stops reading commands altogether.
    drop(commands);
    let out = ltmlp(&["ctl", s(&dir), "pause"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not read its commands"),
        "{}",
        text(&out)
    );
    send(&mut stdin, &epoch(1, 10));
    send(&mut stdin, r#"{"finished":{"state":"finished"}}"#);
    drop(stdin);
    assert!(host.wait().success());
    let stderr = read(&err);
    assert!(
        stderr.contains("an answer to command 1, which waits for none"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the trainer does not read its commands"),
        "{stderr}"
    );
    let actions = read(&dir.join("actions.jsonl"));
    assert_eq!(actions.lines().count(), 2, "{actions}");
    assert!(
        actions.lines().all(|l| l.contains("\"ok\":false")),
        "{actions}"
    );
}

#[test]
fn output_that_ends_without_finished_leaves_a_complete_stopped_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let err = tmp.path().join("host.err");
    let (mut host, mut stdin) = host(&dir, &err, Stdio::null());
    send(&mut stdin, DECLARE);
    send(&mut stdin, &epoch(1, 10));
    // A torn last line, then the end.
    stdin.write_all(br#"{"epoch":{"epoch":2,"iter"#).unwrap();
    drop(stdin);
    let status = host.wait();
    let stderr = read(&err);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("trainer line 3: not a trainer event"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(&read(&dir.join("summary.json"))).unwrap();
    assert_eq!(summary["state"], "stopped");
    assert!(
        summary["reason"]
            .as_str()
            .unwrap()
            .contains("the trainer ended without a `finished` event"),
        "{summary}"
    );
    assert_eq!(summary["epochs_completed"], 1);
    assert_eq!(read(&dir.join("metrics.jsonl")).lines().count(), 1);
}
