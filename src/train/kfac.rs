//! K-FAC (Martens & Grosse 2015): each layer's Fisher block ≈ A ⊗ G, A the second moment of the
//! layer's concatenated inputs ā = [y_k for every source k, in order | 1] (every shortcut and
//! the bias), G that of its back-propagated errors δ; the step of the layer's matrix
//! W̄ = [W[l][k] … | b_l] is (G + √λ·I)⁻¹·∇W̄·(A + √λ·I)⁻¹ with Tikhonov damping λ, taken with
//! heavy-ball momentum at the scheduled rate (no shortcut scale: the factors weigh the blocks).
//!
//! G is measured from the errors of the step's own labels (the empirical Fisher's factors),
//! which needs no second backward pass. The factors are running averages refreshed every
//! `train.kfac_stats_every` steps and inverted (Cholesky, in f64) every
//! `train.kfac_update_every` steps and whenever the damping changes.
//!
//! Following the compensation: a change of β or γ of layer l is an affine map ā' = T·ā of the
//! inputs of every later layer m that layer l feeds, and leaves every error δ unchanged. Then
//! A_m' = T·A_m·Tᵀ, (A_m')⁻¹ = T⁻ᵀ·A_m⁻¹·T⁻¹ and the velocity V_m' = V_m·T⁻¹ are exact, and an
//! undamped step after the change is the step without it, mapped (tests/kfac.rs). A change of α
//! is such a map too for the later layers' inputs, but it changes the slope of layer l, so the
//! errors of layer l and of every layer below it change non-linearly: their G are restarted
//! from the next step's minibatch and inverted again there.

use faer::linalg::solvers::DenseSolveCore;
use ndarray::{s, Array2, ArrayView2, Zip};
use serde::{Deserialize, Serialize};

use super::optimizer::{FollowRules, Optimize, StepSettings};
use crate::net::kernels::matmul;
use crate::net::{Change, Network, Reparam, Topology, Workspace};
use crate::preset::OptimizerKind;
use crate::real::Real;

pub use crate::preset::KfacSettings;

/// The factors and momentum of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct KfacLayer<T: Real> {
    /// The layer's sources and their widths, in the order of their blocks in ā.
    pub sources: Vec<(usize, usize)>,
    /// Running E[ā·āᵀ] (d × d, d = Σ sizes of the sources + 1).
    pub a: Array2<T>,
    /// Running E[δ·δᵀ] (n × n).
    pub g: Array2<T>,
    /// (A + √λ·I)⁻¹ and (G + √λ·I)⁻¹ at the last inversion (maps followed since).
    pub a_inverse: Array2<T>,
    pub g_inverse: Array2<T>,
    /// The velocity of W̄ (n × d).
    pub velocity: Array2<T>,
    /// G is to be restarted from the next minibatch (an α change made it stale).
    pub g_stale: bool,
}

/// Every layer's state, and the count of steps that schedules the refreshes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Kfac<T: Real> {
    /// Per layer (none for the input).
    pub layers: Vec<Option<KfacLayer<T>>>,
    pub steps: u64,
    /// The damping of the stored inverses (a live change inverts again at the next step;
    /// none before the first).
    pub damping: Option<f64>,
}

impl<T: Real> KfacLayer<T> {
    fn new(topology: &Topology, l: usize) -> Self {
        let sources: Vec<(usize, usize)> =
            topology.sources(l).map(|k| (k, topology.size(k))).collect();
        let d = sources.iter().map(|&(_, width)| width).sum::<usize>() + 1;
        let n = topology.size(l);
        KfacLayer {
            sources,
            a: Array2::zeros((d, d)),
            g: Array2::zeros((n, n)),
            a_inverse: Array2::zeros((d, d)),
            g_inverse: Array2::zeros((n, n)),
            velocity: Array2::zeros((n, d)),
            g_stale: false,
        }
    }

    /// Where the block of source `k` starts in ā (`None` when k does not feed this layer).
    fn offset(&self, k: usize) -> Option<usize> {
        let mut at = 0;
        for &(source, width) in &self.sources {
            if source == k {
                return Some(at);
            }
            at += width;
        }
        None
    }

    /// The bias's column in ā.
    fn bias_column(&self) -> usize {
        self.a.nrows() - 1
    }
}

impl<T: Real> Kfac<T> {
    pub fn new(topology: &Topology) -> Self {
        Kfac {
            layers: (0..=topology.depth())
                .map(|l| (l > 0).then(|| KfacLayer::new(topology, l)))
                .collect(),
            steps: 0,
            damping: None,
        }
    }

    /// The step direction (G + √λ·I)⁻¹·∇·(A + √λ·I)⁻¹ of layer l for the gradient ∇ of W̄,
    /// with the stored inverses.
    pub fn precondition(&self, l: usize, gradient: ArrayView2<T>) -> Array2<T> {
        let layer = self.layers[l]
            .as_ref()
            .expect("every layer above the input has K-FAC factors");
        precondition_with(layer, gradient)
    }
}

