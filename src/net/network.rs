//! The network itself: parameters, per-unit transformation state, seeded initialisation, and
//! the forward and backward passes through the all-to-all graph.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernels::{self, matmul};
use super::norm::{self, Mode, Norm, NormBuffers, RunningStats};
use super::params::Params;
use super::topology::{Topology, UnitKind};
use super::transform::{LayerMoments, Moments};
use crate::data::InputRows;
use crate::real::Real;

/// Half-width of the uniform bias initialisation (the authors' `bias_init_scale`).
const BIAS_INIT_SCALE: f64 = 0.5;
/// Probabilities are clamped here before the log so that a confident mistake costs a finite loss.
const MIN_PROBABILITY: f64 = 1e-30;

/// α, β and γ of every unit of one transformed layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform<T> {
    pub alpha: Array1<T>,
    pub beta: Array1<T>,
    pub gamma: Array1<T>,
    /// Upper bound on each unit's re-estimated γ (+∞: none); set by the γ guard.
    pub gamma_max: Array1<T>,
    /// Units whose γ the guard holds at `gamma_max` whatever the re-estimation says.
    pub gamma_fixed: Vec<bool>,
}

impl<T: Real> Transform<T> {
    /// Plain tanh: α = β = 0, γ = 1, γ unbounded.
    pub fn neutral(units: usize) -> Self {
        Transform {
            alpha: Array1::zeros(units),
            beta: Array1::zeros(units),
            gamma: Array1::ones(units),
            gamma_max: Array1::from_elem(units, T::infinity()),
            gamma_fixed: vec![false; units],
        }
    }
}

/// A multi-layer perceptron with shortcut connections and transformed tanh units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network<T> {
    pub topology: Topology,
    pub params: Params<T>,
    /// `transforms[l]` is present for transformed tanh layers.
    pub transforms: Vec<Option<Transform<T>>>,
    /// `running[l]` is present for batch-normalised layers: what evaluation normalises with.
    pub running: Vec<Option<RunningStats<T>>>,
}

/// Per-layer buffers for one batch: pre-activations, tanh values, outputs and backpropagated
/// errors. Sized once for the largest batch so that training allocates nothing per minibatch.
#[derive(Debug, Clone)]
pub struct Workspace<T> {
    pub x: Vec<Array2<T>>,
    pub t: Vec<Array2<T>>,
    pub y: Vec<Array2<T>>,
    pub delta: Vec<Array2<T>>,
    /// Normalised layers' x̂, statistics and gain/shift gradient sums.
    pub norm: Vec<Option<NormBuffers<T>>>,
    rows: usize,
}

impl<T: Real> Workspace<T> {
    pub fn new(topology: &Topology, capacity: usize) -> Self {
        let alloc = |l: usize, needed: bool| {
            Array2::zeros((if needed { capacity } else { 0 }, topology.size(l)))
        };
        let depth = topology.depth();
        let tanh = |l: usize| l > 0 && l < depth && topology.kind(l) == UnitKind::Tanh;
        Workspace {
            x: (0..=depth).map(|l| alloc(l, l > 0)).collect(),
            t: (0..=depth).map(|l| alloc(l, tanh(l))).collect(),
            y: (0..=depth).map(|l| alloc(l, true)).collect(),
            delta: (0..=depth).map(|l| alloc(l, l > 0)).collect(),
            norm: (0..=depth)
                .map(|l| {
                    let norm = topology.norm_of(l);
                    (norm != Norm::None).then(|| NormBuffers::new(norm, capacity, topology.size(l)))
                })
                .collect(),
            rows: 0,
        }
    }

    /// Largest batch the buffers hold.
    pub fn capacity(&self) -> usize {
        self.y[0].nrows()
    }

