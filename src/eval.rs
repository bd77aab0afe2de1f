//! `ltmlp eval DIR`: a saved run's network evaluated on its own data or other data — loss,
//! error, per-class error and the confusion matrix (text, `eval.json` and a PNG), or MSE and
//! R² for regression; `--dump-outputs` writes the inputs and outputs as `.npz` for outside
//! checks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::confusion::{self, Confusion};
use crate::data::{npy, Dataset, Examples, Targets};
use crate::net::{Network, Target, Workspace};
use crate::preset::{Precision, PresetFile, Resolved, Task};
use crate::sink::CONFIG_FILE;
use crate::train::checkpoint::{self, AnyState};
use crate::train::{AnyData, Experiment};

/// Rows per forward pass.
const CHUNK: usize = 1000;
/// The report `eval` writes into the run folder (or `--out`).
pub const EVAL_FILE: &str = "eval.json";
/// The picture of the confusion matrix, next to `eval.json` (classifiers only).
pub const CONFUSION_PNG: &str = "eval-confusion.png";

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Run folder (config.toml and checkpoint.bin)
    pub dir: PathBuf,
    /// Data to evaluate on instead of the run's data.source (same format rules)
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Split: test, validation or train
    #[arg(long, default_value = "test", value_parser = ["test", "validation", "train"])]
    pub split: String,
    /// Write the split's decoded inputs (before centring / scaling), the network's outputs and
    /// the targets to this .npz file
    #[arg(long, value_name = "FILE")]
    pub dump_outputs: Option<PathBuf>,
    /// Folder for eval.json and eval-confusion.png (default: the run folder)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A run folder's network (in f64) and its data, prepared exactly as for training.
pub struct SavedRun {
    pub resolved: Resolved,
    pub net: Network<f64>,
    pub data: Dataset<f64>,
}

/// Reads `dir`'s config and checkpoint and prepares the data (`data` overrides data.source).
pub fn load_run(dir: &Path, data: Option<PathBuf>) -> anyhow::Result<SavedRun> {
    let config = dir.join(CONFIG_FILE);
    let file = PresetFile::read_config(&config)?;
    let mut resolved = file.resolve(None, &[])?;
    let checkpoint = checkpoint::load(dir)?;
    let net = match checkpoint.state {
        AnyState::F32(s) => s.net.cast::<f64>(),
        AnyState::F64(s) => s.net,
    };
    // Evaluated in f64: the f32 weights are exactly representable, and outside checks in
    // float64 then agree to rounding.
    resolved.preset.train.precision = Precision::F64;
    let exp = Experiment::prepare(resolved.clone(), data)?;
    let AnyData::F64(data) = exp.data else {
        anyhow::bail!("internal: f64 data expected");
    };
    if exp.topology != net.topology {
        // An edited config.toml, not the data, is then the likelier cause: name it first.
        checkpoint::ensure_config_unchanged(&config, &file.text, &checkpoint.config_toml)?;
        anyhow::bail!(
            "{}: the checkpoint's network is {} but the data gives {}; evaluate on data of the \
             same shape",
            dir.display(),
            net.topology.describe(),
            exp.topology.describe()
        );
    }
    let data = std::sync::Arc::try_unwrap(data).unwrap_or_else(|a| (*a).clone());
    Ok(SavedRun {
        resolved,
        net,
        data,
    })
}

/// The figures of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub split: String,
    pub examples: usize,
    pub task: Task,
    /// Mean cross-entropy, or the mean squared error per target value (regression), or the
    /// per-example squared error (autoencoder).
    pub loss: f64,
    /// Error % (classifiers).
    pub error: Option<f64>,
    /// R² (regression).
    pub r2: Option<f64>,
    /// The file's label of each class, in class-index order.
    #[serde(default)]
    pub class_labels: Vec<i64>,
    /// Error % among the examples of each class (NaN-free: a class without examples gets none).
    #[serde(default)]
    pub per_class_error: Vec<Option<f64>>,
    /// `confusion[true][predicted]` counts.
    #[serde(default)]
    pub confusion: Confusion,
}

/// The network's outputs on every row of `split`.
pub fn outputs(net: &Network<f64>, split: &Examples<f64>) -> Array2<f64> {
    let out_dim = net.topology.size(net.depth());
    let mut out = Array2::zeros((split.len(), out_dim));
    let mut ws = Workspace::new(&net.topology, CHUNK);
    let mut start = 0;
    while start < split.len() {
        let end = (start + CHUNK).min(split.len());
        net.forward(split.rows(start, end).view(), &mut ws);
        out.slice_mut(ndarray::s![start..end, ..])
            .assign(&ws.output());
        start = end;
    }
    out
}

