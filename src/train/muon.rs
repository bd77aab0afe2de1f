//! Muon (Jordan 2024): momentum orthogonalised by five Newton–Schulz iterations on the weight
//! matrices into hidden layers, heavy-ball SGD (as [`super::optimizer::Sgd`]) for the rest.
//!
//! A hidden layer's blocks are orthogonalised stacked, [W[l][0] | W[l][1] | …], as the one
//! linear map from the layer's concatenated inputs that it is (the same view K-FAC takes): a
//! shortcut that carries little gradient then takes a small step. Orthogonalised one by one,
//! every block would get singular values near 1 however little it carries. Each block's step
//! keeps SGD's shortcut scale 2^−(l−k−1).
//!
//! The buffers live in the weights' coordinates, one per parameter as SGD's velocity, so Muon
//! follows the compensation exactly as SGD does (`super::optimizer::follow_velocity`).

use ndarray::{s, Array2, ArrayView2, Zip};
use serde::{Deserialize, Serialize};

use super::adam::Scratch;
use super::optimizer::{
    follow_velocity, shortcut_scale, step_vectors, FollowRules, Optimize, StepSettings,
};
use crate::net::kernels::matmul;
use crate::net::{Network, Params, Reparam, Topology, Workspace};
use crate::preset::OptimizerKind;
use crate::real::Real;

pub use crate::preset::MuonSettings;

/// Newton–Schulz iterations per step (Jordan 2024).
pub const NEWTON_SCHULZ_STEPS: usize = 5;
/// The quintic's coefficients (Jordan 2024): X ← a·X + (b·A + c·A²)·X with A = X·Xᵀ. Chosen to
/// push small singular values up fast rather than to converge: after five steps every singular
/// value of a normalised matrix above 1% of its Frobenius norm lies in [0.68, 1.14], not
/// at 1 (see the tests).
pub const NEWTON_SCHULZ_COEFFICIENTS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);
/// Added to the Frobenius norm before dividing by it (a zero gradient stays zero).
const NORM_EPSILON: f64 = 1e-7;

/// Momentum of every parameter: Muon's for the weight blocks into hidden layers, heavy-ball
/// SGD's for the biases, the output layer's blocks and normalised layers' gains and shifts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Muon<T: Real> {
    pub velocity: Params<T>,
    /// The step's gradient (not part of the state).
    #[serde(skip)]
    grads: Scratch<T>,
}

impl<T: Real> Muon<T> {
    pub fn new(topology: &Topology) -> Self {
        Muon {
            velocity: Params::zeros(topology),
            grads: Scratch::default(),
        }
    }
}

/// Whether layer l is hidden (neither the input nor the output).
fn is_hidden(topology: &Topology, l: usize) -> bool {
    l > 0 && l < topology.depth()
}

/// The approximate orthogonal polar factor of `g` by [`NEWTON_SCHULZ_STEPS`] quintic
/// iterations on g/‖g‖_F: the result is U·p(Σ/‖g‖_F)·Vᵀ for g = U·Σ·Vᵀ and the odd polynomial
/// p of the iterations, whose values on (0, 1] end near 1.
pub fn newton_schulz<T: Real>(g: ArrayView2<T>) -> Array2<T> {
    let (a, b, c) = NEWTON_SCHULZ_COEFFICIENTS;
    let (a, b, c) = (T::of(a), T::of(b), T::of(c));
    // Work on the wide orientation: X·Xᵀ is then the smaller square.
    let tall = g.nrows() > g.ncols();
    let mut x = if tall { g.t().to_owned() } else { g.to_owned() };
    let norm = x.iter().map(|v| v.f64() * v.f64()).sum::<f64>().sqrt() + NORM_EPSILON;
    let inverse = T::of(1.0 / norm);
    x.mapv_inplace(|v| v * inverse);
    let n = x.nrows();
    let mut gram = Array2::<T>::zeros((n, n));
    let mut poly = Array2::<T>::zeros((n, n));
    let mut next = Array2::<T>::zeros(x.dim());
    for _ in 0..NEWTON_SCHULZ_STEPS {
        matmul(T::one(), &x.view(), &x.t(), T::zero(), &mut gram.view_mut());
        // poly = b·A + c·A·A
        poly.assign(&gram);
        matmul(c, &gram.view(), &gram.view(), b, &mut poly.view_mut());
        // next = a·X + poly·X
        next.assign(&x);
        matmul(T::one(), &poly.view(), &x.view(), a, &mut next.view_mut());
        std::mem::swap(&mut x, &mut next);
    }
    if tall {
        x.t().to_owned()
    } else {
        x
    }
}

