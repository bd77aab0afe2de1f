//! Who may write a run folder: one process at a time, holding an advisory lock on the folder
//! itself for the run's whole life (and, for older ltmlp versions, on `run.lock`); a new run
//! only into a folder that holds no run yet (or, with `--force`, after the old one has been
//! moved aside); default folder names that never collide and never leave their parent.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file inside every run folder (it stays after the run; the lock itself does not).
/// It holds the writer's pid alone, as older ltmlp versions and scripts read it.
pub const LOCK_FILE: &str = "run.lock";
/// `<pid> on <host>` of the process writing the folder, removed when it lets go: on a shared
/// filesystem, where a lock taken on one host may not be seen on another, this says that a
/// run on another host holds the folder.
pub const WRITER_FILE: &str = "run.writer";

/// Most folders tried for one default name before giving up.
const MAX_NAME_SUFFIX: usize = 1000;
/// Longest folder-name part taken from a preset name (the time stamp and suffix follow it).
const MAX_NAME_CHARS: usize = 100;

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
        "{dir}: ltmlp pid {pid} on host {host} is writing this run folder (a lock taken there \
         does not reach this host); wait for it to end, or, if it has ended without saying so \
         (host down, kill -9), remove {dir}/{WRITER_FILE} and try again"
    )]
    OtherHost {
        dir: PathBuf,
        pid: String,
        host: String,
    },
    #[error(
        "{dir}: already holds a run ({found}); continue it with --resume {dir}, choose another \
         --out folder, or add --force to move it aside first"
    )]
    Occupied { dir: PathBuf, found: String },
    #[error("{dir}: no run to resume here (no {missing})")]
    NotARun { dir: PathBuf, missing: String },
    #[error(
        "{path}: is a symbolic link; ltmlp writes a run's files only inside its folder: replace \
         the link with the file it points to, or start a new run"
    )]
    Linked { path: PathBuf },
}

/// The exclusive right to write one run folder; released when dropped or when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
    /// The folder itself, locked: removing a file in it cannot undo this lock.
    _folder: File,
    _file: File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The folder's lock is still held here, so the record is ours to remove.
        let _ = fs::remove_file(self.dir.join(WRITER_FILE));
    }
}

/// Between the host and the Slurm job id in a `run.writer` record.
const SLURM_JOB_MARK: &str = " slurm job ";

/// The Slurm job this process runs in (`$SLURM_JOB_ID`, one id per array task, kept by a
/// requeue), if any.
fn slurm_job() -> Option<String> {
    std::env::var("SLURM_JOB_ID")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// This host's name (empty if it cannot be told).
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Reads at most 256 bytes of a small record file (never following a link).
fn read_record(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        let _ = file.take(256).read_to_string(&mut text);
    }
    text.trim().to_string()
}