/// Evaluates `split` of a saved run.
pub fn evaluate(run: &SavedRun, split_name: &str, split: &Examples<f64>) -> EvalReport {
    let task = run.resolved.preset.model.task;
    let mut decoded = None;
    let target = crate::train::trainer::target_of(task, split, split.len(), &mut decoded);
    let mut ws = Workspace::new(&run.net.topology, CHUNK);
    let loss = run.net.evaluate(split, target, &mut ws);
    let outputs_per_value = run.net.topology.size(run.net.depth()) as f64;
    let mut report = EvalReport {
        split: split_name.to_string(),
        examples: split.len(),
        task,
        loss: loss.mean(),
        error: None,
        r2: None,
        class_labels: Vec::new(),
        per_class_error: Vec::new(),
        confusion: Confusion::default(),
    };
    match (task, split.targets(), target) {
        (Task::Classify, Targets::Classes(classes), Target::Labels(_)) => {
            let mut confusion = Confusion::new(run.data.classes);
            let out = outputs(&run.net, split);
            for (row, &c) in out.outer_iter().zip(classes) {
                let predicted = row
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    )
                    .0;
                confusion.counts[c as usize][predicted] += 1;
            }
            report.per_class_error = confusion.per_class_error();
            report.confusion = confusion;
            report.error = Some(loss.error_percent());
            report.class_labels = run.data.class_labels.clone();
        }
        (Task::Regress, _, _) => {
            report.loss = loss.mean() / outputs_per_value;
            report.r2 = Some(1.0 - loss.reported / split.target_total_squares(0, split.len()));
        }
        _ => {}
    }
    report
}

/// The report as text: the figures, per-class errors and the confusion matrix.
pub fn text(report: &EvalReport) -> String {
    let mut s = format!("{} split, {} examples: ", report.split, report.examples);
    match report.task {
        Task::Classify => {
            s += &format!(
                "loss {:.4} (cross-entropy), error {:.2}%\n",
                report.loss,
                report.error.unwrap_or(f64::NAN)
            )
        }
        Task::Regress => {
            s += &format!(
                "MSE {:.6}, R² {:.4}\n",
                report.loss,
                report.r2.unwrap_or(f64::NAN)
            )
        }
        Task::Autoencode => s += &format!("loss {:.4} (squared error per example)\n", report.loss),
    }
    if report.confusion.classes() > 0 {
        s += &confusion::text(&report.class_labels, &report.confusion);
    }
    s
}

/// Writes the dump for outside checks: `inputs` (decoded, before centring / scaling),
/// `outputs` and `targets` (class indices or values).
pub fn dump(path: &Path, run: &SavedRun, split: &Examples<f64>) -> anyhow::Result<()> {
    let norm = &run.data.normalisation;
    let mut decoded = split.inputs().into_owned();
    for mut row in decoded.outer_iter_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = *v * norm.std[j] + norm.mean[j];
        }
    }
    let out = outputs(&run.net, split);
    let shape = |a: &Array2<f64>| vec![a.nrows(), a.ncols()];
    let flat = |a: &Array2<f64>| a.iter().copied().collect::<Vec<f64>>();
    let mut arrays = vec![
        (
            "inputs".to_string(),
            npy::encode_f64(&shape(&decoded), &flat(&decoded)),
        ),
        (
            "outputs".to_string(),
            npy::encode_f64(&shape(&out), &flat(&out)),
        ),
    ];
    let targets = match split.targets() {
        Targets::Classes(c) => {
            let c: Vec<i64> = c.iter().map(|&v| i64::from(v)).collect();
            npy::encode_i64(&[c.len()], &c)
        }
        Targets::Values(v) => {
            let v = v.to_owned();
            npy::encode_f64(&shape(&v), &flat(&v))
        }
    };
    arrays.push(("targets".to_string(), targets));
    let file = std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?;
    npy::write_npz(file, &arrays).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

/// The `eval` command.
pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let saved = load_run(&args.dir, args.data.clone())?;
    let split = match args.split.as_str() {
        "train" => &saved.data.train,
        "validation" => &saved.data.validation,
        _ => &saved.data.test,
    };
    let report = evaluate(&saved, &args.split, split);
    crate::say_part!("{}", text(&report));
    let out = args.out.clone().unwrap_or_else(|| args.dir.clone());
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", out.display()))?;
    let json = out.join(EVAL_FILE);
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", json.display()))?;
    crate::say!("wrote {}", json.display());
    if report.confusion.classes() > 0 {
        let png = out.join(CONFUSION_PNG);
        let title = format!(
            "{} split, {} examples, error {:.2}%",
            report.split,
            report.examples,
            report.error.unwrap_or(f64::NAN)
        );
        confusion::png::write(&png, &title, &report.class_labels, &report.confusion)
            .map_err(|e| anyhow::anyhow!("cannot write the confusion picture: {e}"))?;
        crate::say!("wrote {}", png.display());
    }
    if let Some(path) = &args.dump_outputs {
        dump(path, &saved, split)?;
        crate::say!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