impl<T: Real> Optimize<T> for Muon<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Muon
    }

    /// Hidden layers: m ← μ_M·m + g per block; the blocks' m (Nesterov: g + μ_M·m) stacked
    /// and orthogonalised into O; W[l][k] −= η_M·s·(√max(1, rows/cols)·O_k + λ·W[l][k]), η_M
    /// following the rate's schedule. The rest: SGD's v ← g + λ·w + μ·v, w −= η·s·v.
    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings) {
        let mut grads = self
            .grads
            .0
            .take()
            .unwrap_or_else(|| Params::zeros(&net.topology));
        net.gradients(ws, &mut grads);
        let muon = settings.muon;
        let lambda = T::of(settings.decay);
        let depth = net.topology.depth();
        for l in 1..depth {
            let sources: Vec<usize> = (0..l).filter(|&k| net.topology.connects(l, k)).collect();
            if sources.is_empty() {
                continue;
            }
            let rows = net.topology.size(l);
            let cols: usize = sources.iter().map(|&k| net.topology.size(k)).sum();
            let mut stacked = Array2::<T>::zeros((rows, cols));
            let mu = T::of(muon.momentum);
            let mut at = 0;
            for &k in &sources {
                let width = net.topology.size(k);
                let (Some(v), Some(g)) = (
                    self.velocity.weights[l][k].as_mut(),
                    grads.weights[l][k].as_ref(),
                ) else {
                    continue;
                };
                let mut block = stacked.slice_mut(s![.., at..at + width]);
                Zip::from(&mut block).and(v).and(g).for_each(|o, v, &g| {
                    *v = mu * *v + g;
                    *o = if muon.nesterov { g + mu * *v } else { *v };
                });
                at += width;
            }
            let orthogonal = newton_schulz(stacked.view());
            let shape_scale = (rows as f64 / cols as f64).max(1.0).sqrt();
            let mut at = 0;
            for &k in &sources {
                let width = net.topology.size(k);
                let Some(w) = net.params.weights[l][k].as_mut() else {
                    continue;
                };
                let eta = T::of(settings.rate * muon.rate_ratio * shortcut_scale(l, k));
                let scale = T::of(shape_scale);
                let block = orthogonal.slice(s![.., at..at + width]);
                Zip::from(w).and(&block).for_each(|w, &o| {
                    *w -= eta * (scale * o + lambda * *w);
                });
                at += width;
            }
        }
        // Heavy-ball SGD for the output layer's blocks and every per-unit vector.
        let mu = T::of(settings.momenta.0);
        for ((l, k, w), (_, _, v)) in net.params.blocks_mut().zip(self.velocity.blocks_mut()) {
            if is_hidden(&net.topology, l) {
                continue;
            }
            let Some(g) = grads.weight(l, k) else {
                continue;
            };
            let eta = T::of(settings.rate * shortcut_scale(l, k));
            Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
                *v = g + lambda * *w + mu * *v;
                *w -= eta * *v;
            });
        }
        step_vectors(
            &mut net.params,
            &mut self.velocity,
            &grads,
            settings.rate,
            settings.momenta.1,
            settings.decay,
        );
        self.grads.0 = Some(grads);
    }

    fn follow(&mut self, net: &Network<T>, reparam: &Reparam<T>, rules: FollowRules) {
        follow_velocity(&mut self.velocity, net, reparam, rules);
    }

    fn reset_units(&mut self, units: &[(usize, usize)]) {
        for &unit in units {
            super::optimizer::clear_unit(&mut self.velocity, unit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;

    /// The iteration's odd polynomial applied to one singular value of the normalised matrix.
    fn polynomial(mut sigma: f64) -> f64 {
        let (a, b, c) = NEWTON_SCHULZ_COEFFICIENTS;
        for _ in 0..NEWTON_SCHULZ_STEPS {
            let s2 = sigma * sigma;
            sigma = a * sigma + (b * s2 + c * s2 * s2) * sigma;
        }
        sigma
    }

    /// A 12 × 7 matrix U·diag(σ)·Vᵀ with known singular values from 1 to 6 (condition 6).
    fn known_matrix() -> (Array2<f64>, Array2<f64>, Array1<f64>, Array2<f64>) {
        let random = |rows: usize, cols: usize, seed: u64| {
            Array2::from_shape_fn((rows, cols), |(i, j)| {
                let x = (i * 31 + j * 17 + seed as usize * 7) as f64;
                (x * 0.618_033_988_7).fract() - 0.5
            })
        };
        let orthonormal = |m: Array2<f64>| {
            let f = faer::Mat::<f64>::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)]);
            let q = f.qr().compute_thin_Q();
            Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| q[(i, j)])
        };
        let u = orthonormal(random(12, 7, 1));
        let v = orthonormal(random(7, 7, 2));
        let sigma = Array1::from_shape_fn(7, |i| 1.0 + i as f64 * 5.0 / 6.0);
        let g = u.dot(&Array2::from_diag(&sigma)).dot(&v.t());
        (g, u, sigma, v)
    }

    /// Newton–Schulz is U·p(Σ/‖G‖_F)·Vᵀ to rounding (1e-12 in f64), and within the
    /// iteration's stated bound of the SVD's polar factor U·Vᵀ: every singular value of the
    /// result lies in [0.68, 1.14] (measured here: the largest error |p(σ) − 1| on this matrix
    /// is below 0.32 in the spectral norm), tall and wide alike.
    #[test]
    fn newton_schulz_is_the_polynomial_of_the_singular_values() {
        let (g, u, sigma, v) = known_matrix();
        let norm = sigma.iter().map(|s| s * s).sum::<f64>().sqrt() + NORM_EPSILON;
        let expected_sigma = sigma.mapv(|s| polynomial(s / norm));
        let expected = u.dot(&Array2::from_diag(&expected_sigma)).dot(&v.t());
        for (got, want) in [
            (newton_schulz(g.view()), expected.clone()),
            (newton_schulz(g.t()), expected.t().to_owned()),
        ] {
            let err = (&got - &want).iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(err < 1e-12, "Newton–Schulz vs U·p(Σ)·Vᵀ: {err:e}");
        }
        // Against the SVD polar factor (faer) of the same matrix.
        let f = faer::Mat::<f64>::from_fn(12, 7, |i, j| g[(i, j)]);
        let svd = f.thin_svd().unwrap();
        let polar = Array2::from_shape_fn((12, 7), |(i, j)| {
            (0..7)
                .map(|r| svd.U()[(i, r)] * svd.V()[(j, r)])
                .sum::<f64>()
        });
        let got = newton_schulz(g.view());
        for &s in expected_sigma.iter() {
            assert!(
                (0.68..=1.14).contains(&s),
                "singular value {s} outside the bound"
            );
        }
        let spectral_bound = expected_sigma
            .iter()
            .fold(0.0f64, |m, s| m.max((s - 1.0).abs()));
        assert!(spectral_bound < 0.32, "{spectral_bound}");
        // ‖NS(G) − U·Vᵀ‖_F ≤ √rank · max |p(σ) − 1|.
        let frobenius = (&got - &polar).iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(
            frobenius <= 7f64.sqrt() * spectral_bound + 1e-9,
            "{frobenius} > √7·{spectral_bound}"
        );
    }
}
