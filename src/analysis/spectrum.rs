//! Symmetric eigendecomposition (faer) and the summary statistics of a curvature matrix:
//! condition number over eigenvalues above a floor, share of negative eigenvalues, and the
//! ratio of off-diagonal to diagonal Frobenius mass.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// Eigenvalues at or below this are treated as zero for the condition number.
pub const EIGEN_FLOOR: f64 = 1e-6;

/// Eigenvalues in ascending order, with the matching orthonormal eigenvectors as columns.
#[derive(Debug, Clone)]
pub struct Eigen {
    pub values: Array1<f64>,
    pub vectors: Array2<f64>,
}

/// The eigendecomposition of a symmetric matrix (only the lower triangle is read).
pub fn eigen(a: &Array2<f64>) -> Result<Eigen, String> {
    let n = a.nrows();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| a[(i, j)]);
    let evd = m
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| format!("the eigendecomposition did not converge: {e:?}"))?;
    let s = evd.S().column_vector();
    let u = evd.U();
    Ok(Eigen {
        values: Array1::from_shape_fn(n, |i| s[i]),
        vectors: Array2::from_shape_fn((n, n), |(i, j)| u[(i, j)]),
    })
}

/// ‖offdiag(A)‖_F / ‖diag(A)‖_F: 0 for a diagonal matrix.
pub fn off_diagonal_ratio(a: &Array2<f64>) -> f64 {
    let total: f64 = a.iter().map(|v| v * v).sum();
    let diag: f64 = a.diag().iter().map(|v| v * v).sum();
    if diag > 0.0 {
        ((total - diag).max(0.0) / diag).sqrt()
    } else {
        f64::INFINITY
    }
}

/// What the tables and `curvature.json` report about one matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumStats {
    pub size: usize,
    pub min: f64,
    pub max: f64,
    /// The floor used for `condition` and `above_floor`.
    pub floor: f64,
    /// Eigenvalues above the floor.
    pub above_floor: usize,
    /// λ_max / (smallest eigenvalue above the floor); null when none is above the floor.
    pub condition: Option<f64>,
    /// Share of eigenvalues below zero.
    pub negative_share: f64,
    /// Share of eigenvalues below −floor (round-off around zero not counted).
    pub negative_share_beyond_floor: f64,
    /// See [`off_diagonal_ratio`].
    pub off_diagonal_ratio: f64,
    /// Mean and spread (max/min over the positive ones) of the diagonal.
    pub diagonal_mean: f64,
    pub diagonal_spread: Option<f64>,
}

impl SpectrumStats {
    pub fn new(a: &Array2<f64>, values: &Array1<f64>, floor: f64) -> Self {
        let n = values.len();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let above: Vec<f64> = values.iter().copied().filter(|&v| v > floor).collect();
        let smallest = above.iter().copied().fold(f64::INFINITY, f64::min);
        let share = |pred: &dyn Fn(f64) -> bool| {
            values.iter().filter(|&&v| pred(v)).count() as f64 / n.max(1) as f64
        };
        let diag = a.diag();
        let positive: Vec<f64> = diag.iter().copied().filter(|&v| v > 0.0).collect();
        let dmax = positive.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let dmin = positive.iter().copied().fold(f64::INFINITY, f64::min);
        SpectrumStats {
            size: n,
            min,
            max,
            floor,
            above_floor: above.len(),
            condition: (!above.is_empty()).then(|| max / smallest),
            negative_share: share(&|v| v < 0.0),
            negative_share_beyond_floor: share(&|v| v < -floor),
            off_diagonal_ratio: off_diagonal_ratio(a),
            diagonal_mean: diag.mean().unwrap_or(0.0),
            diagonal_spread: (!positive.is_empty()).then(|| dmax / dmin),
        }
    }
}
