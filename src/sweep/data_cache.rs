//! Data shared by the cells of a sweep: each distinct source is read once and each distinct
//! data configuration (the `[data]` table and the precision) is prepared once per process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::data::{self, RawData};
use crate::preset::{Precision, Resolved};
use crate::train::session::PrepareError;
use crate::train::{AnyData, Experiment};

#[derive(Default)]
struct Inner {
    raw: HashMap<String, Arc<RawData>>,
    prepared: HashMap<String, AnyData>,
}

/// Loaded and prepared data, keyed by configuration.
#[derive(Default)]
pub struct DataCache {
    inner: Mutex<Inner>,
}

impl DataCache {
    /// (sources read, data configurations prepared) so far.
    pub fn counts(&self) -> (usize, usize) {
        self.inner
            .lock()
            .map_or((0, 0), |i| (i.raw.len(), i.prepared.len()))
    }

    /// The experiment of a resolved cell, with its own data configuration's data.
    pub fn experiment(&self, resolved: Resolved) -> Result<Experiment, PrepareError> {
        let d = &resolved.preset.data;
        let source = d.source();
        let precision = resolved.preset.train.precision;
        let key = serde_json::to_string(&(d, precision)).unwrap_or_default();
        // One lock for loading and preparing: a second worker needing the same data waits
        // for it instead of loading it again.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let data = match inner.prepared.get(&key) {
            Some(data) => data.clone(),
            None => {
                let raw = match inner.raw.get(&d.source) {
                    Some(raw) => Arc::clone(raw),
                    None => {
                        let raw = Arc::new(data::load(&source)?);
                        inner.raw.insert(d.source.clone(), Arc::clone(&raw));
                        raw
                    }
                };
                let prep = d.preprocess(resolved.preset.model.task);
                let wrap = |error| PrepareError::Data {
                    file: resolved.origin.clone(),
                    error,
                };
                let data = match precision {
                    Precision::F32 => {
                        AnyData::F32(Arc::new(data::prepare::<f32>(&raw, &prep).map_err(wrap)?))
                    }
                    Precision::F64 => {
                        AnyData::F64(Arc::new(data::prepare::<f64>(&raw, &prep).map_err(wrap)?))
                    }
                };
                inner.prepared.insert(key, data.clone());
                data
            }
        };
        drop(inner);
        let (input_dim, classes, train) = match &data {
            AnyData::F32(d) => (d.input_dim(), d.classes, d.train.len()),
            AnyData::F64(d) => (d.input_dim(), d.classes, d.train.len()),
        };
        let topology = resolved.topology(input_dim, classes, train)?;
        Ok(Experiment {
            resolved,
            data,
            topology,
            data_description: source.describe(),
        })
    }
}
