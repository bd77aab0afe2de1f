//! `ltmlp diagnose`: train a small preset with plain SGD (no momentum) for each variant and, at
//! each checkpoint, measure the whole-training-set Hessian and Fisher matrices and the angles
//! between the minibatch gradient and the damped Newton / natural-gradient directions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::angles::{damped_angles, damping_grid, INDEFINITE_FLOOR};
use super::spectrum::{eigen, SpectrumStats, EIGEN_FLOOR};
use super::{asymmetry, fisher, hessian_fd, symmetrise, WeightGradient};
use crate::cli::RunArgs;
use crate::data::{Class, Dataset};
use crate::net::Network;
use crate::preset::{Task, PAPER_VARIANTS};
use crate::real::Real;
use crate::train::{AnyData, Experiment, Trainer};

/// Largest weight count (biases excluded) for a dense Hessian: five 5000×5000 f64 matrices are
/// about 1 GB, and 10,000 gradient passes per checkpoint are already minutes.
pub const MAX_DENSE_WEIGHTS: usize = 5000;
/// Largest training set the whole-set Hessian is computed on.
pub const MAX_TRAIN_EXAMPLES: usize = 20_000;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub at: Vec<u64>,
    pub variants: Vec<String>,
    pub out: PathBuf,
    pub step: f64,
}

/// Parses `--at 100,4000,8000` (positive, sorted and deduplicated on return).
pub fn parse_iterations(text: &str) -> anyhow::Result<Vec<u64>> {
    let mut at = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        match item.parse::<u64>() {
            Ok(n) if n > 0 => at.push(n),
            _ => bail!(
                "--at: `{item}` is not a positive iteration number; give a comma-separated list such as 100,4000,8000"
            ),
        }
    }
    at.sort_unstable();
    at.dedup();
    Ok(at)
}

/// Parses `--variants none,ab,abg`.
pub fn parse_variants(text: &str) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if !PAPER_VARIANTS.contains(&item) {
            // The curvature products differentiate the papers' network; the normalised
            // baselines' batch statistics would make them another function.
            bail!(
                "--variants: `{item}` is not one of the variants curvature diagnostics cover; \
                 choose from {}",
                PAPER_VARIANTS.join(", ")
            );
        }
        if !out.iter().any(|v| v == item) {
            out.push(item.to_string());
        }
    }
    Ok(out)
}

/// One matrix at one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixReport {
    #[serde(flatten)]
    pub stats: SpectrumStats,
    /// Ascending.
    pub eigenvalues: Vec<f64>,
    pub diagonal: Vec<f64>,
    /// Angle (degrees) between g and (M + μI)⁻¹g for each μ of `damping`; null when M + μI is
    /// not positive definite.
    pub angles: Vec<Option<f64>>,
}

/// One checkpoint of one variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub iteration: u64,
    /// Mean cross-entropy and error (%) on the whole training set.
    pub train_loss: f64,
    pub train_error: f64,
    pub full_gradient_norm: f64,
    pub minibatch_gradient_norm: f64,
    /// ‖H − Hᵀ‖_F/‖H‖_F of the finite-difference Hessian before symmetrisation.
    pub hessian_asymmetry: f64,
    pub hessian: MatrixReport,
    pub fisher: MatrixReport,
    pub seconds: f64,
}

/// One variant's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantReport {
    pub variant: String,
    pub learning_rate: f64,
    pub batch_size: usize,
    pub weights: usize,
    pub train_examples: usize,
    pub checkpoints: Vec<Checkpoint>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// The whole of `curvature.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub preset: String,
    pub origin: String,
    pub at: Vec<u64>,
    pub finite_difference_step: f64,
    pub eigen_floor: f64,
    pub indefinite_floor: f64,
    pub damping: Vec<f64>,
    pub notes: Vec<String>,
    pub variants: Vec<VariantReport>,
}

