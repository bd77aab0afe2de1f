//! Turning raw examples into the train / validation / test splits the network consumes: image
//! grayscale and average-pooling, pixels scaled to [0, 1], class labels mapped to indices
//! (counted from the training split), the held-out validation slice, and per-feature centring
//! or standardisation with statistics from the training split only.

use ndarray::{Array1, Array2};

use super::examples::{Class, Examples, LengthMismatch, Targets};
use super::source::{RawData, RawInputs, RawSplit, RawTargets};
use crate::real::Real;

/// ITU-R BT.601 luma weights of red, green and blue.
const LUMA: [f64; 3] = [0.299, 0.587, 0.114];
/// A training split smaller than this many times the default validation slice gets a sixth held out.
const DEFAULT_VALIDATION: usize = 10_000;

/// What the targets must become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// Class indices: labels must be integers.
    #[default]
    Classes,
    /// Regression values.
    Values,
    /// Whatever the file holds (the autoencoder ignores targets).
    AsRead,
}

/// How to turn raw examples into inputs and targets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Preprocess {
    /// Average-pool the images by this factor in each direction (1 keeps them as they are).
    pub downsample: usize,
    /// Colour images: one luma channel instead of three.
    pub grayscale: bool,
    /// Keep only the first N training examples (before the validation slice is taken).
    pub train_limit: Option<usize>,
    /// Size of the validation slice, taken from the end of the training examples; `None`:
    /// 10,000, or a sixth of the training examples when that is fewer.
    pub validation_size: Option<usize>,
    /// Keep only the first N test examples.
    pub test_limit: Option<usize>,
    /// The declared number of classes (labels 0 to N - 1); `None`: the training labels'.
    pub classes: Option<usize>,
    /// Subtract the per-feature mean of the training slice from every split ("zero-mean MNIST").
    pub zero_mean: bool,
    /// Also divide every feature by its training standard deviation.
    pub standardize: bool,
    /// Monitor the test set: it also serves as the validation split (no examples held out).
    pub monitor_test: bool,
    pub targets: TargetKind,
    /// Hold 8-bit inputs that need no pooling or grayscale as bytes, decoded when read.
    pub byte_storage: bool,
}

/// The affine map applied to every decoded input row: x ← (x − mean) / std, per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalisation {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// The three splits plus what the network needs to know about them.
#[derive(Debug, Clone)]
pub struct Dataset<T> {
    pub train: Examples<T>,
    pub validation: Examples<T>,
    pub test: Examples<T>,
    /// Number of classes (0 for regression values).
    pub classes: usize,
    /// The label of each class index, as in the file.
    pub class_labels: Vec<i64>,
    /// The decoded inputs' shape before flattening (after grayscale and pooling).
    pub input_shape: Vec<usize>,
    /// How decoded values were obtained from the file (pixels /255, pooling, grayscale).
    pub decoding: String,
    /// The centring / standardisation applied after decoding.
    pub normalisation: Normalisation,
}

impl<T: Real> Dataset<T> {
    /// Number of inputs per example.
    pub fn input_dim(&self) -> usize {
        self.train.input_dim()
    }

    /// A CRC-32 of the splits' shapes, targets and first rows: equal for the same data and
    /// preprocessing, different (but for chance) for any other, so that a checkpoint is never
    /// continued on other data.
    pub fn fingerprint(&self) -> u32 {
        /// Rows of each split whose inputs enter the fingerprint (all targets do).
        const ROWS: usize = 100;
        let mut h = crc32fast::Hasher::new();
        for split in [&self.train, &self.validation, &self.test] {
            h.update(&(split.len() as u64).to_le_bytes());
            h.update(&(split.input_dim() as u64).to_le_bytes());
            match split.targets() {
                Targets::Classes(c) => {
                    // Class indices below 256 hash as the bytes the IDX labels were.
                    for &c in c {
                        match u8::try_from(c) {
                            Ok(b) => h.update(&[b]),
                            Err(_) => h.update(&c.to_le_bytes()),
                        }
                    }
                }
                Targets::Values(v) => v.iter().for_each(|x| h.update(&x.f64().to_le_bytes())),
            }
            for v in split.rows(0, ROWS.min(split.len())).iter() {
                h.update(&v.f64().to_le_bytes());
            }
        }
        h.update(&(self.classes as u64).to_le_bytes());
        h.finalize()
    }

