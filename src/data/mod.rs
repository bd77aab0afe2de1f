//! Data: the loaders (IDX, CIFAR-10, NumPy, CSV, the embedded subset), preprocessing into
//! `Examples`, and minibatch order.

pub mod batches;
pub mod cifar;
pub mod csvfile;
pub mod dataset;
pub mod examples;
pub mod idx;
pub mod npy;
pub mod source;

pub use batches::BatchOrder;
pub use dataset::{prepare, Dataset, Normalisation, PrepareError, Preprocess, TargetKind};
pub use examples::{Class, Examples, FirstRows, InputRows, RowRange, Targets};
pub use source::{load, ArrayNames, DataFormat, DataSource, RawData, ReadOptions, SourceError};
