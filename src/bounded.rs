//! The one way ltmlp reads a file: regular files only (a FIFO, device, socket or folder is
//! refused before a byte is read), and never more bytes than the file's kind allows, whatever
//! its metadata says.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What a file is to ltmlp, and so how many bytes it may hold. Every read names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A preset given on the command line.
    Preset,
    /// A run's resolved `config.toml`.
    Config,
    /// A run's `checkpoint.bin`.
    Checkpoint,
    /// A run's `metrics.jsonl`.
    Metrics,
    /// A run's `summary.json` or a sweep cell's `failed.txt`.
    Summary,
    /// A sweep's `plan.json`.
    Plan,
    /// A run's `actions.jsonl`.
    ActionLog,
    /// An IDX data file, raw or gzipped.
    Idx,
    /// A NumPy `.npy` array.
    Npy,
    /// A NumPy `.npz` archive.
    Npz,
    /// A CSV table.
    Csv,
    /// A CIFAR-10 binary batch.
    Cifar,
    /// A `curvature.json` re-read by `diagnose --from-json`.
    CurvatureReport,
}

impl FileKind {
    /// Every kind, in the order docs/reliability.md lists them.
    pub const ALL: [FileKind; 13] = [
        FileKind::Preset,
        FileKind::Config,
        FileKind::Checkpoint,
        FileKind::Metrics,
        FileKind::Summary,
        FileKind::Plan,
        FileKind::ActionLog,
        FileKind::Idx,
        FileKind::Npy,
        FileKind::Npz,
        FileKind::Csv,
        FileKind::Cifar,
        FileKind::CurvatureReport,
    ];

    /// The most bytes a file of this kind may hold: well above any ltmlp writes or any data
    /// set it was built for, far below what would exhaust a machine.
    pub const fn limit(self) -> u64 {
        match self {
            // A preset is a page of TOML; 10,000 lines of it fit in 1 MiB.
            FileKind::Preset | FileKind::Config | FileKind::Summary => MIB,
            // 300 million weights (the preset's ceiling) in f64, with optimizer state.
            FileKind::Checkpoint => 8 * GIB,
            // Hundreds of bytes an epoch: millions of epochs.
            FileKind::Metrics => GIB,
            // About 2 KiB a cell: thousands of cells.
            FileKind::Plan => 64 * MIB,
            // About 100 bytes an action: 160,000 actions.
            FileKind::ActionLog => 16 * MIB,
            // 80 times full MNIST's training images, plus a header.
            FileKind::Idx => 4 * GIB + KIB,
            FileKind::Npy | FileKind::Npz => 4 * GIB + 64 * KIB,
            // Text is longer than the values it holds: 1 GiB is some 100 million numbers.
            FileKind::Csv => GIB,
            // CIFAR-10's batches are 30 MiB; 1 GiB is 35 of them.
            FileKind::Cifar => GIB,
            FileKind::CurvatureReport => 256 * MIB,
        }
    }

    /// How messages name a file of this kind.
    pub const fn what(self) -> &'static str {
        match self {
            FileKind::Preset => "preset",
            FileKind::Config => "run configuration",
            FileKind::Checkpoint => "checkpoint",
            FileKind::Metrics => "metrics log",
            FileKind::Summary => "run summary",
            FileKind::Plan => "sweep plan",
            FileKind::ActionLog => "action log",
            FileKind::Idx => "IDX data file",
            FileKind::Npy => ".npy array",
            FileKind::Npz => ".npz archive",
            FileKind::Csv => "CSV table",
            FileKind::Cifar => "CIFAR-10 batch",
            FileKind::CurvatureReport => "curvature report",
        }
    }
}

/// Why a file was not read: the file, its kind and what was wrong.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: FileKind,
    pub problem: Problem,
}

/// What was wrong with a file.
#[derive(Debug)]
pub enum Problem {
    /// Opening or reading it failed.
    Io(std::io::Error),
    /// It is a FIFO, a device, a socket or a folder.
    NotRegular(&'static str),
    /// It holds more than its kind's limit.
    TooLarge,
    /// A text file that is not UTF-8.
    NotText,
}

impl ReadError {
    pub fn new(path: &Path, kind: FileKind, problem: Problem) -> Self {
        ReadError {
            path: path.to_owned(),
            kind,
            problem,
        }
    }

    /// Whether the file is simply not there.
    pub fn is_not_found(&self) -> bool {
        matches!(&self.problem, Problem::Io(e) if e.kind() == ErrorKind::NotFound)
    }

