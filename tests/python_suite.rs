//! The Python package's pytest suite (python/tests: the hooks, a watched run, steering through
//! `ltmlp ctl`, the crash cases) against this build's `ltmlp`, run with `$LTMLP_PYTHON` (else
//! `python3`); skipped, saying how to run it, where that Python cannot import torch, numpy
//! and pytest.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole suite takes about three minutes on two shared cores.
const DEADLINE: Duration = Duration::from_secs(900);

#[test]
fn the_python_package_suite_passes_against_this_build() {
    let python = std::env::var("LTMLP_PYTHON").unwrap_or_else(|_| "python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import torch, numpy, pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!(
            "skipped the PyTorch tests (python/tests): {python} cannot import torch, numpy and \
             pytest. To run them: python3 -m venv .venv && .venv/bin/pip install torch numpy \
             pytest && LTMLP_PYTHON=$PWD/.venv/bin/python cargo test --release --test \
             python_suite (.ci/run does)"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::env::temp_dir().join(format!("ltmlp-python-suite-{}.log", std::process::id()));
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "python/tests",
        ])
        .current_dir(root)
        .env("LTMLP_BIN", env!("CARGO_BIN_EXE_ltmlp"))
        .env("PYTHONPATH", root.join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("the Python runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match status {
        Some(s) if s.success() => println!("{said}"),
        Some(s) => panic!("pytest python/tests failed ({s}):\n{said}"),
        None => panic!(
            "pytest python/tests did not end within {} s:\n{said}",
            DEADLINE.as_secs()
        ),
    }
}