    /// Outputs a network needs for these targets: the classes, or the target columns.
    pub fn target_outputs(&self) -> usize {
        match self.train.targets() {
            Targets::Classes(_) => self.classes,
            Targets::Values(v) => v.ncols(),
        }
    }
}

/// Why preprocessing could not produce usable splits.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrepareError {
    #[error(
        "data.validation_size = {validation} leaves no training examples out of {available}; \
         choose a value below {available}"
    )]
    ValidationTooLarge { validation: usize, available: usize },
    #[error(
        "data.downsample = {factor} does not divide the {rows}x{cols} images; \
         use a factor that divides both sides (1, 2, 4, 7, …)"
    )]
    BadDownsample {
        factor: usize,
        rows: usize,
        cols: usize,
    },
    #[error(transparent)]
    Length(#[from] LengthMismatch),
    #[error("data.{key} applies to images, but the examples have shape {shape:?}; remove it")]
    NotImages {
        key: &'static str,
        shape: Vec<usize>,
    },
    #[error("data.grayscale needs 3 colour channels, but the images have shape {shape:?}")]
    NotColour { shape: Vec<usize> },
    #[error(
        "{file}: {row}: target {value} is not an integer class label; \
         classification needs integer labels (or set model.task = \"regress\")"
    )]
    NotALabel {
        file: String,
        row: String,
        value: f64,
    },
    #[error(
        "{file}: {row}: classification needs one label column, but the targets have {columns}"
    )]
    ManyLabels {
        file: String,
        row: String,
        columns: usize,
    },
    #[error(
        "{file}: {row}: label {label} does not occur in the training split (its classes are \
         {classes}); a test label must be one of them, or set data.classes to declare classes \
         0 to N - 1"
    )]
    UnknownClass {
        file: String,
        row: String,
        label: i64,
        classes: String,
    },
    #[error(
        "{file}: {row}: label {label} lies far outside the classes {classes} the other labels \
         use; correct that label, or set data.classes = N if classes 0 to N - 1 are meant"
    )]
    OutsideClasses {
        file: String,
        row: String,
        label: i64,
        classes: String,
    },
    #[error(
        "{file}: {row}: label {label} is outside data.classes = {classes} (labels 0 to {last}); \
         correct that label, or raise data.classes",
        last = .classes - 1
    )]
    OutsideDeclared {
        file: String,
        row: String,
        label: i64,
        classes: usize,
    },
}

/// Side lengths and channels of an image shape, if it is one.
fn image_dims(shape: &[usize]) -> Option<(usize, usize, usize)> {
    match *shape {
        [rows, cols] => Some((1, rows, cols)),
        [channels, rows, cols] => Some((channels, rows, cols)),
        _ => None,
    }
}

/// The decoded shape and a description of the decoding.
fn plan(
    shape: &[usize],
    bytes: bool,
    prep: &Preprocess,
) -> Result<(Vec<usize>, String), PrepareError> {
    let factor = prep.downsample.max(1);
    let mut notes = Vec::new();
    if bytes {
        notes.push("bytes / 255".to_string());
    }
    if factor == 1 && !prep.grayscale {
        return Ok((shape.to_vec(), notes.join(", ")));
    }
    let key = if prep.grayscale {
        "grayscale"
    } else {
        "downsample"
    };
    let (channels, rows, cols) = image_dims(shape).ok_or_else(|| PrepareError::NotImages {
        key,
        shape: shape.to_vec(),
    })?;
    if prep.grayscale && channels != 3 {
        return Err(PrepareError::NotColour {
            shape: shape.to_vec(),
        });
    }
    if rows % factor != 0 || cols % factor != 0 {
        return Err(PrepareError::BadDownsample { factor, rows, cols });
    }
    if prep.grayscale {
        notes.push("grayscale (0.299 R + 0.587 G + 0.114 B)".into());
    }
    if factor > 1 {
        notes.push(format!("{factor}x{factor} average-pooled"));
    }
    let out_channels = if prep.grayscale { 1 } else { channels };
    let shape = if shape.len() == 2 && out_channels == 1 {
        vec![rows / factor, cols / factor]
    } else {
        vec![out_channels, rows / factor, cols / factor]
    };
    Ok((shape, notes.join(", ")))
}

