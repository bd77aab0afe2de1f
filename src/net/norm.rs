//! Batch and layer normalisation of hidden pre-activations (the modern baselines `bn` and
//! `ln`): the normalised forward pass in training and evaluation mode, its backward pass, and
//! the running averages that batch normalisation evaluates with.

use ndarray::{Array1, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::real::Real;

/// Added to every variance before its square root, as in PyTorch.
pub const NORM_EPSILON: f64 = 1e-5;
/// Weight of the newest batch in batch normalisation's running averages (PyTorch's 0.1).
pub const RUNNING_WEIGHT: f64 = 0.1;

/// How hidden pre-activations are normalised before tanh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Not normalised (the papers' networks).
    #[default]
    None,
    /// Batch normalisation: each unit over the batch in training, running averages in
    /// evaluation.
    Batch,
    /// Layer normalisation: each example over the layer's units, the same in both modes.
    Layer,
}

/// Which statistics a forward pass normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The minibatch's own statistics (and the backward pass differentiates through them).
    Train,
    /// Running averages (batch normalisation); layer normalisation is the same in both.
    Eval,
}

/// Running mean and (unbiased) variance of one batch-normalised layer's pre-activations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningStats<T> {
    pub mean: Array1<T>,
    pub var: Array1<T>,
}

impl<T: Real> RunningStats<T> {
    /// Zero mean and unit variance, as PyTorch starts.
    pub fn new(units: usize) -> Self {
        RunningStats {
            mean: Array1::zeros(units),
            var: Array1::ones(units),
        }
    }

    /// Moves the averages towards a training batch's mean and biased variance `var` over
    /// `rows` examples (stored unbiased, as PyTorch does).
    pub fn update(&mut self, mean: &[T], var: &[T], rows: usize) {
        let w = T::of(RUNNING_WEIGHT);
        let unbias = T::of(rows as f64 / (rows.max(2) - 1) as f64);
        for ((m, v), (&bm, &bv)) in self
            .mean
            .iter_mut()
            .zip(self.var.iter_mut())
            .zip(mean.iter().zip(var))
        {
            *m += w * (bm - *m);
            *v += w * (bv * unbias - *v);
        }
    }
}

/// Per-layer buffers of a normalised layer for one batch: the raw pre-activations z, the
/// normalised x̂, the statistics used (per unit for batch, per example for layer
/// normalisation), and the sums the backward pass leaves for the gain and shift gradients.
#[derive(Debug, Clone)]
pub struct NormBuffers<T> {
    pub xhat: ndarray::Array2<T>,
    /// Mean and biased variance of the batch (batch norm: per unit; layer norm: per row).
    pub mean: Vec<T>,
    pub var: Vec<T>,
    /// 1/√(var + ε) actually used (running variance in evaluation mode).
    pub inv_std: Vec<T>,
    /// Σ over rows of δ·x̂ and of δ (δ at the tanh input), from the last backward pass.
    pub gain_grad: Array1<T>,
    pub shift_grad: Array1<T>,
    pub mode: Mode,
}

impl<T: Real> NormBuffers<T> {
    pub fn new(norm: Norm, capacity: usize, units: usize) -> Self {
        let stats = match norm {
            Norm::Layer => capacity,
            _ => units,
        };
        NormBuffers {
            xhat: ndarray::Array2::zeros((capacity, units)),
            mean: vec![T::zero(); stats],
            var: vec![T::zero(); stats],
            inv_std: vec![T::zero(); stats],
            gain_grad: Array1::zeros(units),
            shift_grad: Array1::zeros(units),
            mode: Mode::Eval,
        }
    }
}

