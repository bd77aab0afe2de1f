//! The optimizers behind one interface ([`Optimize`]: a step on the whole network, following a
//! function-preserving reparametrisation, resetting units, and whether α β γ can be followed
//! at all), their enum as a run holds it (chosen by `train.optimizer`), and heavy-ball SGD as
//! in the authors' code: v ← g + λ·w + μ·v, w ← w − η·s·v, where a shortcut from layer k to
//! layer l has its step scaled by s = 2^−(l−k−1), biases are decayed too and may have a
//! momentum of their own (which normalised layers' gains and shifts share, undecayed).

use ndarray::{s, Zip};
use rayon::prelude::*;

use super::adam::{Adam, AdamSettings};
use super::kfac::{Kfac, KfacSettings};
use super::muon::{Muon, MuonSettings};
use crate::net::kernels::{self, matmul};
use crate::net::{Network, Param, Params, Reparam, Topology, Workspace};
use crate::preset::OptimizerKind;
use crate::real::Real;

/// What a step takes from the schedule and the preset besides the network and its gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSettings {
    pub rate: f64,
    /// The weights' momentum and the biases'.
    pub momenta: (f64, f64),
    pub decay: f64,
    /// p of `GammaControl::Step`: each unit's outgoing steps are divided by γ^p.
    pub divide_by_gamma: Option<f64>,
    pub adam: AdamSettings,
    pub muon: MuonSettings,
    pub kfac: KfacSettings,
}

/// How an optimizer's state carries across a reparametrisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowRules {
    /// Rescale the momentum of a unit's outgoing weights with them when γ changes
    /// (`GammaControl::Momentum`, `Step`); otherwise SGD's momentum stays as it was, the
    /// papers' rule.
    pub momentum_follows_gamma: bool,
}

/// One optimizer: what the trainer asks of any of them.
pub trait Optimize<T: Real> {
    /// Which optimizer this is (the preset's name for it).
    fn kind(&self) -> OptimizerKind;

    /// One update of every parameter of `net` from the gradient of the backward pass whose
    /// errors are in `ws`.
    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings);

    /// Carries the state across `reparam`, a function-preserving change `net` has just made.
    fn follow(&mut self, net: &Network<T>, reparam: &Reparam<T>, rules: FollowRules);

    /// Forgets the state of re-initialised units, as (layer, unit): their incoming rows,
    /// outgoing columns and biases.
    fn reset_units(&mut self, units: &[(usize, usize)]);

    /// Whether the state can follow changes of `which`: where it cannot, a run refuses that
    /// parameter (the one rule, [`OptimizerKind::can_follow`]).
    fn can_follow(&self, which: Param) -> bool {
        self.kind().can_follow(which)
    }
}

/// The optimizer of a run and its state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub enum Optimizer<T: Real> {
    // New optimizers go last: postcard numbers the variants, and a checkpoint of format 5
    // (SGD or Adam) must decode as it was written.
    Sgd(Sgd<T>),
    Adam(Adam<T>),
    Muon(Muon<T>),
    Kfac(Kfac<T>),
}

impl<T: Real> Optimizer<T> {
    pub fn new(kind: OptimizerKind, topology: &Topology) -> Self {
        match kind {
            OptimizerKind::Sgd => Optimizer::Sgd(Sgd::new(topology)),
            OptimizerKind::Adam => Optimizer::Adam(Adam::new(topology)),
            OptimizerKind::Muon => Optimizer::Muon(Muon::new(topology)),
            OptimizerKind::Kfac => Optimizer::Kfac(Kfac::new(topology)),
        }
    }

