//! The Lanczos process with full reorthogonalisation for a symmetric operator given only as
//! matrix-vector products, and what its tridiagonal matrix T yields: extreme Ritz values with
//! their residual bounds, Gaussian-quadrature nodes and weights (stochastic Lanczos
//! quadrature), and the damped solves (M + μI)⁻¹g of conjugate gradient for every μ at once.
//!
//! Lanczos started from q₁ = g/‖g‖ builds an orthonormal Q with MQ = QT + β_k q_{k+1}e_kᵀ. The
//! CG iterate for (M + μI)d = g after k steps is d = ‖g‖·Q(T + μI)⁻¹e₁ (CG and Lanczos span the
//! same Krylov space; shifts keep it), with residual ‖g‖·β_k·|e_kᵀ(T + μI)⁻¹e₁|. Because Q is
//! orthonormal (kept so by reorthogonalising against every earlier vector), the angle between
//! g and d is the angle between e₁ and (T + μI)⁻¹e₁: no n-vector solutions need to be formed.

use super::spectrum::eigen;
use ndarray::Array2;

/// The coefficients of a Lanczos run: T = tridiag(beta, alpha, beta), and the norm after the
/// last step (β_k, the residual coupling to the next vector).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tridiagonal {
    pub alpha: Vec<f64>,
    /// Off-diagonal, `alpha.len() - 1` values.
    pub beta: Vec<f64>,
    /// ‖r_k‖ after the last step; 0 when the Krylov space is invariant (exact).
    pub residual: f64,
}

/// A β below this share of the largest |α| or β so far ends the run: the Krylov space is
/// (numerically) invariant and every result is exact in it.
const BREAKDOWN: f64 = 1e-13;

/// Runs Lanczos from `start` (normalised here) with full reorthogonalisation, for at most
/// `max_steps` steps. After every step `stop(&t)` may end the run (convergence); `op(v, out)`
/// writes M·v. Keeps all Lanczos vectors: memory `steps · n` f64 values.
pub fn lanczos(
    op: &mut dyn FnMut(&[f64], &mut [f64]),
    start: &[f64],
    max_steps: usize,
    stop: &mut dyn FnMut(&Tridiagonal) -> bool,
) -> Tridiagonal {
    let n = start.len();
    let mut t = Tridiagonal::default();
    let norm0 = norm(start);
    if n == 0 || norm0 == 0.0 || !norm0.is_finite() {
        return t;
    }
    let mut basis: Vec<Vec<f64>> = vec![start.iter().map(|v| v / norm0).collect()];
    let mut w = vec![0.0; n];
    let mut scale = 0.0f64;
    for j in 0..max_steps.min(n) {
        op(&basis[j], &mut w);
        if j > 0 {
            let b = t.beta[j - 1];
            axpy(-b, &basis[j - 1], &mut w);
        }
        let a = dot(&basis[j], &w);
        axpy(-a, &basis[j], &mut w);
        // Twice is enough (Kahan–Parlett): classical Gram–Schmidt against every vector, twice.
        for _ in 0..2 {
            for q in &basis {
                let c = dot(q, &w);
                axpy(-c, q, &mut w);
            }
        }
        t.alpha.push(a);
        let b = norm(&w);
        scale = scale.max(a.abs()).max(b);
        t.residual = b;
        let done = b <= BREAKDOWN * scale || j + 1 == max_steps.min(n);
        if done {
            if b <= BREAKDOWN * scale {
                t.residual = 0.0;
            }
            stop(&t);
            break;
        }
        if stop(&t) {
            break;
        }
        t.beta.push(b);
        basis.push(w.iter().map(|v| v / b).collect());
    }
    t
}

/// The eigenvalues (ascending) of T, and the first and last component of each eigenvector.
#[derive(Debug, Clone)]
pub struct Ritz {
    pub values: Vec<f64>,
    pub first: Vec<f64>,
    pub last: Vec<f64>,
    /// |β_k · last_j|: the residual ‖M y_j − θ_j y_j‖ of each Ritz pair (exact arithmetic).
    pub residuals: Vec<f64>,
}

impl Tridiagonal {
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    /// Eigendecomposition of T (dense; T is at most a few thousand rows).
    pub fn ritz(&self) -> Result<Ritz, String> {
        let k = self.len();
        let mut m = Array2::zeros((k, k));
        for i in 0..k {
            m[(i, i)] = self.alpha[i];
            if i + 1 < k {
                m[(i + 1, i)] = self.beta[i];
                m[(i, i + 1)] = self.beta[i];
            }
        }
        let e = eigen(&m)?;
        let first: Vec<f64> = (0..k).map(|j| e.vectors[(0, j)]).collect();
        let last: Vec<f64> = (0..k).map(|j| e.vectors[(k - 1, j)]).collect();
        Ok(Ritz {
            values: e.values.to_vec(),
            residuals: last.iter().map(|s| (self.residual * s).abs()).collect(),
            first,
            last,
        })
    }

    /// y = (T + μI)⁻¹e₁ by the LDLᵀ recurrence, or None when T + μI is not positive definite
    /// (a pivot ≤ 0): the multi-shift CG solution in Lanczos coordinates.
    pub fn shifted_solve(&self, mu: f64) -> Option<Vec<f64>> {
        let k = self.len();
        if k == 0 {
            return None;
        }
        // Forward: d_i pivots, l_i multipliers; solve L z = e₁, D w = z, Lᵀ y = w.
        let mut d = vec![0.0; k];
        let mut l = vec![0.0; k];
        d[0] = self.alpha[0] + mu;
        if d[0] <= 0.0 {
            return None;
        }
        for i in 1..k {
            l[i] = self.beta[i - 1] / d[i - 1];
            d[i] = self.alpha[i] + mu - l[i] * self.beta[i - 1];
            if d[i] <= 0.0 || !d[i].is_finite() {
                return None;
            }
        }
        let mut z = vec![0.0; k];
        z[0] = 1.0;
        for i in 1..k {
            z[i] = -l[i] * z[i - 1];
        }
        let mut y: Vec<f64> = z.iter().zip(&d).map(|(z, d)| z / d).collect();
        for i in (0..k - 1).rev() {
            y[i] -= l[i + 1] * y[i + 1];
        }
        Some(y)
    }

    /// Whether T + μI is positive definite (Sylvester: every LDLᵀ pivot positive).
    pub fn shifted_positive(&self, mu: f64) -> bool {
        let mut d = 0.0;
        for i in 0..self.len() {
            d = if i == 0 {
                self.alpha[0] + mu
            } else {
                self.alpha[i] + mu - self.beta[i - 1] * self.beta[i - 1] / d
            };
            if d <= 0.0 || !d.is_finite() {
                return false;
            }
        }
        true
    }

    /// The CG relative residual ‖(M + μI)d − g‖/‖g‖ = β_k·|y_k| for y = (T + μI)⁻¹e₁.
    pub fn solve_residual(&self, y: &[f64]) -> f64 {
        self.residual * y.last().map_or(0.0, |v| v.abs())
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four partial sums: vectorises and keeps the rounding of long sums smaller.
    let mut s = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            s[i] += x[i] * y[i];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    s[0] + s[1] + s[2] + s[3] + tail
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y ← y + a·x.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}