/// Runs every variant and writes `curvature.json`, `spectra.svg` and `angles.svg` into the
/// output folder.
pub fn run(preset: &Path, args: &RunArgs, options: &Options) -> anyhow::Result<Report> {
    if args.variant.is_some() {
        bail!("diagnose takes --variants (a list), not --variant");
    }
    let mut report = Report {
        preset: String::new(),
        origin: preset.display().to_string(),
        at: options.at.clone(),
        finite_difference_step: options.step,
        eigen_floor: EIGEN_FLOOR,
        indefinite_floor: INDEFINITE_FLOOR,
        damping: damping_grid(),
        notes: vec![
            "Matrices are with respect to the weights only; biases are held fixed.".into(),
            "H: Hessian of the mean training cross-entropy over the whole training set, columns by central differences of the backprop gradient, symmetrised.".into(),
            "F: Fisher = (1/T) sum_t J_t^T (diag p_t - p_t p_t^T) J_t over the training set (equals the Gauss-Newton matrix of the mean loss).".into(),
            "g: gradient of the mean loss on the minibatch the next SGD step would use (sequential order, clean inputs).".into(),
            "Training: plain SGD, momentum forced to 0.".into(),
        ],
        variants: Vec::new(),
    };
    // Check every variant before spending minutes on the first.
    let mut experiments = Vec::new();
    for variant in &options.variants {
        let mut a = args.clone();
        a.variant = Some(variant.clone());
        let exp = a
            .experiment(Some(&preset.to_path_buf()))
            .with_context(|| format!("variant {variant}"))?;
        check(&exp, preset, true)?;
        experiments.push(exp);
    }
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    for exp in experiments {
        report.preset = exp.resolved.preset.name.clone();
        let v = match exp.data.clone() {
            AnyData::F32(d) => measure_variant::<f32>(&exp, d, options)?,
            AnyData::F64(d) => measure_variant::<f64>(&exp, d, options)?,
        };
        report.variants.push(v);
        // Written after each variant so that an interrupted run keeps what it measured.
        write_json(&report, &options.out)?;
    }
    super::plot::spectra(&report, &options.out.join("spectra.svg"))?;
    super::plot::angles(&report, &options.out.join("angles.svg"))?;
    Ok(report)
}

