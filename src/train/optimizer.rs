//! The optimizers (one enum, chosen by `train.optimizer`), and heavy-ball SGD as in the
//! authors' code: v ← g + λ·w + μ·v, w ← w − η·s·v, where a shortcut from layer k to layer l
//! has its step scaled by s = 2^−(l−k−1), biases are decayed too and may have a momentum of
//! their own (which normalised layers' gains and shifts share, undecayed).

use ndarray::{s, Zip};
use rayon::prelude::*;

use crate::net::kernels::{self, matmul};
use crate::net::{Network, Params, Topology, Workspace};
use crate::real::Real;

/// The optimizer of a run and its state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub enum Optimizer<T: Real> {
    Sgd(Sgd<T>),
    Adam(super::adam::Adam<T>),
}

impl<T: Real> Optimizer<T> {
    pub fn new(kind: crate::preset::OptimizerKind, topology: &Topology) -> Self {
        match kind {
            crate::preset::OptimizerKind::Sgd => Optimizer::Sgd(Sgd::new(topology)),
            crate::preset::OptimizerKind::Adam => Optimizer::Adam(super::adam::Adam::new(topology)),
        }
    }

    pub fn is_adam(&self) -> bool {
        matches!(self, Optimizer::Adam(_))
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
        let (eta, mu) = (T::of(rate), T::of(bias_momentum));
        let biases = grads.biases.len();
        for (i, ((b, v), g)) in params
            .vectors_mut()
            .zip(self.velocity.vectors_mut())
            .zip(grads.vectors())
            .enumerate()
        {
            let lambda = if i < biases { lambda } else { T::zero() };
            Zip::from(b).and(v).and(g).for_each(|b, v, &g| {
                *v = g + lambda * *b + mu * *v;
                *b -= eta * *v;
            });
        }
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

impl<T: Real> Sgd<T> {
    /// Rescales the momentum of layer l's outgoing weights by `ratio` per unit (column), as
    /// [`Network::set_gamma`] rescales the weights: the momentum then carries the same step of
    /// the network function as before γ changed.
    pub fn follow_gamma(&mut self, topology: &Topology, l: usize, ratio: &[T]) {
        for m in topology.targets(l) {
            if let Some(v) = self.velocity.weights[m][l].as_mut() {
                kernels::scale_columns(slice_mut(v), None, ratio);
            }
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