    /// Rows filled by the last forward pass.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The output of the last forward pass.
    pub fn output(&self) -> ArrayView2<'_, T> {
        let last = self.y.len() - 1;
        self.y[last].slice(s![..self.rows, ..])
    }

    /// Layer l's pre-activations from the last forward pass.
    pub fn pre_activation(&self, l: usize) -> ArrayView2<'_, T> {
        self.x[l].slice(s![..self.rows, ..])
    }

    /// Layer l's outputs from the last forward pass.
    pub fn activation(&self, l: usize) -> ArrayView2<'_, T> {
        self.y[l].slice(s![..self.rows, ..])
    }

    /// Whether every error δ of the last backward pass (and the output error) is finite: the
    /// cheap divergence check before a fused update, which forms no gradient to check.
    pub fn deltas_finite(&self) -> bool {
        self.delta.iter().skip(1).all(|d| {
            let d = d.slice(s![..self.rows, ..]);
            kernels::vectorised(
                #[inline(always)]
                || all_finite(contiguous(&d)),
            )
        })
    }

    /// Layer l's tanh values from the last forward pass (tanh layers only).
    pub fn tanh(&self, l: usize) -> ArrayView2<'_, T> {
        self.t[l].slice(s![..self.rows, ..])
    }
}

/// What a batch is trained towards.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a, T> {
    /// Class indices, for a softmax output.
    Labels(&'a [crate::data::Class]),
    /// Target values, for a linear output (the clean input, for an autoencoder).
    Values(ArrayView2<'a, T>),
}

impl<'a, T> Target<'a, T> {
    /// The targets of rows `start..end`.
    pub fn rows(&self, start: usize, end: usize) -> Target<'a, T> {
        match *self {
            Target::Labels(labels) => Target::Labels(&labels[start..end]),
            Target::Values(values) => Target::Values(values.slice_move(s![start..end, ..])),
        }
    }
}

/// Sums over a batch of the quantities reported for it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchLoss {
    /// Sum over examples of the training objective (cross-entropy, or ½·squared error).
    pub objective: f64,
    /// Sum over examples of the reported loss (cross-entropy, or squared error as in the paper).
    pub reported: f64,
    /// Number of misclassified examples (0 for regression).
    pub errors: usize,
    pub examples: usize,
}

impl BatchLoss {
    pub fn add(&mut self, other: BatchLoss) {
        self.objective += other.objective;
        self.reported += other.reported;
        self.errors += other.errors;
        self.examples += other.examples;
    }

    /// Mean reported loss per example.
    pub fn mean(&self) -> f64 {
        self.reported / self.examples.max(1) as f64
    }

    /// Error rate in percent.
    pub fn error_percent(&self) -> f64 {
        100.0 * self.errors as f64 / self.examples.max(1) as f64
    }
}

