//! Heavy-ball SGD as in the authors' code: v ← g + λ·w + μ·v, w ← w − η·s·v, where a shortcut
//! from layer k to layer l has its step scaled by s = 2^−(l−k−1) and biases are decayed too.

use ndarray::Zip;

use crate::net::{Params, Topology};
use crate::real::Real;

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

    /// One update of `params` from `grads`.
    pub fn step(
        &mut self,
        params: &mut Params<T>,
        grads: &Params<T>,
        rate: f64,
        momentum: f64,
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
        let eta = T::of(rate);
        for ((b, v), g) in params
            .biases
            .iter_mut()
            .zip(self.velocity.biases.iter_mut())
            .zip(&grads.biases)
        {
            Zip::from(b).and(v).and(g).for_each(|b, v, &g| {
                *v = g + lambda * *b + mu * *v;
                *b -= eta * *v;
            });
        }
    }
}
