//! `ltmlp diagnose --method krylov`: the matrix-free curvature measurement at full scale, either
//! while training a preset like the dense method or on saved checkpoints of earlier runs, and
//! its report (`curvature-krylov.json`, the table, the plots).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use ndarray::{s, Array2};
use serde::{Deserialize, Serialize};

use super::angles::{damping_grid, INDEFINITE_FLOOR};
use super::diagnose::{check, train_and_measure};
use super::krylov::{measure, KrylovMatrix, KrylovMeasurement, KrylovOptions};
use crate::cli::RunArgs;
use crate::data::{Dataset, RawData};
use crate::net::Network;
use crate::preset::PresetFile;
use crate::real::Real;
use crate::train::checkpoint::{self, AnyState, CHECKPOINT_FILE};
use crate::train::{AnyData, Experiment};

/// The report file of the Krylov method.
pub const KRYLOV_JSON: &str = "curvature-krylov.json";

/// One measured network state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub variant: String,
    pub seed: u64,
    /// "training" (measured while diagnose trained it) or the checkpoint file.
    pub source: String,
    pub iteration: u64,
    /// Epochs completed (checkpoints only).
    pub epoch: Option<usize>,
    /// Error (%) on the curvature examples.
    pub error: f64,
    #[serde(flatten)]
    pub measurement: KrylovMeasurement,
}

/// The whole of `curvature-krylov.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KrylovReport {
    pub preset: String,
    pub method: String,
    pub options: KrylovOptions,
    /// Most training examples the curvature is measured on (the first ones of the training set).
    pub examples_limit: usize,
    pub damping: Vec<f64>,
    pub indefinite_floor: f64,
    pub notes: Vec<String>,
    pub entries: Vec<Entry>,
}

impl KrylovReport {
    fn new(options: &KrylovOptions, examples: usize) -> Self {
        KrylovReport {
            preset: String::new(),
            method: "krylov".into(),
            options: options.clone(),
            examples_limit: examples,
            damping: damping_grid(),
            indefinite_floor: INDEFINITE_FLOOR,
            notes: vec![
                "Matrices are with respect to the weights only; biases are held fixed.".into(),
                format!("H and F are of the mean cross-entropy over the first {examples} training examples (all of them if fewer), clean inputs, in f64."),
                "Hv: exact, by the R-operator (forward-over-backward). Fv: Gauss-Newton product J^T (diag p - p p^T) J v / T (the true Fisher for softmax).".into(),
                "Extreme eigenvalues: Lanczos with full reorthogonalisation from a Rademacher vector; density, trace and negative share: stochastic Lanczos quadrature over the probes.".into(),
                "Angles: CG for (M + mu I) d = g for all mu at once (Lanczos from g); null where lambda_min + mu <= indefinite_floor; angle_residuals above options.solve_tolerance mark unconverged CG iterates.".into(),
                "g: gradient of the mean loss on the minibatch a sequential-order run uses next (iteration x batch mod the training-set size), clean inputs.".into(),
            ],
            entries: Vec::new(),
        }
    }
}

/// Prints progress on stderr, at most every half second, with the elapsed time.
struct Ticker {
    label: String,
    started: Instant,
    last: Instant,
}

impl Ticker {
    fn new(label: String) -> Self {
        let now = Instant::now();
        Ticker {
            label,
            started: now,
            last: now,
        }
    }

    fn tick(&mut self, what: &str) {
        if self.last.elapsed().as_secs_f64() >= 0.5 {
            eprintln!(
                "[{}] {what} ({:.0}s)",
                self.label,
                self.started.elapsed().as_secs_f64()
            );
            self.last = Instant::now();
        }
    }
}

/// The first `limit` rows of the training set in f64, and their labels.
fn curvature_examples<T: Real>(
    data: &Dataset<T>,
    limit: usize,
) -> (Array2<f64>, Vec<crate::data::Class>) {
    let rows = data.train.len().min(limit);
    let x = data.train.rows(0, rows).mapv(|v| v.f64());
    (x, data.train.class_indices()[..rows].to_vec())
}