/// ā of layer `layer` for the minibatch in `ws`: one row per example, the sources' outputs side
/// by side, then 1.
pub fn inputs<T: Real>(layer: &KfacLayer<T>, ws: &Workspace<T>) -> Array2<T> {
    let rows = ws.rows();
    let d = layer.a.nrows();
    let mut out = Array2::<T>::zeros((rows, d));
    let mut at = 0;
    for &(k, width) in &layer.sources {
        out.slice_mut(s![.., at..at + width])
            .assign(&ws.y[k].slice(s![..rows, ..]));
        at += width;
    }
    out.column_mut(d - 1).fill(T::one());
    out
}

/// (M + √λ·I)⁻¹ by Cholesky in f64; `None` when the damped matrix is not positive definite.
fn damped_inverse<T: Real>(m: &Array2<T>, damping: f64) -> Option<Array2<T>> {
    let n = m.nrows();
    let shift = damping.sqrt();
    let f = faer::Mat::<f64>::from_fn(n, n, |i, j| {
        m[(i, j)].f64() + if i == j { shift } else { 0.0 }
    });
    let inverse = f.llt(faer::Side::Lower).ok()?.inverse();
    Some(Array2::from_shape_fn((n, n), |(i, j)| {
        T::of(inverse[(i, j)])
    }))
}

/// Replaces `inverse` by the damped inverse of `m`; a matrix that is not positive definite
/// (too little damping for a rank-deficient factor) keeps the previous inverse, or the
/// identity before the first.
fn invert_into<T: Real>(m: &Array2<T>, damping: f64, inverse: &mut Array2<T>, first: bool) {
    match damped_inverse(m, damping) {
        Some(new) => *inverse = new,
        None if first => *inverse = Array2::eye(m.nrows()),
        None => {}
    }
}

