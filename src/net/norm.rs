//! Batch and layer normalisation of hidden pre-activations (the modern baselines `bn` and
//! `ln`): the normalised forward pass in training and evaluation mode, its backward pass, and
//! the running averages that batch normalisation evaluates with.

use ndarray::{Array1, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernels;
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
    let parts = kernels::parts_for(x.len());
    forward_on(norm, mode, x, gain, shift, running, buf, parts);
}

/// [`forward`] on `parts` threads.
#[allow(clippy::too_many_arguments)]
fn forward_on<T: Real>(
    norm: Norm,
    mode: Mode,
    x: &mut ArrayViewMut2<T>,
    gain: &Array1<T>,
    shift: &Array1<T>,
    running: Option<&RunningStats<T>>,
    buf: &mut NormBuffers<T>,
    parts: usize,
) {
    buf.mode = mode;
    if norm == Norm::None {
        return;
    }
    let (gain, shift) = (contiguous(gain), contiguous(shift));
    with_contiguous(x, |x, n| match norm {
        Norm::Batch => batch_forward(mode, x, n, gain, shift, running, buf, parts),
        Norm::Layer => layer_forward(x, n, gain, shift, buf, parts),
        Norm::None => {}
    });
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
    let parts = kernels::parts_for(delta.len());
    backward_on(norm, delta, gain, buf, parts);
}

/// [`backward`] on `parts` threads.
fn backward_on<T: Real>(
    norm: Norm,
    delta: &mut ArrayViewMut2<T>,
    gain: &Array1<T>,
    buf: &mut NormBuffers<T>,
    parts: usize,
) {
    if norm == Norm::None {
        return;
    }
    let gain = contiguous(gain);
    with_contiguous(delta, |delta, n| {
        backward_in_parts(norm, delta, n, gain, buf, parts)
    });
}

// The loops below run on `parts` threads without changing a single number: every sum runs
// over the rows in order, each unit's sums on one thread (the units split into column blocks),
// and every elementwise step splits by whole rows. They walk the row-major matrices row by
// row, so that the compiler vectorises them across units (a column walk strides by a row).

fn contiguous<T: Real>(v: &Array1<T>) -> &[T] {
    v.as_slice()
        .expect("gains and shifts are owned, contiguous arrays")
}

/// Calls `f` with the matrix as one row-major slice and its row length. The workspace's
/// matrices always are such slices; any other view goes through a copy.
fn with_contiguous<T: Real>(x: &mut ArrayViewMut2<T>, f: impl FnOnce(&mut [T], usize)) {
    let n = x.ncols();
    if n == 0 {
        return;
    }
    if let Some(values) = x.as_slice_mut() {
        return f(values, n);
    }
    let mut copy = x.to_owned();
    f(
        copy.as_slice_mut().expect("an owned array is contiguous"),
        n,
    );
    x.assign(&copy);
}

/// The first `values` values of x̂ (the rows of the current batch).
fn xhat_rows<T: Real>(xhat: &mut ndarray::Array2<T>, values: usize) -> &mut [T] {
    &mut xhat
        .as_slice_mut()
        .expect("x̂ is an owned, contiguous array")[..values]
}

/// Runs `f(first_unit, a, b)` on the units cut into `parts` column blocks, each on its own
/// thread, with the blocks' parts of two per-unit vectors.
fn in_column_blocks<T: Real>(
    parts: usize,
    a: &mut [T],
    b: &mut [T],
    f: impl Fn(usize, &mut [T], &mut [T]) + Sync,
) {
    if parts <= 1 {
        return f(0, a, b);
    }
    let width = a.len().div_ceil(parts).max(1);
    a.par_chunks_mut(width)
        .zip(b.par_chunks_mut(width))
        .enumerate()
        .with_max_len(1)
        .for_each(|(k, (a, b))| f(k * width, a, b));
}

/// Runs `f(first_row, rows)` on `parts` blocks of whole rows (n values each) of `a`.
fn in_row_blocks<T: Real>(parts: usize, n: usize, a: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    if parts <= 1 {
        return f(0, a);
    }
    let values = kernels::rows_per_part(a.len() / n, n, parts);
    a.par_chunks_mut(values)
        .enumerate()
        .with_max_len(1)
        .for_each(|(k, a)| f(k * values / n, a));
}

/// [`in_row_blocks`] over the same rows of two matrices.
fn in_row_block_pairs<T: Real>(
    parts: usize,
    n: usize,
    a: &mut [T],
    b: &mut [T],
    f: impl Fn(&mut [T], &mut [T]) + Sync,
) {
    if parts <= 1 {
        return f(a, b);
    }
    let values = kernels::rows_per_part(a.len() / n, n, parts);
    a.par_chunks_mut(values)
        .zip(b.par_chunks_mut(values))
        .with_max_len(1)
        .for_each(|(a, b)| f(a, b));
}

