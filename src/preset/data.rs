//! `[data]`: where the examples come from, how they are split and preprocessed, and the
//! section's own checks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Task, MAX_LAYER_UNITS};
use super::{Invalid, Section};
use crate::data::csvfile::{ColumnRef, CsvOptions};
use crate::data::{ArrayNames, DataFormat, DataSource, Preprocess, ReadOptions, TargetKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `"embedded"` or a directory with the four MNIST-format IDX files.
    pub source: String,
    /// Examples held out from the end of the training files (default: 1,000 for the embedded
    /// subset, 10,000 otherwise).
    pub validation_size: Option<usize>,
    /// Subtract the per-pixel training mean.
    pub zero_mean: bool,
    /// Reshuffle the training order every pass (seeded) instead of the papers' fixed order.
    pub shuffle: bool,
    /// Average-pool images by this factor (2: 28×28 → 14×14).
    pub downsample: usize,
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Classification: the number of classes, labels 0 to `classes - 1` (default: the labels
    /// the training split uses, which must not leave a wide gap). Declares classes that the
    /// training examples may lack, or labels far from the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Which split early stopping, the paper rule and the "best epoch" look at.
    pub monitor: Monitor,
    /// How to read `source`: auto (from the path), idx, cifar10, npz, npy or csv.
    pub format: DataFormat,
    /// NumPy: the names of the four arrays.
    pub arrays: ArrayNames,
    /// CSV: the target column(s), by header name or 0-based index (default: the last column).
    pub target_columns: Vec<ColumnRef>,
    /// CSV: whether the first row is a header (default: detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// CSV: a separate test table (default: the last fifth of `source`'s rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_source: Option<String>,
    /// Colour images: train on one luma channel.
    pub grayscale: bool,
    /// Divide every input feature by its training standard deviation (after centring).
    pub standardize: bool,
    /// Hold 8-bit inputs (IDX, CIFAR-10 pixels, the embedded subset) as bytes and decode them
    /// when read: a quarter of the memory, the same numbers. `false` decodes them once to floats.
    pub byte_storage: bool,
}

/// The split a run monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Monitor {
    /// A held-out slice of the training files (`validation_size` examples from their end).
    #[default]
    Validation,
    /// The authors' protocol: train on every training example and monitor the test set, so
    /// that runs compare epoch by epoch with their figures. Selection then happens on test
    /// data, and every output says so.
    Test,
}

impl Monitor {
    /// The monitored split's name in every output.
    pub fn label(self) -> &'static str {
        match self {
            Monitor::Validation => "validation",
            Monitor::Test => "test (monitored)",
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            source: "embedded".to_string(),
            validation_size: None,
            zero_mean: true,
            shuffle: false,
            downsample: 1,
            train_limit: None,
            test_limit: None,
            classes: None,
            monitor: Monitor::Validation,
            format: DataFormat::Auto,
            arrays: ArrayNames::default(),
            target_columns: Vec::new(),
            header: None,
            test_source: None,
            grayscale: false,
            standardize: false,
            byte_storage: true,
        }
    }
}

impl DataSection {
    pub fn source(&self) -> DataSource {
        DataSource::parse(
            &self.source,
            ReadOptions {
                format: self.format,
                arrays: self.arrays.clone(),
                csv: CsvOptions {
                    header: self.header,
                    targets: self.target_columns.clone(),
                },
                test_source: self.test_source.as_ref().map(PathBuf::from),
            },
        )
    }

    /// The held-out examples: as set, or 1,000 for the embedded subset and otherwise 10,000
    /// or a sixth of the training examples if fewer (decided once the data is read); none
    /// when the test set is monitored.
    pub fn validation_size(&self) -> Option<usize> {
        match (self.monitor, self.validation_size) {
            (Monitor::Test, _) => Some(0),
            (Monitor::Validation, Some(n)) => Some(n),
            (Monitor::Validation, None) => match self.source() {
                DataSource::Embedded => Some(1_000),
                DataSource::Path(..) => None,
            },
        }
    }

    /// The preprocessing for a model of `task`.
    pub fn preprocess(&self, task: Task) -> Preprocess {
        Preprocess {
            downsample: self.downsample,
            grayscale: self.grayscale,
            train_limit: self.train_limit,
            validation_size: self.validation_size(),
            test_limit: self.test_limit,
            classes: self.classes,
            zero_mean: self.zero_mean,
            standardize: self.standardize,
            monitor_test: self.monitor == Monitor::Test,
            byte_storage: self.byte_storage,
            targets: match task {
                Task::Classify => TargetKind::Classes,
                Task::Regress => TargetKind::Values,
                Task::Autoencode => TargetKind::AsRead,
            },
        }
    }
}

impl Section for DataSection {
    fn rules(&self) -> Result<(), Invalid> {
        match (self.monitor, self.validation_size) {
            (Monitor::Validation, Some(0)) => {
                return Invalid::at(
                    "data.validation_size",
                    "0 leaves nothing to validate on; hold out some examples (e.g. 10000), or \
                     set data.monitor = \"test\" to train on every example and monitor the test \
                     set (the authors' protocol)",
                )
            }
            (Monitor::Test, Some(n)) if n > 0 => {
                return Invalid::at(
                    "data.validation_size",
                    format!(
                        "{n} examples held out, but data.monitor = \"test\" trains on every \
                         training example; remove validation_size or monitor the validation set"
                    ),
                )
            }
            _ => {}
        }
        for (key, value) in [
            ("data.train_limit", self.train_limit),
            ("data.test_limit", self.test_limit),
        ] {
            if value == Some(0) {
                return Invalid::at(
                    key,
                    "0 keeps no examples; remove the key to keep them all, or give a positive \
                     count",
                );
            }
        }
        if let Some(classes) = self.classes {
            if !(2..=MAX_LAYER_UNITS).contains(&classes) {
                return Invalid::at(
                    "data.classes",
                    format!(
                        "{classes} classes; give 2 to {MAX_LAYER_UNITS} (labels are 0 to \
                         classes - 1)"
                    ),
                );
            }
        }
        if self.downsample == 0 {
            return Invalid::at(
                "data.downsample",
                "must be at least 1 (1 keeps the images as they are)",
            );
        }
        Ok(())
    }
}