fn error_percent(net: &Network<f64>, x: &Array2<f64>, labels: &[crate::data::Class]) -> f64 {
    let mut ws = crate::net::Workspace::new(&net.topology, 1000.min(x.nrows()).max(1));
    net.evaluate(&x.view(), crate::net::Target::Labels(labels), &mut ws)
        .error_percent()
}

/// One measurement with progress lines, as a report entry.
#[allow(clippy::too_many_arguments)]
fn measure_entry(
    net: &Network<f64>,
    x: &Array2<f64>,
    labels: &[crate::data::Class],
    xb: &Array2<f64>,
    lb: &[crate::data::Class],
    options: &KrylovOptions,
    label: String,
    head: Entry,
) -> anyhow::Result<Entry> {
    let mut ticker = Ticker::new(label);
    let measurement = measure(net, x.view(), labels, xb.view(), lb, options, &mut |what| {
        ticker.tick(what)
    })?;
    Ok(Entry {
        error: error_percent(net, x, labels),
        measurement,
        ..head
    })
}

/// Trains `preset` like the dense method (plain SGD, momentum 0) and measures with the Krylov
/// method at every iteration of `at`.
pub fn run_trained(
    preset: &Path,
    args: &RunArgs,
    at: &[u64],
    variants: &[String],
    out: &Path,
    options: &KrylovOptions,
    examples: usize,
) -> anyhow::Result<KrylovReport> {
    if args.variant.is_some() {
        bail!("diagnose takes --variants (a list), not --variant");
    }
    let mut report = KrylovReport::new(options, examples);
    let mut experiments = Vec::new();
    for variant in variants {
        let mut a = args.clone();
        a.variant = Some(variant.clone());
        let exp = a
            .experiment(Some(&preset.to_path_buf()))
            .with_context(|| format!("variant {variant}"))?;
        check(&exp, preset, false)?;
        experiments.push(exp);
    }
    create(out)?;
    for exp in experiments {
        report.preset = exp.resolved.preset.name.clone();
        let variant = exp.resolved.variant;
        let seed = exp.resolved.preset.train.seed;
        let mut each = |m: super::diagnose::AtCheckpoint| -> anyhow::Result<String> {
            let rows = m.x.nrows().min(examples);
            let x = m.x.slice(s![..rows, ..]).to_owned();
            let head = Entry {
                variant: variant.to_string(),
                seed,
                source: "training".into(),
                iteration: m.iteration,
                epoch: None,
                error: 0.0,
                measurement: empty_measurement(),
            };
            let label = format!("{variant} it {}", m.iteration);
            let e = measure_entry(
                m.net,
                &x,
                &m.labels[..rows],
                &m.xb,
                &m.lb,
                options,
                label,
                head,
            )?;
            let line = summary(&e);
            report.entries.push(e);
            write_json(&report, out)?;
            Ok(line)
        };
        let stopped = match exp.data.clone() {
            AnyData::F32(d) => train_and_measure::<f32>(&exp, d, at, &mut each)?.stopped,
            AnyData::F64(d) => train_and_measure::<f64>(&exp, d, at, &mut each)?.stopped,
        };
        if let Some(reason) = stopped {
            report
                .notes
                .push(format!("{variant}: training stopped: {reason}"));
        }
    }
    write_json(&report, out)?;
    plots(&report, out)?;
    Ok(report)
}

fn empty_measurement() -> KrylovMeasurement {
    KrylovMeasurement {
        weights: 0,
        examples: 0,
        loss: 0.0,
        full_gradient_norm: 0.0,
        minibatch_gradient_norm: 0.0,
        hessian: empty_matrix(),
        fisher: empty_matrix(),
        seconds: 0.0,
    }
}

fn empty_matrix() -> KrylovMatrix {
    KrylovMatrix {
        largest: vec![],
        largest_residuals: vec![],
        smallest: 0.0,
        smallest_residual: 0.0,
        trace_mean: 0.0,
        negative_share: 0.0,
        negative_share_beyond_floor: 0.0,
        density_nodes: vec![],
        density_weights: vec![],
        angles: vec![],
        angle_residuals: vec![],
        mu_over_lambda_max: vec![],
        mu_over_trace_mean: vec![],
        extreme_steps: 0,
        probe_steps: 0,
        solve_steps: 0,
        products: 0,
        seconds: 0.0,
    }
}