/// Opens a run file for writing without following a link at its name.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl RunLock {
    /// Takes the lock of `dir` (which must exist) or says who holds it. A run lives while
    /// the folder is locked, while `run.lock` is, while its control socket answers, or while
    /// a writer on another host is recorded.
    pub fn acquire(dir: &Path) -> Result<Self, FolderError> {
        let io = |error| FolderError::Io {
            dir: dir.to_owned(),
            error,
        };
        let busy = |holder: String| FolderError::Busy {
            dir: dir.to_owned(),
            holder,
        };
        let pid_holder = || {
            let pid = read_record(&dir.join(LOCK_FILE));
            if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            }
        };
        let folder = File::open(dir).map_err(io)?;
        if folder.try_lock().is_err() {
            return Err(busy(pid_holder()));
        }
        refuse_links(dir)?;
        let mut file = open_no_follow(&dir.join(LOCK_FILE)).map_err(|error| {
            if error.raw_os_error() == Some(libc::ELOOP) {
                FolderError::Linked {
                    path: dir.join(LOCK_FILE),
                }
            } else {
                io(error)
            }
        })?;
        if file.try_lock().is_err() {
            // An older ltmlp, which locks only this file.
            return Err(busy(pid_holder()));
        }
        if crate::remote::endpoint::connect(dir).is_ok() {
            return Err(busy(" (its control socket answers)".into()));
        }
        let here = host_name();
        let job = slurm_job();
        let writer = read_record(&dir.join(WRITER_FILE));
        if let Some((pid, rest)) = writer.split_once(" on ") {
            let (host, recorded_job) = match rest.split_once(SLURM_JOB_MARK) {
                Some((host, job)) => (host, Some(job)),
                None => (rest, None),
            };
            // A record of this host is one the locks above would have seen alive; one of this
            // very Slurm job is its own earlier run, requeued after its node failed (Slurm
            // runs a job once at a time, and a requeue keeps its id).
            let requeued = job.is_some() && recorded_job == job.as_deref();
            if host != here && !host.is_empty() && !requeued {
                return Err(FolderError::OtherHost {
                    dir: dir.to_owned(),
                    pid: pid.to_string(),
                    host: host.to_string(),
                });
            }
        }
        // The holder's pid, for the message a second writer gets; and where it runs.
        let pid = std::process::id();
        file.set_len(0).map_err(io)?;
        write!(file, "{pid}").map_err(io)?;
        // Not through the fault seam: it is a note for other hosts, not one of the run's
        // records, and the fault suite counts the run's writes.
        let mut writer = open_no_follow(&dir.join(WRITER_FILE)).map_err(io)?;
        writer.set_len(0).map_err(io)?;
        match &job {
            Some(job) => writeln!(writer, "{pid} on {here}{SLURM_JOB_MARK}{job}"),
            None => writeln!(writer, "{pid} on {here}"),
        }
        .map_err(io)?;
        Ok(RunLock {
            dir: dir.to_owned(),
            _folder: folder,
            _file: file,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether `name` is one of the files that say who writes a folder (not part of a run).
pub fn is_lock_file(name: &str) -> bool {
    name == LOCK_FILE || name == WRITER_FILE
}

/// A run folder holds no symbolic link but its control socket's (bound elsewhere when the
/// folder's path is too long for a socket): a link would make ltmlp read or write outside it.
fn refuse_links(dir: &Path) -> Result<(), FolderError> {
    let entries = fs::read_dir(dir).map_err(|error| FolderError::Io {
        dir: dir.to_owned(),
        error,
    })?;
    for entry in entries.flatten() {
        let linked = entry.file_type().is_ok_and(|t| t.is_symlink());
        if linked && entry.file_name() != crate::remote::endpoint::SOCKET_FILE {
            return Err(FolderError::Linked { path: entry.path() });
        }
    }
    Ok(())
}

/// What a folder holds besides the lock files, for messages ("config.toml, metrics.jsonl").
fn contents(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !is_lock_file(n))
        .collect();
    names.sort();
    Ok(names)
}

/// A preset name as one folder name: letters, digits and `.+=-_` kept, anything else (a `/`,
/// a space) turned into `_`, leading dots and `_` dropped, at most 100 characters, `run`
/// when nothing is left. So `../../x` and `/abs/x` name folders inside the parent, never
/// outside it; a name is a label, and refusing one that a path-like name would be is not
/// worth failing a run over.
pub fn safe_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '+' | '=' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_start_matches(['.', '_'])
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    if trimmed.is_empty() {
        "run".into()
    } else {
        trimmed
    }
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

/// Locks the run folder `dir` to continue the run in it: it holds a run's header (`run.json`;
/// `config.toml` in a folder written before it existed).
pub fn claim_existing(dir: &Path) -> Result<RunLock, FolderError> {
    let has_header = [super::run_file::RUN_FILE, super::CONFIG_FILE]
        .iter()
        .any(|name| dir.join(name).is_file());
    if !has_header {
        return Err(FolderError::NotARun {
            dir: dir.to_owned(),
            missing: format!("{} nor {}", super::run_file::RUN_FILE, super::CONFIG_FILE),
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

/// A fresh folder under `parent` named `base` (made a [`safe_name`]), or `base-2`, `base-3`, … if taken; created
/// here (`create_dir` is atomic), so two runs started in the same second never share one.
pub fn create_unique(parent: &Path, base: &str) -> std::io::Result<PathBuf> {
    let base = &safe_name(base);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_name_becomes_one_folder_name() {
        assert_eq!(
            safe_name("default-ab-20261207T171606Z"),
            "default-ab-20261207T171606Z"
        );
        assert_eq!(safe_name("../../escaped-ab"), "escaped-ab");
        assert_eq!(safe_name("/tmp/abs"), "tmp_abs");
        assert_eq!(safe_name(".."), "run");
        assert_eq!(safe_name("my preset"), "my_preset");
        assert_eq!(safe_name(&"../".repeat(500)).len(), 3);
        assert_eq!(safe_name(&"x".repeat(500)).len(), MAX_NAME_CHARS);
    }
}
