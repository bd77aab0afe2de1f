//! Where the raw examples come from: the MNIST subset compiled into the binary, or a path in one
//! of the formats users have — an IDX folder (full MNIST, Fashion-MNIST, …), CIFAR-10's binary
//! batches, NumPy `.npz` / `.npy`, CSV — detected from the path or named by `data.format`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cifar::{self, CifarError};
use super::csvfile::{self, CsvError, CsvOptions};
use super::idx::{self, IdxError};
use super::npy::{self, NpyArray, NpyData, NpyError};

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

/// The formats `data.format` names (`auto` detects from the path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    #[default]
    Auto,
    Idx,
    Cifar10,
    Npz,
    Npy,
    Csv,
}

/// The names of the four NumPy arrays (`.npz` entries, or `.npy` files in a folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArrayNames {
    pub x_train: String,
    pub y_train: String,
    pub x_test: String,
    pub y_test: String,
}

impl Default for ArrayNames {
    fn default() -> Self {
        ArrayNames {
            x_train: "x_train".into(),
            y_train: "y_train".into(),
            x_test: "x_test".into(),
            y_test: "y_test".into(),
        }
    }
}

/// How to read a path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadOptions {
    pub format: DataFormat,
    pub arrays: ArrayNames,
    pub csv: CsvOptions,
    /// CSV: the test table (without it, the last fifth of the rows).
    pub test_source: Option<PathBuf>,
}

/// Where a preset's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The MNIST subset inside the binary.
    Embedded,
    /// A folder or file, and how to read it.
    Path(PathBuf, ReadOptions),
}

impl DataSource {
    /// The preset's `data.source` value: `"embedded"` or a path.
    pub fn parse(value: &str, options: ReadOptions) -> Self {
        if value == "embedded" {
            DataSource::Embedded
        } else {
            DataSource::Path(PathBuf::from(value), options)
        }
    }

    /// A short human description for status lines.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Embedded => "embedded MNIST subset (6,000 + 1,000)".to_string(),
            DataSource::Path(path, _) => path.display().to_string(),
        }
    }
}

/// Input values as read: bytes are pixels (scaled to [0, 1] later), numbers are taken as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum RawInputs {
    Bytes(Vec<u8>),
    Numbers(Vec<f64>),
}

/// Targets as read: integer labels, or numbers (`columns` per example).
#[derive(Debug, Clone, PartialEq)]
pub enum RawTargets {
    Labels(Vec<i64>),
    Values { values: Vec<f64>, columns: usize },
}

/// One split as read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSplit {
    /// The file the examples came from (for messages).
    pub origin: PathBuf,
    pub count: usize,
    /// Shape of one example: `[rows, cols]` and `[channels, rows, cols]` are images.
    pub shape: Vec<usize>,
    pub inputs: RawInputs,
    pub targets: RawTargets,
    /// The file line of each example (CSV), for messages about a row.
    pub lines: Option<Vec<u64>>,
}

impl RawSplit {
    /// Values per example.
    pub fn width(&self) -> usize {
        self.shape.iter().product()
    }

    /// How messages name example `i`.
    pub fn row_name(&self, i: usize) -> String {
        match self.lines.as_ref().and_then(|l| l.get(i)) {
            Some(line) => format!("line {line}"),
            None => format!("example {i} (0-based)"),
        }
    }
}

/// The training and test splits as read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RawData {
    pub train: RawSplit,
    pub test: RawSplit,
    /// The format they were read in.
    pub format: DataFormat,
}