/// Normalises the pre-activations `x` (rows × units) in place: x ← gain·x̂ + shift with
/// x̂ = (x − μ)/√(σ² + ε), keeping x̂ and the statistics in `buf`.
pub fn forward<T: Real>(
    norm: Norm,
    mode: Mode,
    x: &mut ArrayViewMut2<T>,
    gain: &Array1<T>,
    shift: &Array1<T>,
    running: Option<&RunningStats<T>>,
    buf: &mut NormBuffers<T>,
) {
    let (rows, n) = x.dim();
    let eps = T::of(NORM_EPSILON);
    buf.mode = mode;
    match (norm, mode, running) {
        (Norm::None, ..) => return,
        (Norm::Batch, Mode::Eval, Some(r)) => {
            for j in 0..n {
                buf.mean[j] = r.mean[j];
                buf.var[j] = r.var[j];
                buf.inv_std[j] = T::one() / (r.var[j] + eps).sqrt();
            }
        }
        (Norm::Batch, ..) => {
            let inv_rows = T::one() / T::of(rows.max(1) as f64);
            for j in 0..n {
                let column = x.column(j);
                let mean = column.iter().fold(T::zero(), |s, &v| s + v) * inv_rows;
                let var = column
                    .iter()
                    .fold(T::zero(), |s, &v| s + (v - mean) * (v - mean))
                    * inv_rows;
                buf.mean[j] = mean;
                buf.var[j] = var;
                buf.inv_std[j] = T::one() / (var + eps).sqrt();
            }
        }
        (Norm::Layer, ..) => {
            let inv_n = T::one() / T::of(n.max(1) as f64);
            for (i, row) in x.outer_iter().enumerate() {
                let mean = row.iter().fold(T::zero(), |s, &v| s + v) * inv_n;
                let var = row
                    .iter()
                    .fold(T::zero(), |s, &v| s + (v - mean) * (v - mean))
                    * inv_n;
                buf.mean[i] = mean;
                buf.var[i] = var;
                buf.inv_std[i] = T::one() / (var + eps).sqrt();
            }
        }
    }
    let per_unit = norm == Norm::Batch;
    for (i, (mut row, mut xhat)) in x
        .outer_iter_mut()
        .zip(buf.xhat.outer_iter_mut())
        .take(rows)
        .enumerate()
    {
        for j in 0..n {
            let s = if per_unit { j } else { i };
            let h = (row[j] - buf.mean[s]) * buf.inv_std[s];
            xhat[j] = h;
            row[j] = gain[j] * h + shift[j];
        }
    }
}

/// Turns δ at the normalised output (the tanh input) into δ at the raw pre-activations, in
/// place, and leaves Σδ·x̂ and Σδ (the gain and shift gradients, unscaled) in `buf`.
/// In training mode the statistics depend on the batch (batch norm) or the row (layer norm)
/// and are differentiated through: δz = (g − mean(g) − x̂·mean(g·x̂))/√(σ² + ε), g = gain·δ.
pub fn backward<T: Real>(
    norm: Norm,
    delta: &mut ArrayViewMut2<T>,
    gain: &Array1<T>,
    buf: &mut NormBuffers<T>,
) {
    let (rows, n) = delta.dim();
    if norm == Norm::None {
        return;
    }
    let xhat: ArrayView2<T> = buf.xhat.slice(ndarray::s![..rows, ..]);
    buf.gain_grad.fill(T::zero());
    buf.shift_grad.fill(T::zero());
    for (d, h) in delta.outer_iter().zip(xhat.outer_iter()) {
        for j in 0..n {
            buf.gain_grad[j] += d[j] * h[j];
            buf.shift_grad[j] += d[j];
        }
    }
    match (norm, buf.mode) {
        (Norm::Batch, Mode::Eval) => {
            for mut d in delta.outer_iter_mut() {
                for j in 0..n {
                    d[j] = d[j] * gain[j] * buf.inv_std[j];
                }
            }
        }
        (Norm::Batch, Mode::Train) => {
            // mean over rows of g = gain·δ and of g·x̂: gain·Σδ/rows and gain·Σδx̂/rows.
            let inv_rows = T::one() / T::of(rows.max(1) as f64);
            for (mut d, h) in delta.outer_iter_mut().zip(xhat.outer_iter()) {
                for j in 0..n {
                    let mean_g = gain[j] * buf.shift_grad[j] * inv_rows;
                    let mean_gh = gain[j] * buf.gain_grad[j] * inv_rows;
                    d[j] = (gain[j] * d[j] - mean_g - h[j] * mean_gh) * buf.inv_std[j];
                }
            }
        }
        (Norm::Layer, _) => {
            let inv_n = T::one() / T::of(n.max(1) as f64);
            for (i, (mut d, h)) in delta.outer_iter_mut().zip(xhat.outer_iter()).enumerate() {
                let (mut mean_g, mut mean_gh) = (T::zero(), T::zero());
                for j in 0..n {
                    let g = gain[j] * d[j];
                    mean_g += g;
                    mean_gh += g * h[j];
                }
                mean_g *= inv_n;
                mean_gh *= inv_n;
                for j in 0..n {
                    d[j] = (gain[j] * d[j] - mean_g - h[j] * mean_gh) * buf.inv_std[i];
                }
            }
        }
        (Norm::None, _) => {}
    }
}
