//! Data: the IDX reader, the embedded MNIST subset, preprocessing and minibatch order.

pub mod batches;
pub mod dataset;
pub mod examples;
pub mod idx;
pub mod source;

pub use batches::BatchOrder;
pub use dataset::{prepare, Dataset, PrepareError, Preprocess};
pub use examples::{Class, Examples, Targets};
pub use source::{load, DataSource, RawData, SourceError};