/// Why data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Idx(#[from] IdxError),
    #[error(transparent)]
    Cifar(#[from] CifarError),
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error(
        "{dir}: no file `{stem}` or `{stem}.gz`; the directory must hold the four MNIST-format \
         files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, \
         t10k-labels-idx1-ubyte), raw or gzipped"
    )]
    Missing { dir: PathBuf, stem: &'static str },
    #[error(
        "{test}: examples have shape {test_shape:?} but the training examples {train_shape:?}; \
         both splits must have the same shape"
    )]
    ShapeMismatch {
        test: PathBuf,
        test_shape: Vec<usize>,
        train_shape: Vec<usize>,
    },
    #[error("{path}: no such file or folder")]
    NotFound { path: PathBuf },
    #[error(
        "{path}: cannot tell the format from the name; set data.format to idx, cifar10, npz, \
         npy or csv"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: data.format = \"{format}\" needs a {needs}")]
    WrongKind {
        path: PathBuf,
        format: &'static str,
        needs: &'static str,
    },
    #[error("{path}: array `{array}`: {reason}")]
    Array {
        path: PathBuf,
        array: String,
        reason: String,
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

fn idx_split(
    images_path: &Path,
    images: idx::IdxImages,
    labels_path: &Path,
    labels: Vec<u8>,
) -> Result<RawSplit, SourceError> {
    idx::check_counts(images_path, &images, labels_path, &labels)?;
    Ok(RawSplit {
        origin: labels_path.to_owned(),
        count: images.count,
        shape: vec![images.rows, images.cols],
        inputs: RawInputs::Bytes(images.pixels),
        targets: RawTargets::Labels(labels.into_iter().map(i64::from).collect()),
        lines: None,
    })
}

fn embedded_split(
    images: &str,
    image_bytes: &[u8],
    labels: &str,
    label_bytes: &[u8],
) -> Result<RawSplit, SourceError> {
    let (images_path, labels_path) = (
        PathBuf::from(format!("<embedded>/{images}.gz")),
        PathBuf::from(format!("<embedded>/{labels}.gz")),
    );
    let images = idx::parse_images(&images_path, image_bytes.to_vec())?;
    let labels = idx::parse_labels(&labels_path, label_bytes.to_vec())?;
    idx_split(&images_path, images, &labels_path, labels)
}

fn load_idx(dir: &Path) -> Result<(RawSplit, RawSplit), SourceError> {
    let split = |images: &'static str, labels: &'static str| -> Result<RawSplit, SourceError> {
        let (images, labels) = (find(dir, images)?, find(dir, labels)?);
        idx_split(
            &images,
            idx::read_images(&images)?,
            &labels,
            idx::read_labels(&labels)?,
        )
    };
    Ok((
        split(TRAIN_IMAGES, TRAIN_LABELS)?,
        split(TEST_IMAGES, TEST_LABELS)?,
    ))
}

fn load_cifar(dir: &Path) -> Result<(RawSplit, RawSplit), SourceError> {
    let (train, test) = cifar::read_dir(dir)?;
    let split = |s: cifar::CifarSplit, origin: PathBuf| RawSplit {
        origin,
        count: s.labels.len(),
        shape: cifar::SHAPE.to_vec(),
        inputs: RawInputs::Bytes(s.pixels),
        targets: RawTargets::Labels(s.labels.into_iter().map(i64::from).collect()),
        lines: None,
    };
    Ok((
        split(train, dir.join(cifar::TRAIN_FILES[0])),
        split(test, dir.join(cifar::TEST_FILE)),
    ))
}

/// A split from NumPy arrays `x` (examples first) and `y` (`(n,)` or `(n, k)`).
pub fn arrays_split(
    path: &Path,
    names: (&str, &str),
    x: NpyArray,
    y: NpyArray,
) -> Result<RawSplit, SourceError> {
    let bad = |array: &str, reason: String| SourceError::Array {
        path: path.to_owned(),
        array: array.to_string(),
        reason,
    };
    let Some((&count, shape)) = x.shape.split_first() else {
        return Err(bad(
            names.0,
            "is a scalar; it needs one row per example".into(),
        ));
    };
    let shape = if shape.is_empty() {
        vec![1]
    } else {
        shape.to_vec()
    };
    let y_count = y.shape.first().copied().unwrap_or(0);
    if y_count != count || y.shape.len() > 2 {
        return Err(bad(
            names.1,
            format!(
                "shape {:?} does not give one target (or one row of targets) for each of the \
                 {count} examples of `{}`",
                y.shape, names.0
            ),
        ));
    }
    let columns = y.shape.get(1).copied().unwrap_or(1);
    let inputs = match x.data {
        NpyData::U8(v) => RawInputs::Bytes(v),
        other => RawInputs::Numbers(
            NpyArray {
                shape: vec![],
                data: other,
            }
            .to_f64(),
        ),
    };
    let targets = match y.data {
        NpyData::U8(v) if columns == 1 => {
            RawTargets::Labels(v.into_iter().map(i64::from).collect())
        }
        NpyData::Int(v) if columns == 1 => RawTargets::Labels(v),
        other => RawTargets::Values {
            values: NpyArray {
                shape: vec![],
                data: other,
            }
            .to_f64(),
            columns,
        },
    };
    Ok(RawSplit {
        origin: path.to_owned(),
        count,
        shape,
        inputs,
        targets,
        lines: None,
    })
}

/// `array` itself, if every value in it is finite; else the first value that is not, named by
/// example (the first index) and feature (the rest, flattened).
fn finite(path: &Path, name: &str, array: NpyArray) -> Result<NpyArray, SourceError> {
    let NpyData::Float(values) = &array.data else {
        return Ok(array);
    };
    let Some(at) = values.iter().position(|v| !v.is_finite()) else {
        return Ok(array);
    };
    let width: usize = array.shape.iter().skip(1).product::<usize>().max(1);
    let place = if array.shape.len() > 1 {
        format!("example {} (0-based), feature {}", at / width, at % width)
    } else {
        format!("example {at} (0-based)")
    };
    Err(SourceError::Array {
        path: path.to_owned(),
        array: name.to_string(),
        reason: format!(
            "{place}: {} is not finite; every value must be a finite number: fix or drop that \
             example",
            values[at]
        ),
    })
}

fn load_npz(path: &Path, names: &ArrayNames) -> Result<(RawSplit, RawSplit), SourceError> {
    let mut npz = npy::Npz::open(path)?;
    let mut array = |name: &str, key: &'static str| -> Result<NpyArray, SourceError> {
        finite(path, name, npz.array(name, key)?)
    };
    let x_train = array(&names.x_train, "x_train")?;
    let y_train = array(&names.y_train, "y_train")?;
    let train = arrays_split(path, (&names.x_train, &names.y_train), x_train, y_train)?;
    let x_test = array(&names.x_test, "x_test")?;
    let y_test = array(&names.y_test, "y_test")?;
    let test = arrays_split(path, (&names.x_test, &names.y_test), x_test, y_test)?;
    Ok((train, test))
}