impl<T: Real> Network<T> {
    /// A seeded network: Glorot-uniform weights between adjacent layers, zero shortcuts,
    /// biases uniform in ±0.5, plain tanh (α = β = 0, γ = 1).
    pub fn init(topology: Topology, seed: u64) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut params = Params::zeros(&topology);
        for (l, k, w) in params.blocks_mut() {
            if k + 1 == l {
                let (n_out, n_in) = w.dim();
                let limit = (6.0 / (n_out + n_in) as f64).sqrt();
                w.mapv_inplace(|_| T::of(rng.random_range(-limit..limit)));
            }
        }
        for b in params.biases.iter_mut().skip(1) {
            b.mapv_inplace(|_| T::of(rng.random_range(-BIAS_INIT_SCALE..BIAS_INIT_SCALE)));
        }
        for g in params.gains.iter_mut() {
            g.fill(T::one());
        }
        let running = (0..=topology.depth())
            .map(|l| {
                (topology.norm_of(l) == Norm::Batch).then(|| RunningStats::new(topology.size(l)))
            })
            .collect();
        let transforms = (0..=topology.depth())
            .map(|l| {
                (l > 0 && l < topology.depth() && topology.kind(l) == UnitKind::Tanh)
                    .then(|| Transform::neutral(topology.size(l)))
            })
            .collect();
        Network {
            topology,
            params,
            transforms,
            running,
        }
    }

    pub fn depth(&self) -> usize {
        self.topology.depth()
    }

    /// Runs the batch `input` (one example per row) through the network into `ws`, as
    /// evaluation does (batch normalisation uses its running averages).
    pub fn forward(&self, input: ArrayView2<T>, ws: &mut Workspace<T>) {
        self.pass(input, ws, None, Mode::Eval);
    }

    /// The forward pass of a training step: batch normalisation uses the batch's statistics
    /// (and the backward pass differentiates through them).
    pub fn forward_train(&self, input: ArrayView2<T>, ws: &mut Workspace<T>) {
        self.pass(input, ws, None, Mode::Train);
    }

    /// [`Network::forward_train`] that also adds every transformed layer's moments of this
    /// batch to `moments`, in the same pass that computes the activations (re-estimating on
    /// the current minibatch then needs no second pass over them).
    pub fn forward_collecting(
        &self,
        input: ArrayView2<T>,
        ws: &mut Workspace<T>,
        moments: Option<&mut Moments>,
    ) {
        self.pass(input, ws, moments, Mode::Train);
    }

    /// Moves batch normalisation's running averages towards the statistics of the last
    /// training pass in `ws`.
    pub fn update_running(&mut self, ws: &Workspace<T>) {
        for (running, buf) in self.running.iter_mut().zip(&ws.norm) {
            if let (Some(running), Some(buf)) = (running, buf) {
                if buf.mode == Mode::Train {
                    running.update(&buf.mean, &buf.var, ws.rows);
                }
            }
        }
    }

    fn pass(
        &self,
        input: ArrayView2<T>,
        ws: &mut Workspace<T>,
        mut moments: Option<&mut Moments>,
        mode: Mode,
    ) {
        let rows = input.nrows();
        if rows > ws.capacity() {
            *ws = Workspace::new(&self.topology, rows);
        }
        ws.rows = rows;
        ws.y[0].slice_mut(s![..rows, ..]).assign(&input);
        for l in 1..=self.depth() {
            let mut x = ws.x[l].slice_mut(s![..rows, ..]);
            x.assign(&self.params.biases[l]);
            for k in self.topology.sources(l) {
                if let Some(w) = self.params.weight(l, k) {
                    matmul(
                        T::one(),
                        &ws.y[k].slice(s![..rows, ..]),
                        &w.t(),
                        T::one(),
                        &mut x,
                    );
                }
            }
            if let Some(buf) = ws.norm[l].as_mut() {
                norm::forward(
                    self.topology.norm_of(l),
                    mode,
                    &mut x,
                    &self.params.gains[l],
                    &self.params.shifts[l],
                    self.running[l].as_ref(),
                    buf,
                );
            }
            let y = ws.y[l].slice_mut(s![..rows, ..]);
            match self.topology.kind(l) {
                UnitKind::Tanh => {
                    let t = ws.t[l].slice_mut(s![..rows, ..]);
                    let layer_moments = moments
                        .as_deref_mut()
                        .and_then(|m| m.layers.get_mut(l))
                        .and_then(Option::as_mut);
                    self.activate_tanh(l, x.view(), t, y, layer_moments);
                }
                UnitKind::Softmax => softmax_rows(x.view(), y),
                UnitKind::Linear | UnitKind::Input => {
                    let mut y = y;
                    y.assign(&x);
                }
            }
        }
    }

    /// y = γ·(tanh x + α·x + β), also caching tanh x for the backward pass and the statistics.
    /// With `moments`, also adds the layer's moment sums.
    fn activate_tanh(
        &self,
        l: usize,
        x: ArrayView2<T>,
        t: ArrayViewMut2<T>,
        y: ArrayViewMut2<T>,
        moments: Option<&mut LayerMoments>,
    ) {
        let n = x.ncols();
        let (mut t, mut y) = (t, y);
        let x = contiguous(&x);
        let t = contiguous_mut(&mut t);
        let y = contiguous_mut(&mut y);
        let tr = self.transforms[l].as_ref();
        let parts = kernels::parts_for(x.len());
        if parts == 1 {
            return activate_rows(n, tr, x, t, y, moments);
        }
        let chunk = kernels::rows_per_part(x.len() / n.max(1), n, parts);
        let chunks = x
            .par_chunks(chunk)
            .zip(t.par_chunks_mut(chunk))
            .zip(y.par_chunks_mut(chunk))
            .with_max_len(1);
        match moments {
            None => chunks.for_each(|((x, t), y)| activate_rows(n, tr, x, t, y, None)),
            Some(m) => {
                // One set of sums per part, added up in row order afterwards.
                let sums: Vec<LayerMoments> = chunks
                    .map(|((x, t), y)| {
                        let mut part = LayerMoments::new(n);
                        activate_rows(n, tr, x, t, y, Some(&mut part));
                        part
                    })
                    .collect();
                for part in &sums {
                    m.add(part);
                }
            }
        }
    }

    /// Re-derives every tanh layer's outputs from its cached pre-activations and tanh values,
    /// after α, β, γ changed (the pre-activations themselves do not change: compensation
    /// preserves them).
    pub fn refresh_activations(&self, ws: &mut Workspace<T>) {
        let rows = ws.rows;
        for l in self.topology.transformed_layers() {
            if let Some(tr) = &self.transforms[l] {
                let n = ws.x[l].ncols();
                let x = ws.x[l].slice(s![..rows, ..]);
                let t = ws.t[l].slice(s![..rows, ..]);
                let mut y = ws.y[l].slice_mut(s![..rows, ..]);
                transform_rows(
                    n,
                    tr,
                    contiguous(&x),
                    contiguous(&t),
                    contiguous_mut(&mut y),
                );
            }
        }
    }

    /// Sets the output error δ_L = y − target into `ws` and returns the batch's loss sums.
    pub fn output_delta(&self, target: Target<T>, ws: &mut Workspace<T>) -> BatchLoss {
        let rows = ws.rows;
        let last = self.depth();
        let y = ws.y[last].slice(s![..rows, ..]);
        let mut delta = ws.delta[last].slice_mut(s![..rows, ..]);
        delta.assign(&y);
        let mut loss = BatchLoss {
            examples: rows,
            ..BatchLoss::default()
        };
        match target {
            Target::Labels(labels) => {
                for (i, (row, mut d)) in y.outer_iter().zip(delta.outer_iter_mut()).enumerate() {
                    let label = labels[i] as usize;
                    let p = row[label].f64().max(MIN_PROBABILITY);
                    loss.objective -= p.ln();
                    d[label] -= T::one();
                    let predicted = argmax(row.iter().map(|v| v.f64()));
                    if predicted != label {
                        loss.errors += 1;
                    }
                }
                loss.reported = loss.objective;
            }
            Target::Values(values) => {
                delta -= &values;
                let sse: f64 = delta.iter().map(|d| d.f64() * d.f64()).sum();
                loss.objective = 0.5 * sse;
                loss.reported = sse;
            }
        }
        loss
    }

    /// Backpropagates δ_L (set by [`Network::output_delta`]) and writes the gradient of the mean
    /// objective into `grads`. α, β, γ are constants here.
    pub fn backward(&self, ws: &mut Workspace<T>, grads: &mut Params<T>) {
        self.backpropagate(ws);
        self.gradients(ws, grads);
    }

    /// Writes the gradient of the mean objective into `grads` from the errors δ that
    /// [`Network::backpropagate`] left in `ws`.
    pub fn gradients(&self, ws: &Workspace<T>, grads: &mut Params<T>) {
        let rows = ws.rows;
        let scale = T::one() / T::of(rows as f64);
        for (l, k, g) in grads.blocks_mut() {
            let delta = ws.delta[l].slice(s![..rows, ..]);
            let y = ws.y[k].slice(s![..rows, ..]);
            matmul(scale, &delta.t(), &y, T::zero(), &mut g.view_mut());
        }
        for l in 1..=self.depth() {
            column_sums(
                ws.delta[l].slice(s![..rows, ..]),
                scale,
                &mut grads.biases[l],
            );
            if let Some(buf) = &ws.norm[l] {
                grads.gains[l].assign(&(&buf.gain_grad * scale));
                grads.shifts[l].assign(&(&buf.shift_grad * scale));
            }
        }
    }

    /// Backpropagates δ_L (set by [`Network::output_delta`]) into the δ of every hidden layer,
    /// without forming the weight gradients (the fused SGD step forms them itself).
    pub fn backpropagate(&self, ws: &mut Workspace<T>) {
        let rows = ws.rows;
        let depth = self.depth();
        for l in (1..depth).rev() {
            let (lower, upper) = ws.delta.split_at_mut(l + 1);
            let mut delta = lower[l].slice_mut(s![..rows, ..]);
            let mut first = true;
            for m in self.topology.targets(l) {
                if let Some(w) = self.params.weight(m, l) {
                    let dm = upper[m - l - 1].slice(s![..rows, ..]);
                    let beta = if first { T::zero() } else { T::one() };
                    matmul(T::one(), &dm, &w.view(), beta, &mut delta);
                    first = false;
                }
            }
            if first {
                delta.fill(T::zero());
            }
            if let (UnitKind::Tanh, Some(tr)) = (self.topology.kind(l), &self.transforms[l]) {
                let n = delta.ncols();
                let t = ws.t[l].slice(s![..rows, ..]);
                let (a, g) = (slice1(&tr.alpha), slice1(&tr.gamma));
                let t = contiguous(&t);
                let d = contiguous_mut(&mut delta);
                let run = |t: &[T], d: &mut [T]| {
                    kernels::vectorised(
                        #[inline(always)]
                        || scale_by_slope(n, a, g, t, d),
                    )
                };
                let parts = kernels::parts_for(d.len());
                if parts == 1 {
                    run(t, d);
                } else {
                    let chunk = kernels::rows_per_part(rows, n, parts);
                    d.par_chunks_mut(chunk)
                        .zip(t.par_chunks(chunk))
                        .with_max_len(1)
                        .for_each(|(d, t)| run(t, d));
                }
            }
            if let Some(buf) = ws.norm[l].as_mut() {
                let mut delta = ws.delta[l].slice_mut(s![..rows, ..]);
                norm::backward(
                    self.topology.norm_of(l),
                    &mut delta,
                    &self.params.gains[l],
                    buf,
                );
            }
        }
    }

    /// Loss sums over a whole split, evaluated in chunks of the workspace's capacity.
    pub fn evaluate(
        &self,
        inputs: &(impl InputRows<T> + ?Sized),
        target: Target<T>,
        ws: &mut Workspace<T>,
    ) -> BatchLoss {
        self.evaluate_in_chunks(inputs, ws, |start, end, ws| {
            self.output_delta(target.rows(start, end), ws)
        })
    }

    /// [`Network::evaluate`] against class labels that also counts each (true, predicted)
    /// pair into `confusion[true][predicted]`, from the same forward passes.
    pub fn evaluate_confusion(
        &self,
        inputs: &(impl InputRows<T> + ?Sized),
        labels: &[crate::data::Class],
        ws: &mut Workspace<T>,
        confusion: &mut [Vec<usize>],
    ) -> BatchLoss {
        self.evaluate_in_chunks(inputs, ws, |start, end, ws| {
            let loss = self.output_delta(Target::Labels(&labels[start..end]), ws);
            let y = ws.y[self.depth()].slice(s![..end - start, ..]);
            for (row, &label) in y.outer_iter().zip(&labels[start..end]) {
                let predicted = argmax(row.iter().map(|v| v.f64()));
                if let Some(count) = confusion
                    .get_mut(label as usize)
                    .and_then(|r| r.get_mut(predicted))
                {
                    *count += 1;
                }
            }
            loss
        })
    }

    /// The forward pass over `inputs` in chunks of the workspace's capacity, summing what
    /// `chunk_loss` makes of each chunk's rows `start..end` (their outputs are in `ws`).
    fn evaluate_in_chunks(
        &self,
        inputs: &(impl InputRows<T> + ?Sized),
        ws: &mut Workspace<T>,
        mut chunk_loss: impl FnMut(usize, usize, &mut Workspace<T>) -> BatchLoss,
    ) -> BatchLoss {
        let mut total = BatchLoss::default();
        let chunk = ws.capacity().max(1);
        let n = inputs.row_count();
        let mut start = 0;
        while start < n {
            let end = (start + chunk).min(n);
            self.forward(inputs.rows_of(start, end).view(), ws);
            total.add(chunk_loss(start, end, ws));
            start = end;
        }
        total
    }

    /// Converts to another float type (weights, biases and α, β, γ).
    pub fn cast<U: Real>(&self) -> Network<U> {
        let cast1 = |a: &Array1<T>| a.mapv(|v| U::of(v.f64()));
        Network {
            topology: self.topology.clone(),
            params: self.params.cast(),
            transforms: self
                .transforms
                .iter()
                .map(|tr| {
                    tr.as_ref().map(|tr| Transform {
                        alpha: cast1(&tr.alpha),
                        beta: cast1(&tr.beta),
                        gamma: cast1(&tr.gamma),
                        gamma_max: cast1(&tr.gamma_max),
                        gamma_fixed: tr.gamma_fixed.clone(),
                    })
                })
                .collect(),
            running: self
                .running
                .iter()
                .map(|r| {
                    r.as_ref().map(|r| RunningStats {
                        mean: cast1(&r.mean),
                        var: cast1(&r.var),
                    })
                })
                .collect(),
        }
    }
}