#[allow(clippy::too_many_arguments)]
fn batch_forward<T: Real>(
    mode: Mode,
    x: &mut [T],
    n: usize,
    gain: &[T],
    shift: &[T],
    running: Option<&RunningStats<T>>,
    buf: &mut NormBuffers<T>,
    parts: usize,
) {
    let rows = x.len() / n;
    let eps = T::of(NORM_EPSILON);
    match (mode, running) {
        (Mode::Eval, Some(r)) => {
            for j in 0..n {
                buf.mean[j] = r.mean[j];
                buf.var[j] = r.var[j];
                buf.inv_std[j] = T::one() / (r.var[j] + eps).sqrt();
            }
        }
        _ => {
            let x: &[T] = x;
            let inv_rows = T::one() / T::of(rows.max(1) as f64);
            let moments = |c0: usize, mean: &mut [T], var: &mut [T]| {
                kernels::vectorised(
                    #[inline(always)]
                    || column_moments(x, n, c0, inv_rows, mean, var),
                )
            };
            in_column_blocks(parts, &mut buf.mean, &mut buf.var, moments);
            for (inv, &var) in buf.inv_std.iter_mut().zip(&buf.var) {
                *inv = T::one() / (var + eps).sqrt();
            }
        }
    }
    let (mean, inv_std) = (&buf.mean[..], &buf.inv_std[..]);
    let normalise = |x: &mut [T], xhat: &mut [T]| {
        kernels::vectorised(
            #[inline(always)]
            || {
                for (row, h) in x.chunks_exact_mut(n).zip(xhat.chunks_exact_mut(n)) {
                    for j in 0..n {
                        h[j] = (row[j] - mean[j]) * inv_std[j];
                        row[j] = gain[j] * h[j] + shift[j];
                    }
                }
            },
        )
    };
    let values = x.len();
    in_row_block_pairs(parts, n, x, xhat_rows(&mut buf.xhat, values), normalise);
}

/// Mean and biased variance of the units `c0..c0 + mean.len()` over the rows of `x` (two
/// passes: the mean first, then the squared deviations from it).
#[inline(always)]
fn column_moments<T: Real>(
    x: &[T],
    n: usize,
    c0: usize,
    inv_rows: T,
    mean: &mut [T],
    var: &mut [T],
) {
    let width = mean.len();
    mean.fill(T::zero());
    for row in x.chunks_exact(n) {
        for (m, &v) in mean.iter_mut().zip(&row[c0..c0 + width]) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m *= inv_rows);
    var.fill(T::zero());
    for row in x.chunks_exact(n) {
        for ((s, &v), &m) in var.iter_mut().zip(&row[c0..c0 + width]).zip(&*mean) {
            *s += (v - m) * (v - m);
        }
    }
    var.iter_mut().for_each(|s| *s *= inv_rows);
}

fn layer_forward<T: Real>(
    x: &mut [T],
    n: usize,
    gain: &[T],
    shift: &[T],
    buf: &mut NormBuffers<T>,
    parts: usize,
) {
    let rows = x.len() / n;
    let eps = T::of(NORM_EPSILON);
    let inv_n = T::one() / T::of(n as f64);
    let normalise = |x: &mut [T], xhat: &mut [T], mean: &mut [T], var: &mut [T], inv: &mut [T]| {
        kernels::vectorised(
            #[inline(always)]
            || {
                let rows = x.chunks_exact_mut(n).zip(xhat.chunks_exact_mut(n));
                for ((row, h), ((m, v), inv)) in rows.zip(mean.iter_mut().zip(var).zip(inv)) {
                    *m = row.iter().fold(T::zero(), |s, &v| s + v) * inv_n;
                    *v = row.iter().fold(T::zero(), |s, &x| s + (x - *m) * (x - *m)) * inv_n;
                    *inv = T::one() / (*v + eps).sqrt();
                    for j in 0..n {
                        h[j] = (row[j] - *m) * *inv;
                        row[j] = gain[j] * h[j] + shift[j];
                    }
                }
            },
        )
    };
    let values = x.len();
    let xhat = xhat_rows(&mut buf.xhat, values);
    let (mean, var, inv) = (
        &mut buf.mean[..rows],
        &mut buf.var[..rows],
        &mut buf.inv_std[..rows],
    );
    if parts <= 1 {
        return normalise(x, xhat, mean, var, inv);
    }
    let chunk = kernels::rows_per_part(rows, n, parts);
    let per_part = chunk / n;
    x.par_chunks_mut(chunk)
        .zip(xhat.par_chunks_mut(chunk))
        .zip(mean.par_chunks_mut(per_part))
        .zip(var.par_chunks_mut(per_part))
        .zip(inv.par_chunks_mut(per_part))
        .with_max_len(1)
        .for_each(|((((x, h), m), v), i)| normalise(x, h, m, v, i));
}