    /// What is wrong and the way out, without the path (for messages that name the file
    /// their own way).
    pub fn reason(&self) -> String {
        let what = self.kind.what();
        match &self.problem {
            Problem::Io(error) => format!("cannot read this {what}: {error}"),
            Problem::NotRegular(found) => format!(
                "is {found}, not a regular file; a {what} is read only from a regular file: \
                 copy it into one and give that path"
            ),
            Problem::TooLarge => format!(
                "larger than any {what}: a {what} is at most {} (is this the right file?)",
                human_bytes(self.kind.limit())
            ),
            Problem::NotText => format!("this {what} is not UTF-8 text (is this the right file?)"),
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for ReadError {}

/// `bytes` as people say it: `1 MiB`, `4.0 GiB`, `16 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= GIB && b % GIB == 0 => format!("{} GiB", b / GIB),
        b if b >= GIB => format!("{:.1} GiB", b as f64 / GIB as f64),
        b if b >= MIB => format!("{} MiB", b / MIB),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// What a file type is, for a message; `None` for a regular file.
fn irregular(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("a folder")
    } else if file_type.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// A regular file opened for reading.
pub struct Checked {
    pub file: File,
    /// The size the file reports (a hint: reads stay bounded by the limit, not by this).
    pub size: u64,
}

/// Opens `path` if it is a regular file no larger than its kind's limit. A FIFO, device,
/// socket or folder is refused from its metadata, before it is opened; it is opened without
/// blocking and checked again on the open file, so that one swapped in between is refused too.
pub fn open(path: &Path, kind: FileKind) -> Result<Checked, ReadError> {
    let io = |error| ReadError::new(path, kind, Problem::Io(error));
    let not_regular = |found| ReadError::new(path, kind, Problem::NotRegular(found));
    let meta = std::fs::metadata(path).map_err(io)?;
    if let Some(found) = irregular(meta.file_type()) {
        return Err(not_regular(found));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(found) = irregular(meta.file_type()) {
        return Err(not_regular(found));
    }
    if meta.len() > kind.limit() {
        return Err(ReadError::new(path, kind, Problem::TooLarge));
    }
    Ok(Checked {
        file,
        size: meta.len(),
    })
}

/// Reads at most `limit` bytes from `reader` into `out`; `Ok(false)` when more were there.
pub fn read_at_most(reader: impl Read, limit: u64, out: &mut Vec<u8>) -> std::io::Result<bool> {
    let start = out.len();
    reader.take(limit.saturating_add(1)).read_to_end(out)?;
    Ok((out.len() - start) as u64 <= limit)
}

/// The whole of a regular file of `kind`, never more than its limit.
pub fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, ReadError> {
    let checked = open(path, kind)?;
    let mut bytes = Vec::new();
    // The reported size only sizes the first allocation: the limit bounds the reading.
    let _ = bytes.try_reserve_exact(checked.size.min(kind.limit()) as usize);
    let whole = read_at_most(checked.file, kind.limit(), &mut bytes)
        .map_err(|error| ReadError::new(path, kind, Problem::Io(error)))?;
    if !whole {
        return Err(ReadError::new(path, kind, Problem::TooLarge));
    }
    Ok(bytes)
}

/// The whole of a regular text file of `kind`, never more than its limit.
pub fn read_text(path: &Path, kind: FileKind) -> Result<String, ReadError> {
    String::from_utf8(read(path, kind)?).map_err(|_| ReadError::new(path, kind, Problem::NotText))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read(&fifo, FileKind::Preset).unwrap_err();
        assert!(matches!(e.problem, Problem::NotRegular(_)), "{e}");
        assert!(e.to_string().contains("named pipe"), "{e}");
    }

    #[test]
    fn a_device_and_a_folder_are_refused() {
        let e = read(Path::new("/dev/zero"), FileKind::Checkpoint).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read(Path::new("/"), FileKind::Plan).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
    }

    #[test]
    fn a_file_whose_size_is_understated_is_still_cut_at_the_limit() {
        // /proc files report a size of 0 but hold bytes: the limit, not the size, bounds them.
        let mut out = Vec::new();
        let whole = read_at_most(std::io::repeat(7).take(100), 10, &mut out).unwrap();
        assert!(!whole);
        assert_eq!(out.len(), 11);
        let mut out = Vec::new();
        assert!(read_at_most(&[1u8; 10][..], 10, &mut out).unwrap());
    }

    #[test]
    fn a_missing_file_says_so() {
        let e = read(Path::new("/nonexistent/x.toml"), FileKind::Preset).unwrap_err();
        assert!(e.is_not_found());
        assert!(e
            .to_string()
            .starts_with("/nonexistent/x.toml: cannot read this preset"));
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(FileKind::Preset.limit()), "1 MiB");
        assert_eq!(human_bytes(FileKind::Checkpoint.limit()), "8 GiB");
        assert_eq!(human_bytes(FileKind::Idx.limit()), "4.0 GiB");
    }

    #[test]
    fn docs_list_every_kind_and_its_limit() {
        let docs = include_str!("../docs/reliability.md");
        for kind in FileKind::ALL {
            let row = format!("| {} | {} |", kind.what(), human_bytes(kind.limit()));
            assert!(
                docs.contains(&row),
                "docs/reliability.md lacks the row `{row}`"
            );
        }
    }
}