/// y = γ·(t + α·x + β) row by row over contiguous rows of `n` units.
fn transform_rows<T: Real>(n: usize, tr: &Transform<T>, x: &[T], t: &[T], y: &mut [T]) {
    let parts = kernels::parts_for(x.len());
    let chunk = kernels::rows_per_part(x.len() / n.max(1), n, parts);
    let run = |x: &[T], t: &[T], y: &mut [T]| {
        kernels::vectorised(
            #[inline(always)]
            || transform_rows_loop(n, tr, x, t, y),
        )
    };
    if parts == 1 {
        run(x, t, y);
    } else {
        x.par_chunks(chunk)
            .zip(t.par_chunks(chunk))
            .zip(y.par_chunks_mut(chunk))
            .with_max_len(1)
            .for_each(|((x, t), y)| run(x, t, y));
    }
}

/// t = tanh x, then y = γ·(t + α·x + β) (y = t for plain tanh), and with `moments` the moment
/// sums, for whole rows of `n` units.
fn activate_rows<T: Real>(
    n: usize,
    tr: Option<&Transform<T>>,
    x: &[T],
    t: &mut [T],
    y: &mut [T],
    moments: Option<&mut LayerMoments>,
) {
    T::tanh_slice(x, t);
    match (tr, moments) {
        (Some(tr), Some(m)) => kernels::vectorised(
            #[inline(always)]
            || {
                // Blocks of 16 rows, still in the L2 cache when their sums are taken.
                let block = 16 * n;
                for ((y, t), x) in y
                    .chunks_mut(block)
                    .zip(t.chunks(block))
                    .zip(x.chunks(block))
                {
                    transform_rows_loop(n, tr, x, t, y);
                    m.add_rows(n, x, t);
                }
            },
        ),
        (Some(tr), None) => kernels::vectorised(
            #[inline(always)]
            || transform_rows_loop(n, tr, x, t, y),
        ),
        (None, _) => y.copy_from_slice(t),
    }
}