/// The first `count` examples of `split` with `targets`: their bytes kept as they are where
/// they decode one to one (8-bit pixels, no pooling or grayscale) and the options allow it,
/// else decoded to values.
fn examples<T: Real>(
    split: &RawSplit,
    count: usize,
    prep: &Preprocess,
    width_out: usize,
    targets: Targets<T>,
) -> Result<Examples<T>, LengthMismatch> {
    let pooled = prep.downsample > 1 || prep.grayscale;
    match &split.inputs {
        RawInputs::Bytes(b) if prep.byte_storage && !pooled && split.width() == width_out => {
            let bytes = Array2::from_shape_vec((count, width_out), b[..count * width_out].to_vec())
                .expect("count rows of width bytes");
            Examples::from_bytes(
                bytes,
                std::array::from_fn(|b| T::of(pixel(b as u8))),
                targets,
            )
        }
        _ => Examples::new(decode::<T>(split, count, prep, width_out), targets),
    }
}

/// A stored 8-bit pixel's value in [0, 1].
fn pixel(byte: u8) -> f64 {
    f64::from(byte) / 255.0
}

/// Decodes the first `count` examples' inputs: scaling, grayscale, pooling.
fn decode<T: Real>(
    split: &RawSplit,
    count: usize,
    prep: &Preprocess,
    width_out: usize,
) -> Array2<T> {
    let width = split.width();
    let value = |n: usize, j: usize| match &split.inputs {
        RawInputs::Bytes(b) => pixel(b[n * width + j]),
        RawInputs::Numbers(v) => v[n * width + j],
    };
    let factor = prep.downsample.max(1);
    let mut inputs = Array2::<T>::zeros((count, width_out));
    let Some((channels, rows, cols)) =
        image_dims(&split.shape).filter(|_| factor > 1 || prep.grayscale)
    else {
        for (n, mut out) in inputs.outer_iter_mut().enumerate() {
            for (j, o) in out.iter_mut().enumerate() {
                *o = T::of(value(n, j));
            }
        }
        return inputs;
    };
    let (r_out, c_out) = (rows / factor, cols / factor);
    let scale = 1.0 / (factor * factor) as f64;
    for (n, mut out) in inputs.outer_iter_mut().enumerate() {
        let out_channels = if prep.grayscale { 1 } else { channels };
        for oc in 0..out_channels {
            for r in 0..r_out {
                for c in 0..c_out {
                    let mut sum = 0.0;
                    for dr in 0..factor {
                        for dc in 0..factor {
                            let at = (r * factor + dr) * cols + c * factor + dc;
                            sum += if prep.grayscale {
                                (0..3)
                                    .map(|ch| LUMA[ch] * value(n, ch * rows * cols + at))
                                    .sum::<f64>()
                            } else {
                                value(n, oc * rows * cols + at)
                            };
                        }
                    }
                    out[(oc * r_out + r) * c_out + c] = T::of(sum * scale);
                }
            }
        }
    }
    inputs
}