fn backward_in_parts<T: Real>(
    norm: Norm,
    delta: &mut [T],
    n: usize,
    gain: &[T],
    buf: &mut NormBuffers<T>,
    parts: usize,
) {
    let rows = delta.len() / n;
    let values = delta.len();
    let xhat: &[T] = xhat_rows(&mut buf.xhat, values);
    let gain_grad = buf.gain_grad.as_slice_mut().expect("an owned array");
    let shift_grad = buf.shift_grad.as_slice_mut().expect("an owned array");
    {
        let delta: &[T] = delta;
        let sums = |c0: usize, gg: &mut [T], sg: &mut [T]| {
            kernels::vectorised(
                #[inline(always)]
                || {
                    let width = gg.len();
                    gg.fill(T::zero());
                    sg.fill(T::zero());
                    for (d, h) in delta.chunks_exact(n).zip(xhat.chunks_exact(n)) {
                        let (d, h) = (&d[c0..c0 + width], &h[c0..c0 + width]);
                        for j in 0..width {
                            gg[j] += d[j] * h[j];
                            sg[j] += d[j];
                        }
                    }
                },
            )
        };
        in_column_blocks(parts, gain_grad, shift_grad, sums);
    }
    let (gain_grad, shift_grad) = (&*gain_grad, &*shift_grad);
    let inv_std = &buf.inv_std[..];
    match (norm, buf.mode) {
        (Norm::Batch, Mode::Eval) => {
            let scale = |_: usize, delta: &mut [T]| {
                kernels::vectorised(
                    #[inline(always)]
                    || {
                        for d in delta.chunks_exact_mut(n) {
                            for j in 0..n {
                                d[j] = d[j] * gain[j] * inv_std[j];
                            }
                        }
                    },
                )
            };
            in_row_blocks(parts, n, delta, scale);
        }
        (Norm::Batch, Mode::Train) => {
            // mean over rows of g = gain·δ and of g·x̂: gain·Σδ/rows and gain·Σδx̂/rows.
            let inv_rows = T::one() / T::of(rows.max(1) as f64);
            let mean_g: Vec<T> = (0..n).map(|j| gain[j] * shift_grad[j] * inv_rows).collect();
            let mean_gh: Vec<T> = (0..n).map(|j| gain[j] * gain_grad[j] * inv_rows).collect();
            let differentiate = |first_row: usize, delta: &mut [T]| {
                let xhat = &xhat[first_row * n..];
                kernels::vectorised(
                    #[inline(always)]
                    || {
                        for (d, h) in delta.chunks_exact_mut(n).zip(xhat.chunks_exact(n)) {
                            for j in 0..n {
                                d[j] =
                                    (gain[j] * d[j] - mean_g[j] - h[j] * mean_gh[j]) * inv_std[j];
                            }
                        }
                    },
                )
            };
            in_row_blocks(parts, n, delta, differentiate);
        }
        (Norm::Layer, _) => {
            let inv_n = T::one() / T::of(n as f64);
            let differentiate = |first_row: usize, delta: &mut [T]| {
                let xhat = &xhat[first_row * n..];
                let inv_std = &inv_std[first_row..];
                kernels::vectorised(
                    #[inline(always)]
                    || {
                        let rows = delta.chunks_exact_mut(n).zip(xhat.chunks_exact(n));
                        for ((d, h), &inv) in rows.zip(inv_std) {
                            let (mut mean_g, mut mean_gh) = (T::zero(), T::zero());
                            for j in 0..n {
                                let g = gain[j] * d[j];
                                mean_g += g;
                                mean_gh += g * h[j];
                            }
                            mean_g *= inv_n;
                            mean_gh *= inv_n;
                            for j in 0..n {
                                d[j] = (gain[j] * d[j] - mean_g - h[j] * mean_gh) * inv;
                            }
                        }
                    },
                )
            };
            in_row_blocks(parts, n, delta, differentiate);
        }
        (Norm::None, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    /// The plain loops: a column walk per unit for the batch statistics, one thread.
    fn reference_forward(
        norm: Norm,
        mode: Mode,
        x: &mut Array2<f32>,
        gain: &Array1<f32>,
        shift: &Array1<f32>,
        running: &RunningStats<f32>,
    ) -> (Array2<f32>, Vec<f32>) {
        let (rows, n) = x.dim();
        let eps = NORM_EPSILON as f32;
        let per_unit = norm == Norm::Batch;
        let stats = |v: &mut dyn Iterator<Item = f32>, count: usize| {
            let values: Vec<f32> = v.collect();
            let mean = values.iter().fold(0.0, |s, &v| s + v) * (1.0 / count as f32);
            let var =
                values.iter().fold(0.0, |s, &v| s + (v - mean) * (v - mean)) * (1.0 / count as f32);
            (mean, 1.0 / (var + eps).sqrt())
        };
        let (means, invs): (Vec<f32>, Vec<f32>) = match (norm, mode) {
            (Norm::Batch, Mode::Eval) => (0..n)
                .map(|j| (running.mean[j], 1.0 / (running.var[j] + eps).sqrt()))
                .unzip(),
            (Norm::Batch, _) => (0..n)
                .map(|j| stats(&mut x.column(j).iter().copied(), rows))
                .unzip(),
            _ => (0..rows)
                .map(|i| stats(&mut x.row(i).iter().copied(), n))
                .unzip(),
        };
        let mut xhat = Array2::zeros((rows, n));
        for i in 0..rows {
            for j in 0..n {
                let s = if per_unit { j } else { i };
                let h = (x[(i, j)] - means[s]) * invs[s];
                xhat[(i, j)] = h;
                x[(i, j)] = gain[j] * h + shift[j];
            }
        }
        (xhat, invs)
    }

    fn reference_backward(
        norm: Norm,
        mode: Mode,
        d: &mut Array2<f32>,
        gain: &Array1<f32>,
        xhat: &Array2<f32>,
        inv_std: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let (rows, n) = d.dim();
        let (mut gg, mut sg) = (vec![0.0f32; n], vec![0.0f32; n]);
        for i in 0..rows {
            for j in 0..n {
                gg[j] += d[(i, j)] * xhat[(i, j)];
                sg[j] += d[(i, j)];
            }
        }
        for i in 0..rows {
            let (mut mg, mut mgh) = (0.0f32, 0.0f32);
            for j in 0..n {
                mg += gain[j] * d[(i, j)];
                mgh += gain[j] * d[(i, j)] * xhat[(i, j)];
            }
            mg *= 1.0 / n as f32;
            mgh *= 1.0 / n as f32;
            for j in 0..n {
                let h = xhat[(i, j)];
                d[(i, j)] = match (norm, mode) {
                    (Norm::Batch, Mode::Eval) => d[(i, j)] * gain[j] * inv_std[j],
                    (Norm::Batch, _) => {
                        let r = 1.0 / rows as f32;
                        (gain[j] * d[(i, j)] - gain[j] * sg[j] * r - h * (gain[j] * gg[j] * r))
                            * inv_std[j]
                    }
                    _ => (gain[j] * d[(i, j)] - mg - h * mgh) * inv_std[i],
                };
            }
        }
        (gg, sg)
    }

    /// Whatever the number of threads, batch and layer normalisation give bit for bit the
    /// numbers of the plain loops, forward and backward, in both modes.
    #[test]
    fn threads_change_no_number_of_the_plain_loops() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let (rows, n) = (37, 29);
        let mut random = |r: usize, c: usize, scale: f32| {
            Array2::from_shape_fn((r, c), |_| rng.random_range(-scale..scale) + 0.3)
        };
        let x0 = random(rows, n, 3.0);
        let d0 = random(rows, n, 1.0);
        let gain = random(1, n, 1.0).row(0).to_owned() + 1.0;
        let shift = random(1, n, 1.0).row(0).to_owned();
        let running = RunningStats {
            mean: random(1, n, 1.0).row(0).to_owned(),
            var: random(1, n, 1.0).row(0).mapv(|v| v * v + 0.5),
        };
        for (norm, mode) in [
            (Norm::Batch, Mode::Train),
            (Norm::Batch, Mode::Eval),
            (Norm::Layer, Mode::Train),
            (Norm::Layer, Mode::Eval),
        ] {
            let mut want_x = x0.clone();
            let (xhat, inv) = reference_forward(norm, mode, &mut want_x, &gain, &shift, &running);
            let mut want_d = d0.clone();
            let (gg, sg) = reference_backward(norm, mode, &mut want_d, &gain, &xhat, &inv);
            for parts in [1, 2, 3, 8] {
                let mut buf = NormBuffers::new(norm, rows + 5, n);
                let mut x = x0.clone();
                let r = Some(&running);
                forward_on(
                    norm,
                    mode,
                    &mut x.view_mut(),
                    &gain,
                    &shift,
                    r,
                    &mut buf,
                    parts,
                );
                assert_eq!(x, want_x, "{norm:?} {mode:?} forward on {parts} parts");
                let mut d = d0.clone();
                backward_on(norm, &mut d.view_mut(), &gain, &mut buf, parts);
                assert_eq!(d, want_d, "{norm:?} {mode:?} backward on {parts} parts");
                assert_eq!(buf.gain_grad.to_vec(), gg);
                assert_eq!(buf.shift_grad.to_vec(), sg);
            }
        }
    }
}