#[inline(always)]
fn transform_rows_loop<T: Real>(n: usize, tr: &Transform<T>, x: &[T], t: &[T], y: &mut [T]) {
    for ((y, t), x) in y
        .chunks_exact_mut(n)
        .zip(t.chunks_exact(n))
        .zip(x.chunks_exact(n))
    {
        transform_row(tr, x, t, y);
    }
}

/// y = γ·(t + α·x + β) for one example.
#[inline(always)]
fn transform_row<T: Real>(tr: &Transform<T>, x: &[T], t: &[T], y: &mut [T]) {
    let n = y.len();
    let (a, b, g) = (slice1(&tr.alpha), slice1(&tr.beta), slice1(&tr.gamma));
    let (a, b, g, x, t) = (&a[..n], &b[..n], &g[..n], &x[..n], &t[..n]);
    for j in 0..n {
        y[j] = g[j] * (t[j] + a[j] * x[j] + b[j]);
    }
}

/// Whether no value is NaN or ±Inf. v·0 is 0 for finite v and NaN otherwise, and NaN survives
/// any sum; sixteen independent sums (instead of a search that stops early) vectorise.
#[inline(always)]
fn all_finite<T: Real>(values: &[T]) -> bool {
    const LANES: usize = 16;
    let mut sums = [T::zero(); LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (s, &v) in sums.iter_mut().zip(chunk) {
            *s += v * T::zero();
        }
    }
    sums.iter().all(|s| *s == T::zero()) && rest.iter().all(|v| v.is_finite())
}