/// The split's targets for its first `count` examples; `classes` maps labels to indices
/// (`declared`: they are data.classes' labels 0 to N - 1).
fn targets<T: Real>(
    split: &RawSplit,
    count: usize,
    kind: TargetKind,
    classes: &[i64],
    declared: Option<usize>,
) -> Result<Targets<T>, PrepareError> {
    let file = split.origin.display().to_string();
    let index = |i: usize, label: i64| {
        classes
            .binary_search(&label)
            .map(|c| c as Class)
            .map_err(|_| match declared {
                Some(classes) => PrepareError::OutsideDeclared {
                    file: file.clone(),
                    row: split.row_name(i),
                    label,
                    classes,
                },
                None => PrepareError::UnknownClass {
                    file: file.clone(),
                    row: split.row_name(i),
                    label,
                    classes: class_list(classes),
                },
            })
    };
    Ok(match (&split.targets, kind) {
        (RawTargets::Labels(l), TargetKind::Classes | TargetKind::AsRead) => Targets::Classes(
            l[..count]
                .iter()
                .enumerate()
                .map(|(i, &label)| index(i, label))
                .collect::<Result<_, _>>()?,
        ),
        (RawTargets::Labels(l), TargetKind::Values) => {
            Targets::Values(Array2::from_shape_fn((count, 1), |(i, _)| {
                T::of(l[i] as f64)
            }))
        }
        (RawTargets::Values { values, columns }, TargetKind::Classes) => {
            let labels = integer_labels(split, values, *columns, count)?;
            Targets::Classes(
                labels
                    .iter()
                    .enumerate()
                    .map(|(i, &label)| index(i, label))
                    .collect::<Result<_, _>>()?,
            )
        }
        (RawTargets::Values { values, columns }, _) => {
            Targets::Values(Array2::from_shape_fn((count, *columns), |(i, j)| {
                T::of(values[i * columns + j])
            }))
        }
    })
}

/// Values that must be integer labels, one column.
fn integer_labels(
    split: &RawSplit,
    values: &[f64],
    columns: usize,
    count: usize,
) -> Result<Vec<i64>, PrepareError> {
    let file = split.origin.display().to_string();
    if columns != 1 {
        return Err(PrepareError::ManyLabels {
            file,
            row: split.row_name(0),
            columns,
        });
    }
    values[..count]
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(PrepareError::NotALabel {
                    file: file.clone(),
                    row: split.row_name(i),
                    value: v,
                })
            }
        })
        .collect()
}