fn load_npy(dir: &Path, names: &ArrayNames) -> Result<(RawSplit, RawSplit), SourceError> {
    let split = |x: &str, y: &str| -> Result<RawSplit, SourceError> {
        let (xp, yp) = (dir.join(format!("{x}.npy")), dir.join(format!("{y}.npy")));
        let (xa, ya) = (
            finite(&xp, x, npy::read(&xp)?)?,
            finite(&yp, y, npy::read(&yp)?)?,
        );
        // Messages about a label name the file that holds it.
        let split = arrays_split(&xp, (x, y), xa, ya)?;
        Ok(RawSplit {
            origin: yp,
            ..split
        })
    };
    Ok((
        split(&names.x_train, &names.y_train)?,
        split(&names.x_test, &names.y_test)?,
    ))
}

fn table_split(path: &Path, t: csvfile::Table, rows: std::ops::Range<usize>) -> RawSplit {
    let (f, k) = (t.feature_names.len(), t.target_names.len());
    RawSplit {
        origin: path.to_owned(),
        count: rows.len(),
        shape: vec![f],
        inputs: RawInputs::Numbers(t.features[rows.start * f..rows.end * f].to_vec()),
        targets: RawTargets::Values {
            values: t.targets[rows.start * k..rows.end * k].to_vec(),
            columns: k,
        },
        lines: Some(t.lines[rows].to_vec()),
    }
}

