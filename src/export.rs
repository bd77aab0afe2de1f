//! `ltmlp export DIR`: a run folder's network as safetensors or `.npz` — every weight matrix,
//! bias, α, β, γ under stable names, with the topology, unit kinds and preprocessing (training
//! mean and scaling) as metadata — so that other tools can rebuild it (scripts/check_export.py).
//!
//! Names: `layer{l}.bias` `[n_l]`, `layer{l}.from{k}.weight` `[n_l, n_k]` (only connections
//! that exist), `layer{l}.alpha` / `.beta` / `.gamma` `[n_l]` (transformed tanh layers),
//! `input.mean` / `input.std` `[n_0]`, and `classes` (the file's label of each output unit).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::data::{npy, Dataset};
use crate::eval::{load_run, SavedRun};
use crate::net::{Network, UnitKind};
use crate::preset::Resolved;
use crate::real::Real;

/// Version of the names and metadata below; bumped when they change.
pub const EXPORT_FORMAT: &str = "ltmlp-mlp-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Safetensors,
    Npz,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Safetensors => "safetensors",
            ExportFormat::Npz => "npz",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Run folder (config.toml and checkpoint.bin)
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value = "safetensors")]
    pub format: ExportFormat,
    /// Output file (default: DIR/model.safetensors or DIR/model.npz)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Data for the preprocessing statistics instead of the run's data.source
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
}

/// A named f64 tensor.
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

fn kind_name(kind: UnitKind) -> &'static str {
    match kind {
        UnitKind::Input => "input",
        UnitKind::Tanh => "tanh",
        UnitKind::Linear => "linear",
        UnitKind::Softmax => "softmax",
    }
}

/// Every parameter and preprocessing array of the run, in a stable order.
pub fn tensors(run: &SavedRun) -> Vec<Tensor> {
    network_tensors(&run.net, &run.data)
}

/// Every parameter of `net` and preprocessing array of `data`, in a stable order.
pub fn network_tensors<T: Real>(net: &Network<f64>, data: &Dataset<T>) -> Vec<Tensor> {
    let mut out = Vec::new();
    let vector = |name: String, v: &ndarray::Array1<f64>| Tensor {
        name,
        shape: vec![v.len()],
        values: v.to_vec(),
    };
    for l in 1..=net.depth() {
        out.push(vector(format!("layer{l}.bias"), &net.params.biases[l]));
        for k in net.topology.sources(l) {
            if let Some(w) = net.params.weight(l, k) {
                out.push(Tensor {
                    name: format!("layer{l}.from{k}.weight"),
                    shape: vec![w.nrows(), w.ncols()],
                    values: w.iter().copied().collect(),
                });
            }
        }
        if let Some(tr) = &net.transforms[l] {
            out.push(vector(format!("layer{l}.alpha"), &tr.alpha));
            out.push(vector(format!("layer{l}.beta"), &tr.beta));
            out.push(vector(format!("layer{l}.gamma"), &tr.gamma));
        }
    }
    let norm = &data.normalisation;
    for (name, v) in [("input.mean", &norm.mean), ("input.std", &norm.std)] {
        out.push(Tensor {
            name: name.into(),
            shape: vec![v.len()],
            values: v.clone(),
        });
    }
    if !data.class_labels.is_empty() {
        let labels = &data.class_labels;
        out.push(Tensor {
            name: "classes".into(),
            shape: vec![labels.len()],
            values: labels.iter().map(|&c| c as f64).collect(),
        });
    }
    out
}

/// The metadata: strings, JSON where structured.
pub fn metadata(run: &SavedRun) -> HashMap<String, String> {
    network_metadata(&run.resolved, &run.net, &run.data)
}