fn class_list(classes: &[i64]) -> String {
    let shown: Vec<String> = classes.iter().take(20).map(|c| c.to_string()).collect();
    let more = if classes.len() > 20 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// The class labels, sorted: data.classes' 0 to N - 1 when declared, else the distinct labels
/// of the training split's first `count` examples. Undeclared, a stray label (200 or
/// `i64::MIN` among 0 to 9: set apart from the others by a gap wider than the number of
/// classes, and held by fewer than 1 % of the examples) is refused with its row rather than
/// made a class of its own.
fn class_set(
    split: &RawSplit,
    count: usize,
    kind: TargetKind,
    declared: Option<usize>,
) -> Result<Vec<i64>, PrepareError> {
    let labels = match (&split.targets, kind) {
        (RawTargets::Labels(l), TargetKind::Classes | TargetKind::AsRead) => l[..count].to_vec(),
        (RawTargets::Values { values, columns }, TargetKind::Classes) => {
            integer_labels(split, values, *columns, count)?
        }
        _ => return Ok(Vec::new()),
    };
    let mut distinct = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if kind != TargetKind::Classes {
        // The autoencoder ignores its targets: whatever labels they hold are kept as read.
        return Ok(distinct);
    }
    let file = || split.origin.display().to_string();
    if let Some(classes) = declared {
        let outside = |&l: &i64| !(0..classes as i64).contains(&l);
        if let Some(i) = labels.iter().position(outside) {
            return Err(PrepareError::OutsideDeclared {
                file: file(),
                row: split.row_name(i),
                label: labels[i],
                classes,
            });
        }
        return Ok((0..classes as i64).collect());
    }
    if let Some((odd, usual)) = stray_labels(&distinct) {
        let held = labels.iter().filter(|l| odd.contains(l)).count();
        if held * STRAY_SHARE >= labels.len() {
            // As many examples as a real class may have: labels far apart by design.
            return Ok(distinct);
        }
        let i = labels
            .iter()
            .position(|l| odd.contains(l))
            .unwrap_or_default();
        return Err(PrepareError::OutsideClasses {
            file: file(),
            row: split.row_name(i),
            label: labels[i],
            classes: format!("{} to {}", usual.start(), usual.end()),
        });
    }
    Ok(distinct)
}

/// Labels set apart from the others are stray when fewer than 1 in this many examples hold them.
const STRAY_SHARE: usize = 100;

/// Where sorted distinct labels fall into two groups with a gap wider than the number of
/// labels (and than 2) between them: the labels of the smaller group (the upper one on a tie)
/// and the span of the others.
fn stray_labels(
    distinct: &[i64],
) -> Option<(std::ops::RangeInclusive<i64>, std::ops::RangeInclusive<i64>)> {
    let gap = |i: usize| i128::from(distinct[i + 1]) - i128::from(distinct[i]);
    let widest = (0..distinct.len().checked_sub(1)?).max_by_key(|&i| gap(i))?;
    if gap(widest) <= distinct.len().max(2) as i128 {
        return None;
    }
    let (lower, upper) = distinct.split_at(widest + 1);
    let span = |s: &[i64]| s[0]..=s[s.len() - 1];
    Some(if lower.len() < upper.len() {
        (span(lower), span(upper))
    } else {
        (span(upper), span(lower))
    })
}

/// Builds the train / validation / test splits.
pub fn prepare<T: Real>(raw: &RawData, prep: &Preprocess) -> Result<Dataset<T>, PrepareError> {
    let bytes = matches!(raw.train.inputs, RawInputs::Bytes(_));
    let (input_shape, decoding) = plan(&raw.train.shape, bytes, prep)?;
    let width_out: usize = input_shape.iter().product();
    let n_all = prep
        .train_limit
        .map_or(raw.train.count, |n| n.min(raw.train.count));
    let n_test = prep
        .test_limit
        .map_or(raw.test.count, |n| n.min(raw.test.count));
    let class_labels = class_set(&raw.train, n_all, prep.targets, prep.classes)?;
    let all = examples::<T>(
        &raw.train,
        n_all,
        prep,
        width_out,
        targets(&raw.train, n_all, prep.targets, &class_labels, prep.classes)?,
    )?;
    let validation_size = match (prep.monitor_test, prep.validation_size) {
        (true, _) => 0,
        (false, Some(n)) => n,
        (false, None) => DEFAULT_VALIDATION.min(n_all / 6),
    };
    if validation_size >= all.len() || (validation_size == 0 && !prep.monitor_test) {
        return Err(PrepareError::ValidationTooLarge {
            validation: validation_size,
            available: all.len(),
        });
    }
    let cut = all.len() - validation_size;
    let mut train = all;
    let mut validation = train.split_off(cut);
    let mut test = examples::<T>(
        &raw.test,
        n_test,
        prep,
        width_out,
        targets(&raw.test, n_test, prep.targets, &class_labels, prep.classes)?,
    )?;
    let normalisation = normalisation(&train, prep);
    if prep.zero_mean || prep.standardize {
        let mean = Array1::from_iter(normalisation.mean.iter().map(|&m| T::of(m)));
        let inv = Array1::from_iter(normalisation.std.iter().map(|&s| T::of(1.0 / s)));
        for split in [&mut train, &mut validation, &mut test] {
            split.normalise(&mean, &inv);
        }
    }
    if prep.monitor_test {
        validation = test.clone();
    }
    let classes = class_labels.len();
    Ok(Dataset {
        train,
        validation,
        test,
        classes,
        class_labels,
        input_shape,
        decoding,
        normalisation,
    })
}

/// The training split's per-feature mean and standard deviation, as the options ask (mean 0
/// and std 1 where they do not; a constant feature keeps std 1).
fn normalisation<T: Real>(train: &Examples<T>, prep: &Preprocess) -> Normalisation {
    let d = train.input_dim();
    if !(prep.zero_mean || prep.standardize) {
        return Normalisation {
            mean: vec![0.0; d],
            std: vec![1.0; d],
        };
    }
    let moments = train.feature_moments(prep.standardize);
    Normalisation {
        mean: moments.mean,
        std: moments.std,
    }
}