fn load_csv(path: &Path, options: &ReadOptions) -> Result<(RawSplit, RawSplit), SourceError> {
    let table = csvfile::read(path, &options.csv)?;
    match &options.test_source {
        Some(test_path) => {
            let test = csvfile::read(test_path, &options.csv)?;
            let (n, m) = (table.rows, test.rows);
            Ok((
                table_split(path, table, 0..n),
                table_split(test_path, test, 0..m),
            ))
        }
        None => {
            let n = table.rows;
            let cut = n - n / 5;
            Ok((
                table_split(path, table.clone(), 0..cut),
                table_split(path, table, cut..n),
            ))
        }
    }
}

/// The format of `path`: as named, or detected from the file's extension or the folder's files.
pub fn detect(path: &Path, options: &ReadOptions) -> Result<DataFormat, SourceError> {
    if !path.exists() {
        return Err(SourceError::NotFound {
            path: path.to_owned(),
        });
    }
    let is_dir = path.is_dir();
    let format = match options.format {
        DataFormat::Auto if is_dir => {
            if path
                .join(format!("{}.npy", options.arrays.x_train))
                .is_file()
            {
                DataFormat::Npy
            } else if cifar::is_cifar_dir(path) {
                DataFormat::Cifar10
            } else {
                DataFormat::Idx
            }
        }
        DataFormat::Auto => match path.extension().and_then(|e| e.to_str()) {
            Some("npz") => DataFormat::Npz,
            Some("csv") => DataFormat::Csv,
            _ => {
                return Err(SourceError::UnknownFormat {
                    path: path.to_owned(),
                })
            }
        },
        named => named,
    };
    let (name, needs_dir) = match format {
        DataFormat::Idx => ("idx", true),
        DataFormat::Cifar10 => ("cifar10", true),
        DataFormat::Npy => ("npy", true),
        DataFormat::Npz => ("npz", false),
        DataFormat::Csv | DataFormat::Auto => ("csv", false),
    };
    if needs_dir != is_dir {
        return Err(SourceError::WrongKind {
            path: path.to_owned(),
            format: name,
            needs: if needs_dir { "folder" } else { "file" },
        });
    }
    Ok(format)
}

/// Loads both splits from the source, checking every header and count.
pub fn load(source: &DataSource) -> Result<RawData, SourceError> {
    let (train, test, format) = match source {
        DataSource::Embedded => (
            embedded_split(
                TRAIN_IMAGES,
                embedded::TRAIN_IMAGES,
                TRAIN_LABELS,
                embedded::TRAIN_LABELS,
            )?,
            embedded_split(
                TEST_IMAGES,
                embedded::TEST_IMAGES,
                TEST_LABELS,
                embedded::TEST_LABELS,
            )?,
            DataFormat::Idx,
        ),
        DataSource::Path(path, options) => {
            let format = detect(path, options)?;
            let (train, test) = match format {
                DataFormat::Idx => load_idx(path)?,
                DataFormat::Cifar10 => load_cifar(path)?,
                DataFormat::Npz => load_npz(path, &options.arrays)?,
                DataFormat::Npy => load_npy(path, &options.arrays)?,
                DataFormat::Csv | DataFormat::Auto => load_csv(path, options)?,
            };
            (train, test, format)
        }
    };
    if test.shape != train.shape {
        return Err(SourceError::ShapeMismatch {
            test: test.origin.clone(),
            test_shape: test.shape.clone(),
            train_shape: train.shape.clone(),
        });
    }
    Ok(RawData {
        train,
        test,
        format,
    })
}