impl<T: Real> Optimize<T> for Kfac<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Kfac
    }

    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings) {
        let kfac = settings.kfac;
        let first = self.steps == 0;
        let refresh_stats = self.steps.is_multiple_of(kfac.stats_every.max(1) as u64);
        let invert = first
            || self.steps.is_multiple_of(kfac.update_every.max(1) as u64)
            || self.damping != Some(kfac.damping);
        let rows = ws.rows();
        let scale = T::one() / T::of(rows.max(1) as f64);
        let (eta, mu, lambda) = (
            T::of(settings.rate),
            T::of(settings.momenta.0),
            T::of(settings.decay),
        );
        let keep = T::of(kfac.decay);
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let Some(layer) = layer.as_mut() else {
                continue;
            };
            let a_bar = inputs(layer, ws);
            let delta = ws.delta[l].slice(s![..rows, ..]);
            if refresh_stats || first {
                let (a_keep, a_new) = if first {
                    (T::zero(), scale)
                } else {
                    (keep, (T::one() - keep) * scale)
                };
                matmul(
                    a_new,
                    &a_bar.t(),
                    &a_bar.view(),
                    a_keep,
                    &mut layer.a.view_mut(),
                );
                let (g_keep, g_new) = if first || layer.g_stale {
                    (T::zero(), scale)
                } else {
                    (keep, (T::one() - keep) * scale)
                };
                matmul(g_new, &delta.t(), &delta, g_keep, &mut layer.g.view_mut());
            } else if layer.g_stale {
                matmul(
                    scale,
                    &delta.t(),
                    &delta,
                    T::zero(),
                    &mut layer.g.view_mut(),
                );
            }
            if invert {
                invert_into(&layer.a, kfac.damping, &mut layer.a_inverse, first);
            }
            if invert || layer.g_stale {
                invert_into(&layer.g, kfac.damping, &mut layer.g_inverse, first);
                layer.g_stale = false;
            }
            // ∇W̄ = δᵀ·ā/n, with the decay λ·W̄ added.
            let (n, d) = layer.velocity.dim();
            let mut gradient = Array2::<T>::zeros((n, d));
            matmul(
                scale,
                &delta.t(),
                &a_bar.view(),
                T::zero(),
                &mut gradient.view_mut(),
            );
            let mut at = 0;
            for &(k, width) in &layer.sources {
                if let Some(w) = net.params.weights[l][k].as_ref() {
                    Zip::from(gradient.slice_mut(s![.., at..at + width]))
                        .and(w)
                        .for_each(|g, &w| *g += lambda * w);
                }
                at += width;
            }
            Zip::from(gradient.column_mut(d - 1))
                .and(&net.params.biases[l])
                .for_each(|g, &b| *g += lambda * b);
            let layer_ref: &KfacLayer<T> = layer;
            let direction = precondition_with(layer_ref, gradient.view());
            Zip::from(&mut layer.velocity)
                .and(&direction)
                .for_each(|v, &u| *v = mu * *v + u);
            let mut at = 0;
            for &(k, width) in &layer.sources {
                if let Some(w) = net.params.weights[l][k].as_mut() {
                    Zip::from(w)
                        .and(layer.velocity.slice(s![.., at..at + width]))
                        .for_each(|w, &v| *w -= eta * v);
                }
                at += width;
            }
            Zip::from(&mut net.params.biases[l])
                .and(layer.velocity.column(d - 1))
                .for_each(|b, &v| *b -= eta * v);
        }
        // Normalised layers' gains and shifts: plain gradient steps, undecayed.
        for (l, buf) in ws.norm.iter().enumerate() {
            let Some(buf) = buf else { continue };
            for (w, g) in [
                (&mut net.params.gains[l], &buf.gain_grad),
                (&mut net.params.shifts[l], &buf.shift_grad),
            ] {
                Zip::from(w).and(g).for_each(|w, &g| *w -= eta * scale * g);
            }
        }
        if invert {
            self.damping = Some(kfac.damping);
        }
        self.steps += 1;
    }

    /// Maps the factors, inverses and velocities of the layers each change feeds (the module's
    /// doc); under α, restarts the errors' factors of the layer and those below it. The γ
    /// control's rules are SGD's and do not apply: K-FAC always follows.
    fn follow(&mut self, net: &Network<T>, reparam: &Reparam<T>, _rules: FollowRules) {
        let topology = &net.topology;
        for (i, change) in reparam.changes.iter().enumerate() {
            match change {
                Change::Rescale {
                    layer,
                    before,
                    after,
                } => {
                    let s: Vec<T> = after.iter().zip(before).map(|(&a, &b)| a / b).collect();
                    for m in topology.targets(*layer) {
                        if let Some(state) = self.layers[m].as_mut() {
                            let Some(at) = state.offset(*layer) else {
                                continue;
                            };
                            rescale(state, at, &s);
                        }
                    }
                }
                Change::Shift {
                    layer,
                    d_alpha,
                    d_beta,
                    bias,
                } => {
                    let alpha_changed = d_alpha.iter().any(|&v| v != T::zero());
                    for m in topology.targets(*layer) {
                        let Some(state) = self.layers[m].as_mut() else {
                            continue;
                        };
                        let Some(at) = state.offset(*layer) else {
                            continue;
                        };
                        let shear = shear_rows(
                            net,
                            state,
                            *layer,
                            d_alpha,
                            d_beta,
                            bias,
                            &reparam.changes[i + 1..],
                        );
                        shear_apply(state, at, &shear);
                    }
                    if alpha_changed {
                        for state in self.layers[1..=*layer].iter_mut().flatten() {
                            state.g_stale = true;
                        }
                    }
                }
                Change::Reset { layer, unit } => self.reset_units(&[(*layer, *unit)]),
            }
        }
    }

    /// A re-initialised unit's incoming row and bias, and its column in every later layer's
    /// velocity, start at zero; the factors are statistics of the data and stay.
    fn reset_units(&mut self, units: &[(usize, usize)]) {
        for &(l, j) in units {
            if let Some(state) = self.layers[l].as_mut() {
                state.velocity.row_mut(j).fill(T::zero());
            }
            for state in self.layers.iter_mut().skip(l + 1).flatten() {
                if let Some(at) = state.offset(l) {
                    state.velocity.column_mut(at + j).fill(T::zero());
                }
            }
        }
    }
}

/// [`Kfac::precondition`] on one layer's state.
fn precondition_with<T: Real>(layer: &KfacLayer<T>, gradient: ArrayView2<T>) -> Array2<T> {
    let (n, d) = gradient.dim();
    let mut left = Array2::zeros((n, d));
    matmul(
        T::one(),
        &layer.g_inverse.view(),
        &gradient,
        T::zero(),
        &mut left.view_mut(),
    );
    let mut step = Array2::zeros((n, d));
    matmul(
        T::one(),
        &left.view(),
        &layer.a_inverse.view(),
        T::zero(),
        &mut step.view_mut(),
    );
    step
}

/// ā' = T·ā with T the identity but s on the block at `at`: A ← T·A·T, A⁻¹ ← T⁻¹·A⁻¹·T⁻¹,
/// V ← V·T⁻¹.
fn rescale<T: Real>(state: &mut KfacLayer<T>, at: usize, s: &[T]) {
    for (j, &sj) in s.iter().enumerate() {
        let c = at + j;
        state.a.row_mut(c).mapv_inplace(|v| v * sj);
        state.a.column_mut(c).mapv_inplace(|v| v * sj);
        state.a_inverse.row_mut(c).mapv_inplace(|v| v / sj);
        state.a_inverse.column_mut(c).mapv_inplace(|v| v / sj);
        state.velocity.column_mut(c).mapv_inplace(|v| v / sj);
    }
}