fn summary(e: &Entry) -> String {
    let m = &e.measurement;
    format!(
        "loss {:.4}, λmax H {:.4e} F {:.4e}, {} + {} products",
        m.loss,
        m.hessian.largest.first().copied().unwrap_or(f64::NAN),
        m.fisher.largest.first().copied().unwrap_or(f64::NAN),
        m.hessian.products,
        m.fisher.products
    )
}

/// A checkpoint path: a run folder (its `checkpoint.bin`) or a checkpoint file.
fn checkpoint_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Measures saved checkpoints (run folders or `checkpoint.bin` copies) of earlier runs. Each
/// checkpoint carries its run's config, so the data set is rebuilt from it (`--data` replaces
/// its data source).
pub fn run_checkpoints(
    paths: &[PathBuf],
    data_dir: Option<PathBuf>,
    out: &Path,
    options: &KrylovOptions,
    examples: usize,
) -> anyhow::Result<KrylovReport> {
    let mut report = KrylovReport::new(options, examples);
    let mut loaded = Vec::new();
    for path in paths {
        let file = checkpoint_file(path);
        let ckpt = checkpoint::load_file(&file)?;
        let config = PresetFile::parse(&file, ckpt.config_toml.clone()).with_context(|| {
            format!("{}: the run's config inside the checkpoint", file.display())
        })?;
        let resolved = config.resolve(None, &[])?;
        loaded.push((file, ckpt, resolved));
    }
    create(out)?;
    let mut raw_cache: HashMap<String, Arc<RawData>> = HashMap::new();
    for (file, ckpt, mut resolved) in loaded {
        if let Some(dir) = &data_dir {
            resolved.preset.data.source = dir.display().to_string();
        }
        let source = resolved.preset.data.source();
        let key = source.describe();
        let raw = match raw_cache.get(&key) {
            Some(raw) => Arc::clone(raw),
            None => {
                let raw = Arc::new(crate::data::load(&source).with_context(|| {
                    format!(
                        "{}: the run's data (use --data DIR to point elsewhere)",
                        file.display()
                    )
                })?);
                raw_cache.insert(key.clone(), Arc::clone(&raw));
                raw
            }
        };
        let exp = Experiment::from_raw(resolved, &raw, key)?;
        check(&exp, &file, false)?;
        report.preset = exp.resolved.preset.name.clone();
        let batch = exp.resolved.preset.train.batch_size;
        let (net, iteration, epoch) = match &ckpt.state {
            AnyState::F32(s) => (s.net.cast::<f64>(), s.iteration, s.epoch),
            AnyState::F64(s) => (s.net.clone(), s.iteration, s.epoch),
        };
        let (x, labels, xb, lb) = match &exp.data {
            AnyData::F32(d) => inputs(d, examples, iteration, batch),
            AnyData::F64(d) => inputs(d, examples, iteration, batch),
        };
        let variant = exp.resolved.variant;
        let seed = exp.resolved.preset.train.seed;
        eprintln!(
            "[{variant} seed {seed} epoch {epoch}] {}: {} weights, curvature on {} training examples",
            file.display(),
            net.params.len(false),
            x.nrows()
        );
        let head = Entry {
            variant: variant.to_string(),
            seed,
            source: file.display().to_string(),
            iteration,
            epoch: Some(epoch),
            error: 0.0,
            measurement: empty_measurement(),
        };
        let label = format!("{variant} seed {seed} epoch {epoch}");
        let e = measure_entry(&net, &x, &labels, &xb, &lb, options, label.clone(), head)?;
        eprintln!("[{label}] {} in {:.0}s", summary(&e), e.measurement.seconds);
        report.entries.push(e);
        write_json(&report, out)?;
    }
    plots(&report, out)?;
    Ok(report)
}

/// The curvature examples and the next minibatch of a sequential-order run.
fn inputs<T: Real>(
    d: &Dataset<T>,
    examples: usize,
    iteration: u64,
    batch: usize,
) -> (
    Array2<f64>,
    Vec<crate::data::Class>,
    Array2<f64>,
    Vec<crate::data::Class>,
) {
    let (x, labels) = curvature_examples(d, examples);
    let n = d.train.len();
    // The rule of the dense method's `next_minibatch`, without converting the whole set.
    let first = (iteration as usize * batch) % n;
    let idx: Vec<usize> = (0..batch).map(|i| (first + i) % n).collect();
    let xb = d.train.select(&idx).inputs().mapv(|v| v.f64());
    let lb = idx.iter().map(|&i| d.train.class_indices()[i]).collect();
    (x, labels, xb, lb)
}

