//! What the suites that run the `ltmlp` binary share: the small run they repeat (a 784-16-10
//! network for 3 epochs of 5 iterations, a few seconds) and how a finished child is shown when
//! an assertion about it fails.
#![allow(dead_code)]

use std::process::Output;

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