/// The rows of E in T = I + E for a shift of layer l's outputs in the coordinates of `state`'s
/// inputs: y_l' = y_l − γΔα⊙(Σ_k W[l][k]·y_k + b_l) − γΔβ, so E's rows of block l hold
/// −diag(γΔα)·W[l][k] in the columns of block k and −(γΔα⊙b_l + γΔβ) in the bias's column.
/// W[l][k] is taken as it was at the change: `later` γ changes of a source k, made since,
/// rescaled its columns by before/after, which is undone here.
fn shear_rows<T: Real>(
    net: &Network<T>,
    state: &KfacLayer<T>,
    l: usize,
    d_alpha: &[T],
    d_beta: &[T],
    bias: &[T],
    later: &[Change<T>],
) -> Array2<T> {
    let topology = &net.topology;
    let n = topology.size(l);
    let d = state.a.nrows();
    let mut e = Array2::<T>::zeros((n, d));
    if d_alpha.iter().any(|&v| v != T::zero()) {
        for k in topology.sources(l) {
            let (Some(w), Some(at)) = (net.params.weight(l, k), state.offset(k)) else {
                continue;
            };
            let mut undo = vec![T::one(); topology.size(k)];
            for change in later {
                if let Change::Rescale {
                    layer,
                    before,
                    after,
                } = change
                {
                    if *layer == k {
                        for ((u, &b), &a) in undo.iter_mut().zip(before).zip(after) {
                            *u = *u * a / b;
                        }
                    }
                }
            }
            for (i, &da) in d_alpha.iter().enumerate() {
                for (j, &u) in undo.iter().enumerate() {
                    e[(i, at + j)] = -da * w[(i, j)] * u;
                }
            }
        }
    }
    let column = state.bias_column();
    for i in 0..n {
        e[(i, column)] = -(d_alpha[i] * bias[i] + d_beta[i]);
    }
    e
}

/// ā' = (I + E)·ā for E with rows only in the block at `at` and no columns in it (E² = 0):
/// A ← (I+E)·A·(I+E)ᵀ, A⁻¹ ← (I−E)ᵀ·A⁻¹·(I−E), V ← V·(I−E).
fn shear_apply<T: Real>(state: &mut KfacLayer<T>, at: usize, e: &Array2<T>) {
    let (n, d) = e.dim();
    let block = s![at..at + n, ..];
    let block_columns = s![.., at..at + n];
    // A: R = E·A (n × d), S = R·Eᵀ (n × n).
    let mut r = Array2::<T>::zeros((n, d));
    matmul(
        T::one(),
        &e.view(),
        &state.a.view(),
        T::zero(),
        &mut r.view_mut(),
    );
    let mut s_block = Array2::<T>::zeros((n, n));
    matmul(
        T::one(),
        &r.view(),
        &e.t(),
        T::zero(),
        &mut s_block.view_mut(),
    );
    {
        let mut rows = state.a.slice_mut(block);
        rows += &r;
    }
    {
        let mut columns = state.a.slice_mut(block_columns);
        columns += &r.t();
    }
    {
        let mut corner = state.a.slice_mut(s![at..at + n, at..at + n]);
        corner += &s_block;
    }
    // A⁻¹: Q = A⁻¹[:, block]·E (d × d), P = Eᵀ·A⁻¹[block, block]·E.
    let inverse_block = state.a_inverse.slice(block_columns).to_owned();
    let mut q = Array2::<T>::zeros((d, d));
    matmul(
        T::one(),
        &inverse_block.view(),
        &e.view(),
        T::zero(),
        &mut q.view_mut(),
    );
    let corner = state.a_inverse.slice(s![at..at + n, at..at + n]).to_owned();
    let mut corner_e = Array2::<T>::zeros((n, d));
    matmul(
        T::one(),
        &corner.view(),
        &e.view(),
        T::zero(),
        &mut corner_e.view_mut(),
    );
    let mut p = Array2::<T>::zeros((d, d));
    matmul(
        T::one(),
        &e.t(),
        &corner_e.view(),
        T::zero(),
        &mut p.view_mut(),
    );
    Zip::from(&mut state.a_inverse)
        .and(&q)
        .and(&q.t())
        .and(&p)
        .for_each(|x, &q, &qt, &p| *x = *x - q - qt + p);
    // V·(I − E) = V − V[:, block]·E.
    let v_block = state.velocity.slice(block_columns).to_owned();
    matmul(
        -T::one(),
        &v_block.view(),
        &e.view(),
        T::one(),
        &mut state.velocity.view_mut(),
    );
}
