//! Where the raw examples come from: the MNIST subset compiled into the binary, or a directory
//! holding the four standard IDX files (full MNIST, Fashion-MNIST, …).

use std::path::{Path, PathBuf};

use super::idx::{self, IdxError, IdxImages};

/// The four file stems of the standard MNIST layout.
const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The first 6,000 training and 1,000 test images of MNIST (see `assets/mnist-mini/ATTRIBUTION.md`).
mod embedded {
    pub const TRAIN_IMAGES: &[u8] =
        include_bytes!("../../assets/mnist-mini/train-images-idx3-ubyte.gz");
    pub const TRAIN_LABELS: &[u8] =
        include_bytes!("../../assets/mnist-mini/train-labels-idx1-ubyte.gz");
    pub const TEST_IMAGES: &[u8] =
        include_bytes!("../../assets/mnist-mini/t10k-images-idx3-ubyte.gz");
    pub const TEST_LABELS: &[u8] =
        include_bytes!("../../assets/mnist-mini/t10k-labels-idx1-ubyte.gz");
}

/// Where a preset's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The MNIST subset inside the binary.
    Embedded,
    /// A directory with the four IDX files, raw or `.gz`.
    Directory(PathBuf),
}

impl DataSource {
    /// Parses the preset's `data.source` value: `"embedded"` or a directory path.
    pub fn parse(value: &str) -> Self {
        if value == "embedded" {
            DataSource::Embedded
        } else {
            DataSource::Directory(PathBuf::from(value))
        }
    }

    /// A short human description for status lines.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Embedded => "embedded MNIST subset (6,000 + 1,000)".to_string(),
            DataSource::Directory(dir) => dir.display().to_string(),
        }
    }
}

/// Labelled images of one split, as read from disk.
#[derive(Debug, Clone)]
pub struct RawSplit {
    pub images: IdxImages,
    pub labels: Vec<u8>,
}

/// The training and test splits as read from disk.
#[derive(Debug, Clone)]
pub struct RawData {
    pub train: RawSplit,
    pub test: RawSplit,
}

/// Why data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(
        "{dir}: no file `{stem}` or `{stem}.gz`; the directory must hold the four MNIST-format \
         files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, \
         t10k-labels-idx1-ubyte), raw or gzipped"
    )]
    Missing { dir: PathBuf, stem: &'static str },
    #[error(
        "{test}: images are {test_rows}x{test_cols} but the training images are \
         {train_rows}x{train_cols}; both splits must have the same image size"
    )]
    ShapeMismatch {
        test: PathBuf,
        test_rows: usize,
        test_cols: usize,
        train_rows: usize,
        train_cols: usize,
    },
}

fn find(dir: &Path, stem: &'static str) -> Result<PathBuf, SourceError> {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(stem);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(SourceError::Missing {
        dir: dir.to_owned(),
        stem,
    })
}

fn read_split(images: &Path, labels: &Path) -> Result<RawSplit, SourceError> {
    let split = RawSplit {
        images: idx::read_images(images)?,
        labels: idx::read_labels(labels)?,
    };
    idx::check_counts(images, &split.images, labels, &split.labels)?;
    Ok(split)
}

fn parse_split(
    images_name: &str,
    images: &[u8],
    labels_name: &str,
    labels: &[u8],
) -> Result<RawSplit, SourceError> {
    let (images_path, labels_path) = (
        PathBuf::from(format!("<embedded>/{images_name}.gz")),
        PathBuf::from(format!("<embedded>/{labels_name}.gz")),
    );
    let split = RawSplit {
        images: idx::parse_images(&images_path, images.to_vec())?,
        labels: idx::parse_labels(&labels_path, labels.to_vec())?,
    };
    idx::check_counts(&images_path, &split.images, &labels_path, &split.labels)?;
    Ok(split)
}

/// Loads both splits from the source, checking every header and count.
pub fn load(source: &DataSource) -> Result<RawData, SourceError> {
    let (train, test, test_path) = match source {
        DataSource::Embedded => (
            parse_split(
                TRAIN_IMAGES,
                embedded::TRAIN_IMAGES,
                TRAIN_LABELS,
                embedded::TRAIN_LABELS,
            )?,
            parse_split(
                TEST_IMAGES,
                embedded::TEST_IMAGES,
                TEST_LABELS,
                embedded::TEST_LABELS,
            )?,
            PathBuf::from(format!("<embedded>/{TEST_IMAGES}.gz")),
        ),
        DataSource::Directory(dir) => {
            let test_images = find(dir, TEST_IMAGES)?;
            (
                read_split(&find(dir, TRAIN_IMAGES)?, &find(dir, TRAIN_LABELS)?)?,
                read_split(&test_images, &find(dir, TEST_LABELS)?)?,
                test_images,
            )
        }
    };
    if (test.images.rows, test.images.cols) != (train.images.rows, train.images.cols) {
        return Err(SourceError::ShapeMismatch {
            test: test_path,
            test_rows: test.images.rows,
            test_cols: test.images.cols,
            train_rows: train.images.rows,
            train_cols: train.images.cols,
        });
    }
    Ok(RawData { train, test })
}