fn write_json(report: &Report, out: &Path) -> anyhow::Result<()> {
    let path = out.join("curvature.json");
    let text = serde_json::to_string(report)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Refuses experiments the analysis cannot handle (with `dense`, also those too large for dense
/// matrices), naming the preset field to change.
pub(crate) fn check(exp: &Experiment, preset: &Path, dense: bool) -> anyhow::Result<()> {
    let p = &exp.resolved.preset;
    if p.model.task != Task::Classify {
        bail!(
            "{}: diagnose needs model.task = \"classify\" (the Fisher matrix is for softmax outputs)",
            preset.display()
        );
    }
    if !dense {
        return Ok(());
    }
    let weights = exp.topology.weight_count();
    if weights > MAX_DENSE_WEIGHTS {
        bail!(
            "{}: the network has {weights} weights but a dense Hessian is limited to {MAX_DENSE_WEIGHTS}; \
             make model.hidden smaller or raise data.downsample",
            preset.display()
        );
    }
    let train = match &exp.data {
        AnyData::F32(d) => d.train.len(),
        AnyData::F64(d) => d.train.len(),
    };
    if train > MAX_TRAIN_EXAMPLES {
        bail!(
            "{}: the whole-set Hessian is limited to {MAX_TRAIN_EXAMPLES} training examples (this preset has {train}); \
             set data.train_limit",
            preset.display()
        );
    }
    Ok(())
}

fn measure_variant<T: Real>(
    exp: &Experiment,
    data: Arc<Dataset<T>>,
    options: &Options,
) -> anyhow::Result<VariantReport> {
    let mut checkpoints = Vec::new();
    let run = train_and_measure(exp, data, &options.at, &mut |m| {
        let c = measure(
            m.net,
            m.x,
            m.labels,
            &m.xb,
            &m.lb,
            m.iteration,
            options.step,
        )?;
        let line = format!("train loss {:.4}", c.train_loss);
        checkpoints.push(c);
        Ok(line)
    })?;
    Ok(VariantReport {
        variant: exp.resolved.variant.to_string(),
        learning_rate: run.learning_rate,
        batch_size: run.batch_size,
        weights: run.weights,
        train_examples: run.train_examples,
        checkpoints,
        stopped: run.stopped,
    })
}

/// The network and data at one checkpoint of [`train_and_measure`].
pub struct AtCheckpoint<'a> {
    pub iteration: u64,
    pub net: &'a Network<f64>,
    /// The whole training set and its labels.
    pub x: &'a Array2<f64>,
    pub labels: &'a [crate::data::Class],
    /// The minibatch the next step would use (sequential order with wrap-around).
    pub xb: Array2<f64>,
    pub lb: Vec<crate::data::Class>,
}

/// What [`train_and_measure`] reports about the training run.
pub struct TrainingRun {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub weights: usize,
    pub train_examples: usize,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

/// Trains the experiment with plain SGD (momentum forced to 0) and calls `each` at every
/// iteration of `at`; `each` returns a short summary for the progress line.
pub fn train_and_measure<T: Real>(
    exp: &Experiment,
    data: Arc<Dataset<T>>,
    at: &[u64],
    each: &mut dyn FnMut(AtCheckpoint) -> anyhow::Result<String>,
) -> anyhow::Result<TrainingRun> {
    let p = &exp.resolved.preset;
    let variant = exp.resolved.variant;
    let net = Network::<T>::init(exp.topology.clone(), p.train.seed);
    let weights = net.params.len(false);
    let mut trainer = Trainer::new(&exp.resolved, Arc::clone(&data), net);
    trainer
        .set_momentum(&exp.resolved, 0.0)
        .map_err(anyhow::Error::msg)?;
    let x: Array2<f64> = data.train.inputs().mapv(|v| v.f64());
    let labels = data.train.class_indices();
    let n = labels.len();
    let batch = p.train.batch_size;
    let mut run = TrainingRun {
        learning_rate: trainer.learning_rate(),
        batch_size: batch,
        weights,
        train_examples: n,
        stopped: None,
    };
    eprintln!(
        "[{variant}] {weights} weights, {n} training examples, learning rate {}, batch {batch}",
        run.learning_rate
    );
    let started = Instant::now();
    for &iteration in at {
        while trainer.iteration < iteration {
            if let Err(e) = trainer.step() {
                run.stopped = Some(e.to_string());
                eprintln!("[{variant}] {e}");
                return Ok(run);
            }
        }
        let t0 = Instant::now();
        let net = trainer.net.cast::<f64>();
        let (xb, lb) = next_minibatch(&x, labels, iteration, batch);
        let line = each(AtCheckpoint {
            iteration,
            net: &net,
            x: &x,
            labels,
            xb,
            lb,
        })?;
        eprintln!(
            "[{variant}] iteration {iteration}: {line}, measured in {:.1}s ({:.0}s so far)",
            t0.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(run)
}

/// The minibatch a sequential-order run uses after `iteration` steps (wrapping around).
pub fn next_minibatch(
    x: &Array2<f64>,
    labels: &[Class],
    iteration: u64,
    batch: usize,
) -> (Array2<f64>, Vec<Class>) {
    let n = labels.len();
    let first = (iteration as usize * batch) % n;
    let idx: Vec<usize> = (0..batch).map(|i| (first + i) % n).collect();
    let xb = x.select(ndarray::Axis(0), &idx);
    let lb: Vec<Class> = idx.iter().map(|&i| labels[i]).collect();
    (xb, lb)
}

/// Every measurement at one checkpoint.
pub fn measure(
    net: &Network<f64>,
    x: &Array2<f64>,
    labels: &[Class],
    xb: &Array2<f64>,
    lb: &[Class],
    iteration: u64,
    step: f64,
) -> anyhow::Result<Checkpoint> {
    let t0 = Instant::now();
    let weights = net.params.len(false);
    let mut grad = WeightGradient::new(net);
    let mut full = vec![0.0; weights];
    let train_loss = grad.compute(net, x.view(), labels, &mut full);
    let mut g = vec![0.0; weights];
    grad.compute(net, xb.view(), lb, &mut g);
    let mut ws = crate::net::Workspace::new(&net.topology, 1000);
    let train_error = net
        .evaluate(&x.view(), crate::net::Target::Labels(labels), &mut ws)
        .error_percent();
    let mut h = hessian_fd(net, x.view(), labels, step);
    let hessian_asymmetry = asymmetry(&h);
    symmetrise(&mut h);
    let f = fisher(net, x.view());
    let grid = damping_grid();
    let report = |m: &Array2<f64>| -> anyhow::Result<MatrixReport> {
        let e = eigen(m).map_err(anyhow::Error::msg)?;
        Ok(MatrixReport {
            stats: SpectrumStats::new(m, &e.values, EIGEN_FLOOR),
            eigenvalues: e.values.to_vec(),
            diagonal: m.diag().to_vec(),
            angles: damped_angles(&e, &g, &grid),
        })
    };
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    Ok(Checkpoint {
        iteration,
        train_loss,
        train_error,
        full_gradient_norm: norm(&full),
        minibatch_gradient_norm: norm(&g),
        hessian_asymmetry,
        hessian: report(&h)?,
        fisher: report(&f)?,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Default output folder: `runs/diagnose-<preset>-<UTC time>`.
pub fn default_out_dir(preset: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("runs").join(format!("diagnose-{preset}-{stamp}"))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn fmt_sci(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2e}"))
}

/// Index of the damping value nearest (in log scale) to `mu`.
fn nearest(grid: &[f64], mu: f64) -> usize {
    (0..grid.len())
        .min_by(|&a, &b| {
            let d = |i: usize| (grid[i] / mu).ln().abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(0)
}

/// The short table printed on stdout (and pasted into docs/curvature.md). Besides fixed μ, the
/// angles are shown at the grid μ nearest to s = trace(M)/n (the mean diagonal) and to 10·s,
/// because a fixed μ means more damping for a matrix with smaller eigenvalues.
pub fn table(report: &Report) -> String {
    let grid = &report.damping;
    let last = grid.len() - 1;
    let mut out = String::from(
        "| variant | iter | train loss | H κ | H neg % | H offdiag | F κ | F offdiag | θN μ=1e-4 | θN μ≈s | θN μ≈10s | θN μ=0.5 | θF μ=1e-4 | θF μ≈s | θF μ≈10s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for v in &report.variants {
        for c in &v.checkpoints {
            let a = |m: &MatrixReport, i: usize| fmt_opt(m.angles.get(i).copied().flatten(), 1);
            let at = |m: &MatrixReport, factor: f64| {
                a(
                    m,
                    nearest(grid, factor * m.stats.diagonal_mean.max(f64::MIN_POSITIVE)),
                )
            };
            out.push_str(&format!(
                "| {} | {} | {:.4} | {} | {:.1} | {:.2} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |\n",
                v.variant,
                c.iteration,
                c.train_loss,
                fmt_sci(c.hessian.stats.condition),
                100.0 * c.hessian.stats.negative_share,
                c.hessian.stats.off_diagonal_ratio,
                fmt_sci(c.fisher.stats.condition),
                c.fisher.stats.off_diagonal_ratio,
                a(&c.hessian, 0),
                at(&c.hessian, 1.0),
                at(&c.hessian, 10.0),
                a(&c.hessian, last),
                a(&c.fisher, 0),
                at(&c.fisher, 1.0),
                at(&c.fisher, 10.0),
            ));
        }
        if let Some(reason) = &v.stopped {
            out.push_str(&format!("| {} | stopped: {reason} |\n", v.variant));
        }
    }
    out
}

/// Re-reads a `curvature.json` and redraws its plots next to it (no recomputation).
pub fn replot(json: &Path) -> anyhow::Result<Report> {
    let text = crate::bounded::read_text(json, crate::bounded::FileKind::CurvatureReport)?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a curvature.json", json.display()))?;
    let dir = json.parent().unwrap_or(Path::new("."));
    super::plot::spectra(&report, &dir.join("spectra.svg"))?;
    super::plot::angles(&report, &dir.join("angles.svg"))?;
    Ok(report)
}
