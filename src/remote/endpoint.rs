//! Where a run's control socket lives and who may use it: `control.sock` in the run folder,
//! mode 0600, and only clients of the run owner's uid (checked with the kernel's peer
//! credentials, so a loosened file mode does not open it to others).
//!
//! A Unix socket path is limited to 107 bytes. For a deeper run folder the socket is bound in
//! a private folder (`$XDG_RUNTIME_DIR/ltmlp`, else `/tmp/ltmlp-<uid>`, mode 0700) under a name
//! derived from the run folder, and `control.sock` is a symbolic link to it; clients follow
//! the link.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket's name in a run folder.
pub const SOCKET_FILE: &str = "control.sock";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// A bound endpoint; dropping it removes the socket (and its link).
#[derive(Debug)]
pub struct Bound {
    pub listener: UnixListener,
    /// The socket file itself.
    socket: PathBuf,
    /// `control.sock` when it is a link to `socket`.
    link: Option<PathBuf>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        if let Some(link) = &self.link {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Binds the control socket of the run folder `dir`. The caller holds the folder's run lock,
/// so a socket already there was left by a run that was killed: it is replaced.
pub fn bind(dir: &Path) -> std::io::Result<Bound> {
    let path = dir.join(SOCKET_FILE);
    remove_stale(&path);
    let absolute = std::path::absolute(&path)?;
    let (socket, link) = if absolute.as_os_str().len() <= MAX_SOCKET_PATH {
        (absolute, None)
    } else {
        let short = short_path(&absolute)?;
        remove_stale(&short);
        (short, Some(path.clone()))
    };
    let listener = UnixListener::bind(&socket)?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    if let Some(link) = &link {
        std::os::unix::fs::symlink(&socket, link)?;
    }
    Ok(Bound {
        listener,
        socket,
        link,
    })
}

/// Removes a socket (or link) left behind; a regular file of that name is left alone (and
/// binding then fails with a message naming it).
fn remove_stale(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() || meta.file_type().is_symlink() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The fallback socket path of a deep run folder.
fn short_path(absolute: &Path) -> std::io::Result<PathBuf> {
    let uid = current_uid();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("ltmlp"))
        .filter(|d| d.as_os_str().len() < 60)
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/ltmlp-{uid}")));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)?;
    let meta = std::fs::metadata(&base)?;
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{}: must be a folder of yours that only you can open (mode 0700)",
            base.display()
        )));
    }
    let hash = crc32fast::hash(absolute.as_os_str().as_encoded_bytes());
    Ok(base.join(format!("{hash:08x}.sock")))
}

/// Connects to the run in `dir` (following the link of a deep folder).
pub fn connect(dir: &Path) -> std::io::Result<UnixStream> {
    let path = dir.join(SOCKET_FILE);
    let target = match std::fs::read_link(&path) {
        Ok(target) => target,
        Err(_) => std::path::absolute(&path)?,
    };
    if target.as_os_str().len() > MAX_SOCKET_PATH {
        // A relative connect from inside the folder keeps the path short.
        return Err(std::io::Error::other(format!(
            "{}: the socket path is longer than {MAX_SOCKET_PATH} bytes",
            target.display()
        )));
    }
    UnixStream::connect(target)
}

pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of `stream`.
pub fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes at most `len` bytes into `cred`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_and_a_deep_folder_gets_a_link() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        let first = bind(&dir).unwrap();
        // A killed run leaves its socket behind: forget it without removing the file.
        std::mem::forget(first);
        let bound = bind(&dir).unwrap();
        assert!(connect(&dir).is_ok());
        drop(bound);
        assert!(!dir.join(SOCKET_FILE).exists());

        let deep = root.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let bound = bind(&deep).unwrap();
        assert!(std::fs::symlink_metadata(deep.join(SOCKET_FILE))
            .unwrap()
            .file_type()
            .is_symlink());
        let stream = connect(&deep).unwrap();
        assert_eq!(peer_uid(&stream).unwrap(), current_uid());
        drop(bound);
        assert!(std::fs::symlink_metadata(deep.join(SOCKET_FILE)).is_err());
    }
}