/// δ ← δ·f'(x) row by row, with f'(x) = γ·(1 − t² + α) from the cached t = tanh x.
#[inline(always)]
fn scale_by_slope<T: Real>(n: usize, a: &[T], g: &[T], t: &[T], d: &mut [T]) {
    let (a, g) = (&a[..n], &g[..n]);
    for (d, t) in d.chunks_exact_mut(n).zip(t.chunks_exact(n)) {
        for j in 0..n {
            d[j] = d[j] * g[j] * (T::one() - t[j] * t[j] + a[j]);
        }
    }
}

/// out = scale · (sum of the rows of `a`).
pub(crate) fn column_sums<T: Real>(a: ArrayView2<T>, scale: T, out: &mut Array1<T>) {
    out.fill(T::zero());
    let n = a.ncols();
    let o = out
        .as_slice_mut()
        .expect("a freshly allocated vector is contiguous");
    for row in contiguous(&a).chunks_exact(n) {
        for (o, &v) in o.iter_mut().zip(row) {
            *o += v;
        }
    }
    for o in o.iter_mut() {
        *o *= scale;
    }
}

/// The elements of a view of whole rows of a workspace or parameter matrix, in row order.
pub(crate) fn contiguous<'a, T>(a: &'a ArrayView2<'_, T>) -> &'a [T] {
    a.as_slice()
        .expect("workspace and parameter rows are contiguous (standard layout)")
}

