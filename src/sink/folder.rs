//! Who may write a run folder: one process at a time, holding an advisory lock for the run's
//! whole life; a new run only into a folder that holds no run yet (or, with `--force`, after
//! the old one has been moved aside); default folder names that never collide.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The lock file inside every run folder (it stays after the run; the lock itself does not).
pub const LOCK_FILE: &str = "run.lock";

/// Most folders tried for one default name before giving up.
const MAX_NAME_SUFFIX: usize = 1000;

/// Why a run folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(
        "{dir}: cannot write the run folder ({error}); choose another --out folder or free some space"
    )]
    Io { dir: PathBuf, error: std::io::Error },
    #[error(
        "{dir}: another ltmlp is writing this run folder{holder}; wait for it to end (`ltmlp \
         watch {dir}` shows it), or choose another --out folder"
    )]
    Busy { dir: PathBuf, holder: String },
    #[error(
        "{dir}: already holds a run ({found}); continue it with --resume {dir}, choose another \
         --out folder, or add --force to move it aside first"
    )]
    Occupied { dir: PathBuf, found: String },
    #[error("{dir}: no run to resume here (no {missing})")]
    NotARun { dir: PathBuf, missing: String },
}

/// The exclusive right to write one run folder; released when dropped or when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir` (which must exist) or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, FolderError> {
        let path = dir.join(LOCK_FILE);
        let io = |error| FolderError::Io {
            dir: dir.to_owned(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut text = String::new();
            let _ = (&mut file).take(64).read_to_string(&mut text);
            let pid = text.trim();
            return Err(FolderError::Busy {
                dir: dir.to_owned(),
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            });
        }
        // The holder's pid, for the message a second writer gets.
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RunLock {
            dir: dir.to_owned(),
            _file: file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// What a folder holds besides the lock file, for messages ("config.toml, metrics.jsonl").
fn contents(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    names.sort();
    Ok(names)
}

/// Makes `dir` ready for a new run and locks it. An existing folder must be empty; with
/// `force`, a folder holding something is first renamed to `<dir>.old-<n>`.
pub fn claim_new(dir: &Path, force: bool) -> Result<RunLock, FolderError> {
    let io = |error| FolderError::Io {
        dir: dir.to_owned(),
        error,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let lock = RunLock::acquire(dir)?;
    let found = contents(dir).map_err(io)?;
    if found.is_empty() {
        return Ok(lock);
    }
    if !force {
        return Err(FolderError::Occupied {
            dir: dir.to_owned(),
            found: found.join(", "),
        });
    }
    drop(lock);
    let aside = free_name(dir, "old").ok_or_else(|| {
        io(std::io::Error::other(
            "no free name to move the old run aside to",
        ))
    })?;
    fs::rename(dir, &aside).map_err(io)?;
    eprintln!(
        "ltmlp: moved the old run in {} aside to {}",
        dir.display(),
        aside.display()
    );
    claim_new(dir, false)
}

/// Locks the run folder `dir` to continue the run in it.
pub fn claim_existing(dir: &Path) -> Result<RunLock, FolderError> {
    if !dir.join(super::CONFIG_FILE).is_file() {
        return Err(FolderError::NotARun {
            dir: dir.to_owned(),
            missing: super::CONFIG_FILE.to_string(),
        });
    }
    RunLock::acquire(dir)
}

/// `<dir>.<tag>-1`, `<dir>.<tag>-2`, … : the first name not taken.
fn free_name(dir: &Path, tag: &str) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    (1..=MAX_NAME_SUFFIX)
        .map(|n| dir.with_file_name(format!("{name}.{tag}-{n}")))
        .find(|p| !p.exists())
}

/// A fresh folder under `parent` named `base`, or `base-2`, `base-3`, … if taken; created
/// here (`create_dir` is atomic), so two runs started in the same second never share one.
pub fn create_unique(parent: &Path, base: &str) -> std::io::Result<PathBuf> {
    fs::create_dir_all(parent)?;
    for n in 1..=MAX_NAME_SUFFIX {
        let dir = if n == 1 {
            parent.join(base)
        } else {
            parent.join(format!("{base}-{n}"))
        };
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "{MAX_NAME_SUFFIX} folders named {base}… already exist under {}",
        parent.display()
    )))
}