/// The metadata of `net` trained on `data` under `resolved`.
pub fn network_metadata<T: Real>(
    resolved: &Resolved,
    net: &Network<f64>,
    data: &Dataset<T>,
) -> HashMap<String, String> {
    let t = &net.topology;
    let kinds: Vec<&str> = (0..=t.depth()).map(|l| kind_name(t.kind(l))).collect();
    let connections: Vec<(usize, usize)> = (1..=t.depth())
        .flat_map(|l| t.sources(l).map(move |k| (l, k)))
        .filter(|&(l, k)| net.params.weight(l, k).is_some())
        .collect();
    let p = &resolved.preset;
    let json = |v: serde_json::Value| v.to_string();
    HashMap::from([
        ("format".into(), EXPORT_FORMAT.into()),
        ("sizes".into(), json(serde_json::json!(t.sizes()))),
        ("kinds".into(), json(serde_json::json!(kinds))),
        ("connections".into(), json(serde_json::json!(connections))),
        (
            "layer".into(),
            "x_l = layer{l}.bias + sum over k of layer{l}.from{k}.weight @ y_k; tanh units: \
             y = gamma * (tanh(x) + alpha * x + beta); linear: y = x; softmax over the layer"
                .into(),
        ),
        (
            "preprocessing".into(),
            format!(
                "decoded inputs ({}) of shape {:?}, flattened in C order, then \
                 (x - input.mean) / input.std",
                if data.decoding.is_empty() {
                    "as in the file"
                } else {
                    &data.decoding
                },
                data.input_shape
            ),
        ),
        ("task".into(), json(serde_json::json!(p.model.task))),
        ("preset".into(), p.name.clone()),
        ("variant".into(), resolved.variant.to_string()),
    ])
}

/// Encodes the export in `format`.
pub fn encode(run: &SavedRun, format: ExportFormat) -> anyhow::Result<Vec<u8>> {
    encode_network(&run.resolved, &run.net, &run.data, format)
}

/// Encodes `net` (trained on `data` under `resolved`) in `format`.
pub fn encode_network<T: Real>(
    resolved: &Resolved,
    net: &Network<f64>,
    data: &Dataset<T>,
    format: ExportFormat,
) -> anyhow::Result<Vec<u8>> {
    let tensors = network_tensors(net, data);
    let meta = network_metadata(resolved, net, data);
    match format {
        ExportFormat::Safetensors => {
            let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
                .iter()
                .map(|t| {
                    let b = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (t.name.clone(), b, t.shape.clone())
                })
                .collect();
            let views = bytes
                .iter()
                .map(|(name, b, shape)| {
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F64, shape.clone(), b)
                        .map(|v| (name.clone(), v))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(safetensors::serialize(views, Some(meta))?)
        }
        ExportFormat::Npz => {
            let mut arrays: Vec<(String, Vec<u8>)> = tensors
                .iter()
                .map(|t| (t.name.clone(), npy::encode_f64(&t.shape, &t.values)))
                .collect();
            let meta = serde_json::to_string(&meta)?;
            arrays.push((
                "__metadata__".into(),
                npy::encode_u8(&[meta.len()], meta.as_bytes()),
            ));
            let cursor = npy::write_npz(std::io::Cursor::new(Vec::new()), &arrays)?;
            Ok(cursor.into_inner())
        }
    }
}

/// The `export` command.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let saved = load_run(&args.dir, args.data.clone())?;
    if saved.net.topology.norm() != crate::net::Norm::None {
        // The exported layout (and scripts/check_export.py) has no place for the gains,
        // shifts and running averages yet; a file without them would compute another function.
        anyhow::bail!(
            "{}: a {} run cannot be exported yet: the export formats hold the papers' networks \
             (none, ab, abg) only; `ltmlp eval {}` evaluates it",
            args.dir.display(),
            saved.net.topology.describe(),
            args.dir.display()
        );
    }
    let bytes = encode(&saved, args.format)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.dir.join(format!("model.{}", args.format.extension())));
    std::fs::write(&out, &bytes)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", out.display()))?;
    crate::say!(
        "wrote {} ({} tensors, {} bytes, {})",
        out.display(),
        tensors(&saved).len(),
        bytes.len(),
        saved.net.topology.describe()
    );
    Ok(ExitCode::SUCCESS)
}