/// Mutable version of [`contiguous`].
pub(crate) fn contiguous_mut<'a, T>(a: &'a mut ArrayViewMut2<'_, T>) -> &'a mut [T] {
    a.as_slice_mut()
        .expect("workspace and parameter rows are contiguous (standard layout)")
}

fn slice1<T>(a: &Array1<T>) -> &[T] {
    a.as_slice().expect("parameter vectors are contiguous")
}

/// Row-wise numerically stable softmax.
fn softmax_rows<T: Real>(x: ArrayView2<T>, mut y: ArrayViewMut2<T>) {
    for (xr, mut yr) in x.outer_iter().zip(y.outer_iter_mut()) {
        let max = xr.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        let mut sum = T::zero();
        for (yv, &xv) in yr.iter_mut().zip(xr.iter()) {
            *yv = (xv - max).exp();
            sum += *yv;
        }
        yr /= sum;
    }
}

/// Index of the largest value (first on ties; NaN never wins).
fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn all_finite_finds_nan_and_infinity_anywhere() {
        // 37 values: two full chunks of 16 and a remainder of 5.
        assert!(all_finite(&[1.5f32; 37]));
        assert!(all_finite::<f64>(&[]));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for position in [0, 15, 16, 31, 32, 36] {
                let mut values = vec![-2.0f32; 37];
                values[position] = bad;
                assert!(!all_finite(&values), "{bad} at {position}");
            }
        }
    }
}
