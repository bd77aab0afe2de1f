//! The fault suite's seam: every write into a run folder passes through [`before_write`].
//! `LTMLP_FAULT=fail:N` makes the N-th write fail once with "no space left on device",
//! `LTMLP_FAULT=fail-from:N` makes it and every later write fail (a folder that became
//! unwritable), and `LTMLP_FAULT=crash:N` aborts the process just before the N-th write, as
//! `kill -9` would. Unset, it costs one atomic increment per write.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The environment variable that plans a fault.
pub const FAULT_VARIABLE: &str = "LTMLP_FAULT";

/// `ENOSPC`: what a full disk answers.
const NO_SPACE: i32 = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Fail(usize),
    FailFrom(usize),
    Crash(usize),
}

static WRITES: AtomicUsize = AtomicUsize::new(0);

fn planned() -> Option<Fault> {
    static PLAN: OnceLock<Option<Fault>> = OnceLock::new();
    *PLAN.get_or_init(|| {
        let value = std::env::var(FAULT_VARIABLE).ok()?;
        let (kind, n) = value.split_once(':')?;
        let n: usize = n.trim().parse().ok()?;
        match kind {
            "fail" => Some(Fault::Fail(n)),
            "fail-from" => Some(Fault::FailFrom(n)),
            "crash" => Some(Fault::Crash(n)),
            _ => None,
        }
    })
}

/// Counts one write into `path` and injects the planned fault, if this is its write.
pub fn before_write(path: &Path) -> std::io::Result<()> {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    let fail = || {
        eprintln!("ltmlp: injected fault at write {n} ({})", path.display());
        Err(std::io::Error::from_raw_os_error(NO_SPACE))
    };
    match planned() {
        Some(Fault::Fail(k)) if n == k => fail(),
        Some(Fault::FailFrom(k)) if n >= k => fail(),
        Some(Fault::Crash(k)) if n == k => {
            eprintln!("ltmlp: injected crash at write {n} ({})", path.display());
            std::process::abort()
        }
        _ => Ok(()),
    }
}
