//! Turning raw images into the train / validation / test matrices the network consumes:
//! downsampling, scaling to [0, 1], optional per-pixel centring, the held-out validation slice.

use ndarray::{Array2, Axis};

use super::examples::Examples;
use super::source::{RawData, RawSplit};
use crate::real::Real;

/// How to turn raw bytes into inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Average-pool the images by this factor in each direction (1 keeps them as they are).
    pub downsample: usize,
    /// Keep only the first N training examples (before the validation slice is taken).
    pub train_limit: Option<usize>,
    /// Size of the validation slice, taken from the end of the training examples.
    pub validation_size: usize,
    /// Keep only the first N test examples.
    pub test_limit: Option<usize>,
    /// Subtract the per-pixel mean of the training slice from every split ("zero-mean MNIST").
    pub zero_mean: bool,
    /// Monitor the test set: it also serves as the validation split (no examples held out).
    pub monitor_test: bool,
}

/// The three splits plus what the network needs to know about them.
#[derive(Debug, Clone)]
pub struct Dataset<T> {
    pub train: Examples<T>,
    pub validation: Examples<T>,
    pub test: Examples<T>,
    /// Number of classes (largest label + 1).
    pub classes: usize,
    /// Side lengths of one (downsampled) image.
    pub image_shape: (usize, usize),
}

impl<T: Real> Dataset<T> {
    /// Number of inputs per example.
    pub fn input_dim(&self) -> usize {
        self.train.input_dim()
    }

    /// A CRC-32 of the splits' shapes, labels and first rows: equal for the same data and
    /// preprocessing, different (but for chance) for any other, so that a checkpoint is never
    /// continued on other data.
    pub fn fingerprint(&self) -> u32 {
        /// Rows of each split whose inputs enter the fingerprint (all labels do).
        const ROWS: usize = 100;
        let mut h = crc32fast::Hasher::new();
        for split in [&self.train, &self.validation, &self.test] {
            h.update(&(split.len() as u64).to_le_bytes());
            h.update(&(split.inputs.ncols() as u64).to_le_bytes());
            h.update(&split.labels);
            for v in split.inputs.rows().into_iter().take(ROWS).flatten() {
                h.update(&v.f64().to_le_bytes());
            }
        }
        h.update(&(self.classes as u64).to_le_bytes());
        h.finalize()
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
}

/// Average-pools one split's images and scales pixels to [0, 1].
fn to_matrix<T: Real>(split: &RawSplit, factor: usize, limit: Option<usize>) -> Examples<T> {
    let images = &split.images;
    let count = limit.map_or(images.count, |n| n.min(images.count));
    let (rows, cols) = (images.rows / factor, images.cols / factor);
    let scale = 1.0 / (255.0 * (factor * factor) as f64);
    let mut inputs = Array2::<T>::zeros((count, rows * cols));
    for (n, mut out) in inputs.outer_iter_mut().enumerate() {
        let image = &images.pixels[n * images.pixels_per_image()..][..images.pixels_per_image()];
        for r in 0..rows {
            for c in 0..cols {
                let mut sum = 0u32;
                for dr in 0..factor {
                    let row = &image[(r * factor + dr) * images.cols..];
                    for dc in 0..factor {
                        sum += u32::from(row[c * factor + dc]);
                    }
                }
                out[r * cols + c] = T::of(f64::from(sum) * scale);
            }
        }
    }
    let classes = split.labels[..count].iter().map(|&l| l.into()).collect();
    Examples::classified(inputs, classes).expect("one label per image: the reader checks counts")
}

/// Builds the train / validation / test splits.
pub fn prepare<T: Real>(raw: &RawData, prep: &Preprocess) -> Result<Dataset<T>, PrepareError> {
    let (rows, cols) = (raw.train.images.rows, raw.train.images.cols);
    let factor = prep.downsample.max(1);
    if rows % factor != 0 || cols % factor != 0 {
        return Err(PrepareError::BadDownsample { factor, rows, cols });
    }
    let all = to_matrix::<T>(&raw.train, factor, prep.train_limit);
    if prep.validation_size >= all.len() || (prep.validation_size == 0 && !prep.monitor_test) {
        return Err(PrepareError::ValidationTooLarge {
            validation: prep.validation_size,
            available: all.len(),
        });
    }
    let cut = all.len() - prep.validation_size;
    let mut train = all.slice(0, cut);
    let mut validation = all.slice(cut, all.len());
    let mut test = to_matrix::<T>(&raw.test, factor, prep.test_limit);
    if prep.zero_mean {
        if let Some(mean) = train.inputs().mean_axis(Axis(0)) {
            for split in [&mut train, &mut validation, &mut test] {
                split.map_inputs(|mut row| row -= &mean);
            }
        }
    }
    if prep.monitor_test {
        validation = test.clone();
    }
    let classes = raw
        .train
        .labels
        .iter()
        .chain(&raw.test.labels)
        .max()
        .map_or(1, |&m| usize::from(m) + 1);
    Ok(Dataset {
        train,
        validation,
        test,
        classes,
        image_shape: (rows / factor, cols / factor),
    })
}