    /// The optimizer as its interface.
    fn inner(&self) -> &dyn Optimize<T> {
        match self {
            Optimizer::Sgd(o) => o,
            Optimizer::Adam(o) => o,
            Optimizer::Muon(o) => o,
            Optimizer::Kfac(o) => o,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn Optimize<T> {
        match self {
            Optimizer::Sgd(o) => o,
            Optimizer::Adam(o) => o,
            Optimizer::Muon(o) => o,
            Optimizer::Kfac(o) => o,
        }
    }
}

impl<T: Real> Optimize<T> for Optimizer<T> {
    fn kind(&self) -> OptimizerKind {
        self.inner().kind()
    }

    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings) {
        self.inner_mut().step(net, ws, settings)
    }

    fn follow(&mut self, net: &Network<T>, reparam: &Reparam<T>, rules: FollowRules) {
        self.inner_mut().follow(net, reparam, rules)
    }

    fn reset_units(&mut self, units: &[(usize, usize)]) {
        self.inner_mut().reset_units(units)
    }
}

impl<T: Real> Optimize<T> for Sgd<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Sgd
    }

    /// The fused step ([`Sgd::step_fused`]): no gradient buffer is formed.
    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings) {
        self.step_fused(
            net,
            ws,
            settings.rate,
            settings.momenta,
            settings.decay,
            settings.divide_by_gamma,
        );
    }

    /// The papers' SGD leaves its momentum as it was (α β shifts and γ alike); under a γ
    /// control that asks it to, the momentum of a unit's outgoing weights is rescaled with
    /// them, by γ before / γ after over the whole change.
    fn follow(&mut self, net: &Network<T>, reparam: &Reparam<T>, rules: FollowRules) {
        follow_velocity(&mut self.velocity, net, reparam, rules);
    }

    fn reset_units(&mut self, units: &[(usize, usize)]) {
        for &unit in units {
            clear_unit(&mut self.velocity, unit);
        }
    }
}

/// A velocity in the weights' coordinates (SGD's, Muon's) across `reparam`: left as it was
/// through α β shifts and, under the papers' rule, γ; under a control that asks it to, the
/// velocity of a unit's outgoing weights is rescaled with them, by γ before / γ after over the
/// whole change. Re-initialised units lose theirs.
pub fn follow_velocity<T: Real>(
    velocity: &mut Params<T>,
    net: &Network<T>,
    reparam: &Reparam<T>,
    rules: FollowRules,
) {
    if rules.momentum_follows_gamma {
        for (l, before, after) in reparam.rescalings() {
            let ratio: Vec<T> = before.iter().zip(&after).map(|(&a, &b)| a / b).collect();
            rescale_outgoing(velocity, &net.topology, l, &ratio);
        }
    }
    for unit in reparam.resets() {
        clear_unit(velocity, unit);
    }
}

/// Rescales the columns of layer l's outgoing blocks of `p` by `ratio` per unit, as
/// [`Network::set_gamma`] rescales the weights.
fn rescale_outgoing<T: Real>(p: &mut Params<T>, topology: &Topology, l: usize, ratio: &[T]) {
    for m in topology.targets(l) {
        if let Some(v) = p.weights[m][l].as_mut() {
            kernels::scale_columns(slice_mut(v), None, ratio);
        }
    }
}

/// Clears an optimizer buffer's entries of one unit (layer, unit): its incoming row, outgoing
/// column and bias.
pub fn clear_unit<T: Real>(p: &mut Params<T>, (l, j): (usize, usize)) {
    for (m, row) in p.weights.iter_mut().enumerate() {
        for (k, w) in row.iter_mut().enumerate() {
            let Some(w) = w.as_mut() else { continue };
            if m == l {
                w.slice_mut(s![j, ..]).fill(T::zero());
            } else if k == l {
                w.slice_mut(s![.., j]).fill(T::zero());
            }
        }
    }
    p.biases[l][j] = T::zero();
}

/// Heavy-ball SGD on every per-unit vector (the biases, with weight decay, then the
/// normalised layers' gains and shifts, without): v ← g + λ·b + μ·v, b −= η·v. Shared by
/// SGD and by Muon, which orthogonalises only the hidden weight matrices.
pub fn step_vectors<T: Real>(
    params: &mut Params<T>,
    velocity: &mut Params<T>,
    grads: &Params<T>,
    rate: f64,
    bias_momentum: f64,
    decay: f64,
) {
    let (eta, mu, decay) = (T::of(rate), T::of(bias_momentum), T::of(decay));
    let biases = grads.biases.len();
    for (i, ((b, v), g)) in params
        .vectors_mut()
        .zip(velocity.vectors_mut())
        .zip(grads.vectors())
        .enumerate()
    {
        let lambda = if i < biases { decay } else { T::zero() };
        Zip::from(b).and(v).and(g).for_each(|b, v, &g| {
            *v = g + lambda * *b + mu * *v;
            *b -= eta * *v;
        });
    }
}

