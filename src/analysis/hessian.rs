//! The Hessian of the mean training loss with respect to the weights, column by column from
//! central differences of the analytic (backprop) gradient, as in the authors' `ltmlp_hessian.m`.

use ndarray::{Array2, ArrayView2};

use super::gradient::WeightGradient;
use crate::data::Class;
use crate::net::Network;

/// Finite-difference step for the Hessian columns (the authors used 1e-3; f64 allows 1e-4).
pub const DEFAULT_STEP: f64 = 1e-4;

/// H[:, j] = (∇L(w + h·e_j) − ∇L(w − h·e_j)) / 2h over the weights, biases held fixed.
/// Not symmetrised (see [`symmetrise`]). Costs 2·(#weights) passes over `inputs`.
pub fn hessian_fd(
    net: &Network<f64>,
    inputs: ArrayView2<f64>,
    labels: &[Class],
    h: f64,
) -> Array2<f64> {
    let mut work = net.clone();
    let base = net.params.to_flat(false);
    let n = base.len();
    let mut grad = WeightGradient::new(net);
    let mut plus = vec![0.0; n];
    let mut minus = vec![0.0; n];
    let mut w = base.clone();
    let mut hess = Array2::zeros((n, n));
    for j in 0..n {
        w[j] = base[j] + h;
        work.params.set_flat(&w, false);
        grad.compute(&work, inputs, labels, &mut plus);
        w[j] = base[j] - h;
        work.params.set_flat(&w, false);
        grad.compute(&work, inputs, labels, &mut minus);
        w[j] = base[j];
        for (i, (p, m)) in plus.iter().zip(&minus).enumerate() {
            hess[(i, j)] = (p - m) / (2.0 * h);
        }
    }
    hess
}

/// A ← (A + Aᵀ)/2.
pub fn symmetrise(a: &mut Array2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in (i + 1)..n {
            let m = 0.5 * (a[(i, j)] + a[(j, i)]);
            a[(i, j)] = m;
            a[(j, i)] = m;
        }
    }
}

/// ‖A − Aᵀ‖_F / ‖A‖_F: how far a finite-difference Hessian is from symmetric (0 for an exact
/// Hessian; round-off and truncation error make it small but non-zero).
pub fn asymmetry(a: &Array2<f64>) -> f64 {
    let norm = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let diff = (a - &a.t()).iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        diff / norm
    } else {
        0.0
    }
}
