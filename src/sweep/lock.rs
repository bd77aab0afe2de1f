//! Locking a cell folder while run-job decides what to do with it (skip, resume or start
//! afresh). Everything that locks a cell goes through [`lock_folder`]; it uses the run
//! folder's own locks (on the folder itself and on `run.lock`, the ones a training session
//! holds for its whole life), so a cell is never written by two processes, whatever started
//! them.

use std::path::Path;

use crate::sink::{FolderError, RunLock};

pub use crate::sink::folder::{is_lock_file, LOCK_FILE};

/// Held until dropped (or the process ends, even by `kill -9`: the kernel releases it).
#[derive(Debug)]
pub struct FolderLock {
    _lock: RunLock,
}

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Held(FolderError),
    #[error(transparent)]
    Other(FolderError),
}

/// Takes the folder's lock without waiting (the folder must exist).
pub fn lock_folder(dir: &Path) -> Result<FolderLock, LockError> {
    match RunLock::acquire(dir) {
        Ok(lock) => Ok(FolderLock { _lock: lock }),
        Err(e @ (FolderError::Busy { .. } | FolderError::OtherHost { .. })) => {
            Err(LockError::Held(e))
        }
        Err(e) => Err(LockError::Other(e)),
    }
}
