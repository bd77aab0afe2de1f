//! `ltmlp run --trace FILE`: what another implementation needs to retrace a native run step by
//! step (python/tests/test_conformance.py does it in PyTorch): the initial network in the
//! export format beside FILE, then one JSON line per minibatch with its example indices, loss,
//! rate, momentum and every unit's α, β, γ after the step. The format is in
//! docs/pytorch.md.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::data::Dataset;
use crate::export::{encode_network, ExportFormat};
use crate::net::{BatchLoss, Network};
use crate::preset::Resolved;
use crate::real::Real;
use crate::train::Trainer;

/// Version of the trace's lines; bumped when they change.
pub const TRACE_FORMAT: &str = "ltmlp-trace-1";

/// An open trace: its file and where it is.
#[derive(Debug)]
pub struct Trace {
    path: PathBuf,
    out: BufWriter<File>,
}

/// What one minibatch step did, for its trace line.
pub struct TracedStep<'a, T: Real> {
    pub iteration: u64,
    pub epoch: usize,
    pub indices: &'a [usize],
    pub loss: &'a BatchLoss,
    pub rate: f64,
    pub momenta: (f64, f64),
    /// Where the step's re-estimation took its data ("batch" or "sample"), if it had one.
    pub reestimated: Option<&'static str>,
    pub net: &'a Network<T>,
}

/// `FILE.init.safetensors`: the initial network beside the trace.
pub fn init_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".init.safetensors");
    PathBuf::from(name)
}

/// Creates (empties) the trace and its initial-network file, so that a path that cannot be
/// written is refused before training starts.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    for p in [path.to_path_buf(), init_path(path)] {
        File::create(&p).map_err(|e| {
            anyhow::anyhow!(
                "--trace {}: cannot write {}: {e}",
                path.display(),
                p.display()
            )
        })?;
    }
    Ok(())
}

impl Trace {
    /// [`Trace::start`] for a trainer that has not yet taken a step.
    pub fn start_for<T: Real>(
        path: &Path,
        resolved: &Resolved,
        trainer: &Trainer<T>,
    ) -> anyhow::Result<Trace> {
        let data = trainer.data();
        let ipe = trainer.iterations_per_epoch;
        Trace::start(
            path,
            resolved,
            &trainer.net,
            data,
            ipe,
            &trainer.sample_indices,
        )
    }

    /// Opens the trace and writes its header line and the initial network.
    pub fn start<T: Real>(
        path: &Path,
        resolved: &Resolved,
        net: &Network<T>,
        data: &Dataset<T>,
        iterations_per_epoch: u64,
        sample: &[usize],
    ) -> anyhow::Result<Trace> {
        let init = init_path(path);
        let bytes = encode_network(
            resolved,
            &net.cast::<f64>(),
            data,
            ExportFormat::Safetensors,
        )?;
        std::fs::write(&init, bytes)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", init.display()))?;
        let file = File::create(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
        let train = data.train.rows(0, data.train.len());
        let (sum, squares) = train.iter().fold((0.0, 0.0), |(s, q), v| {
            let v = v.f64();
            (s + v, q + v * v)
        });
        let header = json!({
            "format": TRACE_FORMAT,
            "init": init.file_name().map(|n| n.to_string_lossy().into_owned()),
            "config": resolved.to_toml(),
            "precision": T::NAME,
            "flags": resolved.flags,
            "iterations_per_epoch": iterations_per_epoch,
            "data": {
                "train": data.train.len(),
                "validation": data.validation.len(),
                "test": data.test.len(),
                "input_dim": data.input_dim(),
                "train_sum": sum,
                "train_sum_of_squares": squares,
            },
            "sample": sample,
        });
        let mut trace = Trace {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        };
        trace.line(&header)?;
        Ok(trace)
    }

    /// Appends one step's line.
    pub fn step<T: Real>(&mut self, step: TracedStep<'_, T>) -> anyhow::Result<()> {
        let per_layer = |get: fn(&crate::net::Transform<T>) -> &ndarray::Array1<T>| {
            step.net
                .transforms
                .iter()
                .flatten()
                .map(|tr| get(tr).iter().map(|v| v.f64()).collect::<Vec<f64>>())
                .collect::<Vec<_>>()
        };
        let line = json!({
            "step": step.iteration,
            "epoch": step.epoch,
            "indices": step.indices,
            "loss": step.loss.mean(),
            "errors": step.loss.errors,
            "rate": step.rate,
            "momentum": step.momenta.0,
            "bias_momentum": step.momenta.1,
            "reestimated": step.reestimated,
            "alpha": per_layer(|tr| &tr.alpha),
            "beta": per_layer(|tr| &tr.beta),
            "gamma": per_layer(|tr| &tr.gamma),
        });
        self.line(&line)
    }

    fn line(&mut self, value: &serde_json::Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        // Flushed every line: a run that ends early still leaves whole lines.
        self.out
            .flush()
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
