//! CIFAR-10's binary batches: records of one label byte and 3,072 pixel bytes (32×32 red, then
//! green, then blue). A folder holds `data_batch_1.bin` … `data_batch_5.bin` (whichever are
//! present, in order) and `test_batch.bin`.

use std::path::{Path, PathBuf};

use crate::bounded::{self, FileKind, ReadError};

/// Channels, rows and columns of one image.
pub const SHAPE: [usize; 3] = [3, 32, 32];
const RECORD: usize = 1 + 3 * 32 * 32;
/// The training batch files, in the order they are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";

#[derive(Debug, thiserror::Error)]
pub enum CifarError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "{path}: {len} bytes is not a whole number of {RECORD}-byte CIFAR-10 records \
         (record {record} is cut short); download the binary version again"
    )]
    Truncated {
        path: PathBuf,
        len: usize,
        record: usize,
    },
    #[error("{path}: record {record} has label {label}; CIFAR-10 labels are 0 to 9")]
    BadLabel {
        path: PathBuf,
        record: usize,
        label: u8,
    },
    #[error("{dir}: no data_batch_1.bin … data_batch_5.bin; is this CIFAR-10's binary version?")]
    NoTraining { dir: PathBuf },
}

/// Pixels (record after record, channel-major) and labels of one split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CifarSplit {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

/// Parses one batch file's bytes, appending to `split`.
pub fn parse_into(path: &Path, bytes: &[u8], split: &mut CifarSplit) -> Result<(), CifarError> {
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(CifarError::Truncated {
            path: path.to_owned(),
            len: bytes.len(),
            record: bytes.len() / RECORD + 1,
        });
    }
    for (record, chunk) in bytes.chunks_exact(RECORD).enumerate() {
        if chunk[0] > 9 {
            return Err(CifarError::BadLabel {
                path: path.to_owned(),
                record: record + 1,
                label: chunk[0],
            });
        }
        split.labels.push(chunk[0]);
        split.pixels.extend_from_slice(&chunk[1..]);
    }
    Ok(())
}

fn read_into(path: &Path, split: &mut CifarSplit) -> Result<(), CifarError> {
    parse_into(path, &bounded::read(path, FileKind::Cifar)?, split)
}

/// Whether `dir` looks like CIFAR-10's binary folder.
pub fn is_cifar_dir(dir: &Path) -> bool {
    dir.join(TEST_FILE).is_file() || dir.join(TRAIN_FILES[0]).is_file()
}

/// Reads the training batches present and the test batch.
pub fn read_dir(dir: &Path) -> Result<(CifarSplit, CifarSplit), CifarError> {
    let mut train = CifarSplit::default();
    let mut any = false;
    for name in TRAIN_FILES {
        let path = dir.join(name);
        if path.is_file() {
            read_into(&path, &mut train)?;
            any = true;
        }
    }
    if !any {
        return Err(CifarError::NoTraining {
            dir: dir.to_owned(),
        });
    }
    let mut test = CifarSplit::default();
    read_into(&dir.join(TEST_FILE), &mut test)?;
    Ok((train, test))
}
