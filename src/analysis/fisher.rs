//! The Fisher information matrix of a softmax classifier with respect to its weights:
//! F = (1/T) Σ_t J_tᵀ (diag p_t − p_t p_tᵀ) J_t, with J_t the Jacobian of the logits. For softmax
//! with cross-entropy this is also the Gauss–Newton matrix of the mean loss.

use ndarray::{s, Array2, ArrayView2};

use crate::net::{Network, Params, UnitKind, Workspace};

/// Examples per chunk (each contributes one row per class to the factor V, F = VᵀV / T).
const CHUNK: usize = 100;

/// The Fisher matrix over the rows of `inputs`, normalised by the number of examples T so that
/// it is on the scale of the Hessian of the *mean* loss. The expectation over labels is under
/// the model's own distribution p (the true Fisher, not the empirical one).
///
/// diag p − ppᵀ = Σ_c p_c (e_c − p)(e_c − p)ᵀ, so each example and class contributes the outer
/// product of v = √p_c · J_tᵀ(e_c − p): the per-example gradient for the output error √p_c(e_c − p),
/// which backprop computes when `delta[L]` is set to it.
///
/// # Panics
/// If the output layer is not a softmax.
pub fn fisher(net: &Network<f64>, inputs: ArrayView2<f64>) -> Array2<f64> {
    let depth = net.depth();
    assert_eq!(
        net.topology.kind(depth),
        UnitKind::Softmax,
        "the Fisher matrix is implemented for softmax outputs"
    );
    let classes = net.topology.size(depth);
    let blocks: Vec<(usize, usize, usize)> = {
        let mut offset = 0;
        net.params
            .blocks()
            .map(|(l, k, w)| {
                let b = (l, k, offset);
                offset += w.len();
                b
            })
            .collect()
    };
    let n = net.params.len(false);
    let mut f = Array2::<f64>::zeros((n, n));
    let mut ws = Workspace::new(&net.topology, CHUNK);
    let mut scratch = Params::zeros(&net.topology);
    let mut v = Array2::<f64>::zeros((CHUNK * classes, n));
    let total = inputs.nrows();
    let mut start = 0;
    while start < total {
        let end = (start + CHUNK).min(total);
        let rows = end - start;
        net.forward(inputs.slice(s![start..end, ..]), &mut ws);
        let p = ws.output().to_owned();
        for c in 0..classes {
            {
                let mut d = ws.delta[depth].slice_mut(s![..rows, ..]);
                for t in 0..rows {
                    let root = p[(t, c)].sqrt();
                    for j in 0..classes {
                        let e = if j == c { 1.0 } else { 0.0 };
                        d[(t, j)] = root * (e - p[(t, j)]);
                    }
                }
            }
            net.backward(&mut ws, &mut scratch);
            for t in 0..rows {
                let mut row = v.row_mut(t * classes + c);
                for &(l, k, offset) in &blocks {
                    let dl = ws.delta[l].row(t);
                    let yk = ws.y[k].row(t);
                    let nk = yk.len();
                    for (i, &di) in dl.iter().enumerate() {
                        let base = offset + i * nk;
                        for (j, &yj) in yk.iter().enumerate() {
                            row[base + j] = di * yj;
                        }
                    }
                }
            }
        }
        let used = v.slice(s![..rows * classes, ..]);
        ndarray::linalg::general_mat_mul(1.0, &used.t(), &used, 1.0, &mut f);
        start = end;
    }
    f /= total.max(1) as f64;
    f
}
