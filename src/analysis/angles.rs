//! Angles between the gradient and the damped second-order direction (M + μI)⁻¹g, solved
//! through the eigendecomposition of M, over the authors' damping grid.

use ndarray::Array1;

use super::spectrum::Eigen;

/// (M + μI) counts as indefinite (angle recorded as null, the authors' NaN) when its smallest
/// eigenvalue is at or below this.
pub const INDEFINITE_FLOOR: f64 = 1e-5;

/// The authors' 20 damping values, logspace(−4, −0.3): 1e-4 … ≈ 0.5.
pub fn damping_grid() -> Vec<f64> {
    (0..20)
        .map(|i| 10f64.powf(-4.0 + 3.7 * i as f64 / 19.0))
        .collect()
}

/// θ = arccos(aᵀb / (‖a‖‖b‖)) in degrees, in [0°, 180°]; NaN for a zero vector. Computed as
/// 2·atan2(‖â − b̂‖, ‖â + b̂‖) with â = a/‖a‖, b̂ = b/‖b‖ (Kahan), which is accurate near 0° where
/// arccos of a rounded cosine is not.
pub fn angle_deg(a: &[f64], b: &[f64]) -> f64 {
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (mut minus, mut plus) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (u, v) = (x / na, y / nb);
        minus += (u - v) * (u - v);
        plus += (u + v) * (u + v);
    }
    (2.0 * minus.sqrt().atan2(plus.sqrt())).to_degrees()
}

/// (M + μI)⁻¹g from M's eigendecomposition, or None when M + μI is not positive definite
/// (smallest eigenvalue ≤ [`INDEFINITE_FLOOR`]).
pub fn damped_direction(eig: &Eigen, g: &[f64], mu: f64) -> Option<Vec<f64>> {
    let smallest = eig.values.iter().copied().fold(f64::INFINITY, f64::min);
    if smallest + mu <= INDEFINITE_FLOOR {
        return None;
    }
    let g = Array1::from(g.to_vec());
    let mut c = eig.vectors.t().dot(&g);
    for (ci, &l) in c.iter_mut().zip(&eig.values) {
        *ci /= l + mu;
    }
    Some(eig.vectors.dot(&c).to_vec())
}

/// The angle between g and (M + μI)⁻¹g for every μ (None where M + μI is indefinite).
pub fn damped_angles(eig: &Eigen, g: &[f64], mus: &[f64]) -> Vec<Option<f64>> {
    mus.iter()
        .map(|&mu| damped_direction(eig, g, mu).map(|d| angle_deg(g, &d)))
        .collect()
}