/// Momentum buffers, one per parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd<T> {
    pub velocity: Params<T>,
}

/// Step scale of the block from layer k to layer l.
pub fn shortcut_scale(l: usize, k: usize) -> f64 {
    0.5f64.powi((l - k - 1) as i32)
}

impl<T: Real> Sgd<T> {
    pub fn new(topology: &Topology) -> Self {
        Sgd {
            velocity: Params::zeros(topology),
        }
    }

    /// One update of `params` from `grads`; the biases use `bias_momentum`.
    pub fn step(
        &mut self,
        params: &mut Params<T>,
        grads: &Params<T>,
        rate: f64,
        (momentum, bias_momentum): (f64, f64),
        decay: f64,
    ) {
        let (mu, lambda) = (T::of(momentum), T::of(decay));
        for ((l, k, w), (_, _, v)) in params.blocks_mut().zip(self.velocity.blocks_mut()) {
            let Some(g) = grads.weight(l, k) else {
                continue;
            };
            let eta = T::of(rate * shortcut_scale(l, k));
            Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
                *v = g + lambda * *w + mu * *v;
                *w -= eta * *v;
            });
        }
        step_vectors(
            params,
            &mut self.velocity,
            grads,
            rate,
            bias_momentum,
            decay,
        );
    }

    /// The same update as [`Sgd::step`] with the gradient formed inside it: after
    /// [`Network::backpropagate`], each velocity block becomes μ·v + δᵀ·y/n in one matrix
    /// product (no gradient buffer is written or read), then v += λ·w and w −= η·s·v.
    pub fn step_fused(
        &mut self,
        net: &mut Network<T>,
        ws: &Workspace<T>,
        rate: f64,
        (momentum, bias_momentum): (f64, f64),
        decay: f64,
        divide_by_gamma: Option<f64>,
    ) {
        let rows = ws.rows();
        let (mu, lambda) = (T::of(momentum), T::of(decay));
        let scale = T::one() / T::of(rows.max(1) as f64);
        // γ^−p of every transformed source layer's units, when their outgoing steps are divided.
        let inverse_gamma: Vec<Option<Vec<T>>> = net
            .transforms
            .iter()
            .map(|tr| {
                let power = divide_by_gamma?;
                let tr = tr.as_ref()?;
                Some(
                    tr.gamma
                        .iter()
                        .map(|&g| T::of(g.f64().powf(-power)))
                        .collect(),
                )
            })
            .collect();
        for ((l, k, w), (_, _, v)) in net.params.blocks_mut().zip(self.velocity.blocks_mut()) {
            let delta = ws.delta[l].slice(s![..rows, ..]);
            let y = ws.y[k].slice(s![..rows, ..]);
            matmul(scale, &delta.t(), &y, mu, &mut v.view_mut());
            let eta = T::of(rate * shortcut_scale(l, k));
            match &inverse_gamma[k] {
                Some(columns) => update_columns(slice_mut(w), slice_mut(v), eta, lambda, columns),
                None => update(slice_mut(w), slice_mut(v), eta, lambda),
            }
        }
        let (eta, mu) = (T::of(rate), T::of(bias_momentum));
        for (l, (b, v)) in net
            .params
            .biases
            .iter_mut()
            .zip(self.velocity.biases.iter_mut())
            .enumerate()
            .skip(1)
        {
            let delta = ws.delta[l].slice(s![..rows, ..]);
            let n = delta.ncols();
            let vs = slice_mut(v);
            for x in vs.iter_mut() {
                *x *= mu;
            }
            let d = delta
                .as_slice()
                .expect("workspace rows are contiguous (standard layout)");
            for row in d.chunks_exact(n) {
                for (x, &g) in vs.iter_mut().zip(row) {
                    *x += scale * g;
                }
            }
            update(slice_mut(b), vs, eta, lambda);
        }
        for (l, buf) in ws.norm.iter().enumerate() {
            let Some(buf) = buf else { continue };
            let pairs = [
                (
                    &mut net.params.gains[l],
                    &mut self.velocity.gains[l],
                    &buf.gain_grad,
                ),
                (
                    &mut net.params.shifts[l],
                    &mut self.velocity.shifts[l],
                    &buf.shift_grad,
                ),
            ];
            for (w, v, g) in pairs {
                Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
                    *v = scale * g + mu * *v;
                    *w -= eta * *v;
                });
            }
        }
    }
}

