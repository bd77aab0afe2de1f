//! The two ways ltmlp writes a file, and no other: whole files replaced atomically (temporary
//! file, fsync, rename, fsync of the folder), and append-only logs whose length is known and
//! checked, so that a failed write is undone instead of leaving half a line to be written again.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub mod fault;

/// Replaces `path` with `bytes` atomically: readers see the old file or the new one, never a
/// torn or empty one. A failed attempt leaves no temporary file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_of(path);
    let result = (|| {
        fault::before_write(&tmp)?;
        // Never through a link planted at the temporary name.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_folder(path);
    Ok(())
}

/// Appends `tail` to the file `aside` (created if need be) and makes it durable: where a
/// resume moves the records after the point it continues from, so that nothing written is lost.
pub fn append_aside(aside: &Path, tail: &[u8]) -> std::io::Result<()> {
    fault::before_write(aside)?;
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(aside)?;
    file.write_all(tail)?;
    file.sync_all()
}

/// `dir/name` → `dir/name.tmp`.
pub fn temporary_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Makes a rename or a new file in `path`'s folder durable.
fn sync_folder(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
}

/// A place in an [`AppendLog`].
#[derive(Debug, Clone)]
pub struct Position {
    len: u64,
    crc: crc32fast::Hasher,
}

/// An append-only file whose length ltmlp tracks: each record is written whole at the known
/// end or, on failure, cut back off, so a retry never duplicates nor tears a line.
#[derive(Debug)]
pub struct AppendLog {
    path: PathBuf,
    file: File,
    len: u64,
    crc: crc32fast::Hasher,
}

impl AppendLog {
    /// Creates the file, which must not exist yet.
    pub fn create_new(path: &Path) -> std::io::Result<Self> {
        fault::before_write(path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        sync_folder(path);
        Ok(AppendLog {
            path: path.to_owned(),
            file,
            len: 0,
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Opens an existing file whose first `prefix` bytes are kept; anything after them must
    /// already have been moved aside by the caller (the file is cut to `prefix`).
    pub fn continue_after(path: &Path, prefix: &[u8]) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let len = prefix.len() as u64;
        if file.metadata()?.len() != len {
            fault::before_write(path)?;
            file.set_len(len)?;
            file.sync_all()?;
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(prefix);
        Ok(AppendLog {
            path: path.to_owned(),
            file,
            len,
            crc,
        })
    }

    /// Appends one record; on any failure the file is cut back to its length before.
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let result = (|| {
            fault::before_write(&self.path)?;
            self.file.write_all_at(bytes, self.len)?;
            self.file.sync_data()?;
            let found = self.file.metadata()?.len();
            let expected = self.len + bytes.len() as u64;
            if found != expected {
                return Err(std::io::Error::other(format!(
                    "the file is {found} bytes long where ltmlp wrote {expected}: another \
                     process is writing it"
                )));
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.crc.update(bytes);
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Where the log ends now, to [`AppendLog::rewind`] to.
    pub fn position(&self) -> Position {
        Position {
            len: self.len,
            crc: self.crc.clone(),
        }
    }

    /// Cuts the log back to an earlier position (undoing a record whose partner record in
    /// another file could not be written).
    pub fn rewind(&mut self, to: Position) {
        let _ = self.file.set_len(to.len);
        self.len = to.len;
        self.crc = to.crc;
    }

    /// Bytes written and kept so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// CRC-32 of everything kept so far.
    pub fn crc(&self) -> u32 {
        self.crc.clone().finalize()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