fn create(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

fn write_json(report: &KrylovReport, out: &Path) -> anyhow::Result<()> {
    let path = out.join(KRYLOV_JSON);
    let text = serde_json::to_string(report)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn plots(report: &KrylovReport, out: &Path) -> anyhow::Result<()> {
    super::krylov_plot::densities(report, &out.join("densities.svg"))?;
    super::krylov_plot::angles(report, &out.join("angles-krylov.svg"))
}

/// Re-reads a `curvature-krylov.json` and redraws its plots next to it.
pub fn replot(json: &Path, text: &str) -> anyhow::Result<KrylovReport> {
    let report: KrylovReport = serde_json::from_str(text)
        .with_context(|| format!("{} is not a {KRYLOV_JSON}", json.display()))?;
    plots(&report, json.parent().unwrap_or(Path::new(".")))?;
    Ok(report)
}

fn nearest(grid: &[f64], mu: f64) -> usize {
    (0..grid.len())
        .min_by(|&a, &b| {
            let d = |i: usize| (grid[i] / mu).ln().abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(0)
}

/// The table printed on stdout: λ_max, λ_min, s = trace/n of H, λ_max and s of F, and the
/// angles at μ = 1e-4, at the grid μ nearest λ_max/100 and λ_max/10 (the damping relative to
/// the spectrum's scale: with millions of weights and thousands of examples almost every
/// eigenvalue is near 0, so s is far below the scale of the directions that matter), and at
/// μ = 0.5. An angle whose CG solve did not reach the tolerance is marked with `*`; `n/g`: the
/// target μ lies outside the grid.
pub fn table(report: &KrylovReport) -> String {
    let grid = &report.damping;
    let last = grid.len() - 1;
    let tol = report.options.solve_tolerance;
    let mut out = String::from(
        "| variant | seed | epoch | iter | loss | err % | H λmax | H λmin | H s | F λmax | F s | θN μ=1e-4 | θN μ≈λ/100 | θN μ≈λ/10 | θN μ=0.5 | θF μ=1e-4 | θF μ≈λ/100 | θF μ≈λ/10 | θF μ=0.5 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for e in &report.entries {
        let m = &e.measurement;
        let a = |k: &KrylovMatrix, i: usize| match (
            k.angles.get(i).copied().flatten(),
            k.angle_residuals.get(i).copied().flatten(),
        ) {
            (Some(a), Some(r)) if r > tol => format!("{a:.1}*"),
            (Some(a), _) => format!("{a:.1}"),
            _ => "-".into(),
        };
        let top = |k: &KrylovMatrix| k.largest.first().copied().unwrap_or(f64::NAN);
        let at = |k: &KrylovMatrix, f: f64| {
            let mu = f * top(k).max(f64::MIN_POSITIVE);
            let i = nearest(grid, mu);
            // Outside the grid by more than half a grid step: no grid μ is near the target.
            let half_step = (grid[1] / grid[0]).ln() / 2.0;
            if (grid[i] / mu).ln().abs() > half_step * 1.001 {
                "n/g".to_string()
            } else {
                a(k, i)
            }
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.4} | {:.2} | {:.3e} | {:.2e} | {:.2e} | {:.3e} | {:.2e} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            e.variant,
            e.seed,
            e.epoch.map_or("-".into(), |v| v.to_string()),
            e.iteration,
            m.loss,
            e.error,
            top(&m.hessian),
            m.hessian.smallest,
            m.hessian.trace_mean,
            top(&m.fisher),
            m.fisher.trace_mean,
            a(&m.hessian, 0),
            at(&m.hessian, 0.01),
            at(&m.hessian, 0.1),
            a(&m.hessian, last),
            a(&m.fisher, 0),
            at(&m.fisher, 0.01),
            at(&m.fisher, 0.1),
            a(&m.fisher, last),
        ));
    }
    out
}