/// v += λ·w, then w −= η·v (v already holds g + μ·v).
fn update<T: Real>(w: &mut [T], v: &mut [T], eta: T, lambda: T) {
    let run = |w: &mut [T], v: &mut [T]| {
        kernels::vectorised(
            #[inline(always)]
            || update_loop(w, v, eta, lambda),
        )
    };
    let parts = kernels::parts_for(w.len());
    if parts == 1 {
        return run(w, v);
    }
    let chunk = w.len().div_ceil(parts);
    w.par_chunks_mut(chunk)
        .zip(v.par_chunks_mut(chunk))
        .with_max_len(1)
        .for_each(|(w, v)| run(w, v));
}

#[inline(always)]
fn update_loop<T: Real>(w: &mut [T], v: &mut [T], eta: T, lambda: T) {
    if lambda == T::zero() {
        for (w, &v) in w.iter_mut().zip(v.iter()) {
            *w -= eta * v;
        }
    } else {
        for (w, v) in w.iter_mut().zip(v.iter_mut()) {
            *v += lambda * *w;
            *w -= eta * *v;
        }
    }
}

/// v += λ·w, then w −= η·c_j·v for the weights of column j (the source unit j).
fn update_columns<T: Real>(w: &mut [T], v: &mut [T], eta: T, lambda: T, columns: &[T]) {
    let n = columns.len().max(1);
    for (w, v) in w.chunks_exact_mut(n).zip(v.chunks_exact_mut(n)) {
        for ((w, v), &c) in w.iter_mut().zip(v.iter_mut()).zip(columns) {
            *v += lambda * *w;
            *w -= eta * c * *v;
        }
    }
}

/// The elements of a parameter block or vector (always standard layout).
fn slice_mut<T, D: ndarray::Dimension>(a: &mut ndarray::Array<T, D>) -> &mut [T] {
    a.as_slice_mut()
        .expect("parameters are allocated in standard layout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Shortcuts, UnitKind};

    /// Two updates with a gradient of ones: each velocity is then 1 + μ, with the biases'
    /// own μ where it differs from the weights'.
    #[test]
    fn biases_follow_their_own_momentum() {
        let topology = Topology::new(
            vec![3, 2, 2],
            vec![UnitKind::Input, UnitKind::Tanh, UnitKind::Softmax],
            Shortcuts::All,
            None,
        )
        .unwrap();
        let mut params = Params::<f64>::zeros(&topology);
        let mut grads = Params::<f64>::zeros(&topology);
        for (_, _, g) in grads.blocks_mut() {
            g.fill(1.0);
        }
        for b in grads.biases.iter_mut() {
            b.fill(1.0);
        }
        let mut sgd = Sgd::new(&topology);
        for _ in 0..2 {
            sgd.step(&mut params, &grads, 0.1, (0.5, 0.9), 0.0);
        }
        for (_, _, v) in sgd.velocity.blocks() {
            assert!(v.iter().all(|&v| (v - 1.5).abs() < 1e-12), "{v}");
        }
        for v in sgd.velocity.biases.iter().skip(1) {
            assert!(v.iter().all(|&v| (v - 1.9).abs() < 1e-12), "{v}");
        }
        // The weights moved by η·s·(1 + 1.5), the biases by η·(1 + 1.9).
        assert!((params.biases[1][0] + 0.1 * 2.9).abs() < 1e-12);
        let w = params.weight(2, 0).unwrap()[[0, 0]];
        assert!(
            (w + 0.1 * 0.5 * 2.5).abs() < 1e-12,
            "shortcut scale 1/2: {w}"
        );
    }
}
