//! What the suites that run the `ltmlp` binary share: the small run they repeat (a 784-16-10
//! network for 3 epochs of 5 iterations, a few seconds), running the binary under a deadline,
//! and how a finished child is shown when an assertion about it fails.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `--set` arguments that make a preset's run small enough to repeat at every one of its writes.
pub const SMALL: &[&str] = &[
    "--set",
    "model.hidden=[16]",
    "--set",
    "train.epochs=3",
    "--set",
    "data.train_limit=1500",
    "--set",
    "train.train_eval_size=500",
    "--set",
    "stats.probe_size=100",
];

/// A finished child's exit code, stdout and stderr, for a failed assertion's message.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs ltmlp (in `cwd`, else the test's own directory) to its end, or kills it at the
/// deadline (and fails): a regression fails the test instead of hanging the suite.
pub fn ltmlp_within(cwd: Option<&Path>, args: &[&str], deadline: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ltmlp"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let child = command.spawn().expect("the binary runs");
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("ltmlp {args:?} hung; killed");
        }
    }
}
