//! Detached runs: `ltmlp run … --background` and the dashboard start the trainer as a process
//! of its own session (no terminal, so no hang-up), wait until its control endpoint is open,
//! and leave it training. Its output goes to `output.log` in the run folder.
//!
//! The child reports anything that stops it before training on its stderr, which the parent
//! reads; once its endpoint is open it moves its stdout and stderr to `output.log`, which ends
//! the parent's read.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::endpoint;

/// The hidden flag that tells `ltmlp run` it is the detached child.
pub const DETACHED_FLAG: &str = "--detached";
/// A detached run's stdout and stderr.
pub const OUTPUT_LOG: &str = "output.log";
/// How long a detached child may take to load its data and open its endpoint.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// A run training in the background.
#[derive(Debug)]
pub struct Detached {
    pub dir: PathBuf,
    pub pid: u32,
}

/// Starts `ltmlp run ARGS --detached` in a session of its own, training into `dir`, and waits
/// until it can be attached to. Its early failure (a bad preset, missing data, a busy folder)
/// is returned as the error, with its own words.
pub fn start(args: Vec<OsString>, dir: &Path) -> anyhow::Result<Detached> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg("run")
        .args(args)
        .arg(DETACHED_FLAG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let started = Instant::now();
    let mut early = String::new();
    if let Some(mut err) = child.stderr.take() {
        // Bounded: a child that prints without end is not read past this.
        let _ = (&mut err).take(1 << 20).read_to_string(&mut early);
    }
    loop {
        if let Some(status) = child.try_wait()? {
            let words = early.trim();
            anyhow::bail!(
                "{}",
                if words.is_empty() {
                    format!("the background run ended at once ({status})")
                } else {
                    words.trim_start_matches("error: ").to_string()
                }
            );
        }
        if endpoint::connect(dir).is_ok() {
            return Ok(Detached {
                dir: dir.to_path_buf(),
                pid: child.id(),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            anyhow::bail!(
                "the background run (pid {}) did not open {} within {} s; see {}",
                child.id(),
                dir.join(endpoint::SOCKET_FILE).display(),
                START_TIMEOUT.as_secs(),
                dir.join(OUTPUT_LOG).display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// In the detached child, once its endpoint is open: stdout and stderr to `output.log`, which
/// also tells the parent that the start succeeded.
pub fn redirect_output(dir: &Path) -> std::io::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(OUTPUT_LOG))?;
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 onto the standard descriptors of our own process.
        if unsafe { libc::dup2(log.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The lines a user needs after starting a background run.
pub fn started_text(run: &Detached) -> String {
    let dir = run.dir.display();
    format!(
        "training in the background (pid {}): {dir}\n  watch and steer: ltmlp attach {dir}\n  \
         script:          ltmlp ctl {dir} status|pause|resume|stop\n  output:          {dir}/{OUTPUT_LOG}",
        run.pid
    )
}
