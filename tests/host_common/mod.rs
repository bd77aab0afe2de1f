//! What the suites of `ltmlp host` share: the binary with a deadline on every call, a hosted
//! run that is killed when its test ends, and waiting for a run folder to show something.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// No ltmlp call, and no wait for a hosted run, may take longer.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python trainer of tests/fixtures.
pub fn trainer_script() -> PathBuf {
    repo().join("tests/fixtures/trainer.py")
}

/// Whether python3 runs here; says so when it does not.
pub fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: python3 is not installed");
    }
    ok
}

/// A child process that is killed when the test ends, however it ends.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Waits for the child's end, or kills it at the deadline (and fails).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("the child can be waited for") {
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.0.kill();
                panic!("ltmlp host did not end within {DEADLINE:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `ltmlp host DIR -- python3 trainer.py ARGS…`, its stderr into `stderr`.
pub fn host_python(dir: &Path, args: &[&str], stderr: &Path) -> Reaped {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ltmlp"));
    command
        .args(["host", dir.to_str().unwrap(), "--", "python3"])
        .arg(trainer_script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    Reaped(command.spawn().expect("the binary runs"))
}

/// Runs ltmlp to its end, or kills it at the deadline (and fails).
pub fn ltmlp(args: &[&str]) -> Output {
    crate::cli_common::ltmlp_within(None, args, DEADLINE)
}

/// Polls until `check` holds, or fails saying what was awaited.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines of a file (none while it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The run in `dir` answers `ctl status`.
pub fn answers(dir: &Path) -> bool {
    ltmlp(&["ctl", dir.to_str().unwrap(), "status"])
        .status
        .success()
}

pub use crate::cli_common::text;
