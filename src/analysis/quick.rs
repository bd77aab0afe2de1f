//! A quick curvature reading for the TUI: the angle between the minibatch gradient and the
//! damped Newton and natural-gradient directions, and the off-diagonal ratios, for networks
//! small enough for a dense Hessian, and the Krylov method's reading (one log line) beyond that.

use ndarray::{s, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::angles::damping_grid;
use super::krylov::{self, KrylovMatrix, KrylovOptions};
use super::{damped_angles, eigen, fisher, hessian_fd, symmetrise, SpectrumStats, WeightGradient};
use super::{DEFAULT_STEP, EIGEN_FLOOR};
use crate::data::Class;
use crate::net::{Network, UnitKind};
use crate::real::Real;

/// Largest weight count (biases excluded) for which [`quick_curvature`] builds a dense Hessian:
/// 2·3000 gradient passes on 500 examples and two 3000×3000 eigendecompositions take tens of
/// seconds in the background; `presets/tiny.toml` (2634 weights) fits.
pub const QUICK_MAX_WEIGHTS: usize = 3000;
/// At most this many of the given examples enter the Hessian and Fisher (the first ones).
pub const QUICK_MAX_EXAMPLES: usize = 500;

/// Why no reading was made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "curvature needs a dense {weights}×{weights} Hessian; the quick reading is limited to \
         {limit} weights (this network has {weights}); use `ltmlp diagnose` on a smaller preset"
    )]
    TooLarge { weights: usize, limit: usize },
    #[error("curvature is implemented for softmax classifiers only, not autoencoders")]
    NotClassifier,
    #[error("no examples to measure curvature on")]
    NoData,
    #[error("{0}")]
    Numerical(String),
}

/// The reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickCurvature {
    pub weights: usize,
    pub examples: usize,
    pub hessian: SpectrumStats,
    pub fisher: SpectrumStats,
    /// Angle (degrees) between g and (H + μI)⁻¹g at the smallest μ of the damping grid for which
    /// H + μI is positive definite, with that μ; None if no μ of the grid makes it so.
    pub newton_angle: Option<(f64, f64)>,
    /// The same for the natural gradient (F + μI)⁻¹g (F is positive semidefinite, so this is μ =
    /// 1e-4 unless F is degenerate).
    pub natural_angle: Option<(f64, f64)>,
}

/// Measures the curvature of `net` on the first [`QUICK_MAX_EXAMPLES`] rows of `inputs`, with g
/// the gradient on the minibatch `batch`/`batch_labels`. Runs in f64 on a copy; meant for a
/// background thread.
pub fn quick_curvature<T: Real>(
    net: &Network<T>,
    inputs: ArrayView2<T>,
    labels: &[Class],
    batch: ArrayView2<T>,
    batch_labels: &[Class],
) -> Result<QuickCurvature, Refusal> {
    let weights = net.params.len(false);
    if weights > QUICK_MAX_WEIGHTS {
        return Err(Refusal::TooLarge {
            weights,
            limit: QUICK_MAX_WEIGHTS,
        });
    }
    if net.topology.kind(net.depth()) != UnitKind::Softmax {
        return Err(Refusal::NotClassifier);
    }
    let rows = inputs.nrows().min(QUICK_MAX_EXAMPLES).min(labels.len());
    if rows == 0 || batch.nrows() == 0 {
        return Err(Refusal::NoData);
    }
    let net = net.cast::<f64>();
    let x: Array2<f64> = inputs.slice(s![..rows, ..]).mapv(|v| v.f64());
    let xb: Array2<f64> = batch.mapv(|v| v.f64());
    let mut h = hessian_fd(&net, x.view(), &labels[..rows], DEFAULT_STEP);
    symmetrise(&mut h);
    let f = fisher(&net, x.view());
    let mut g = vec![0.0; weights];
    WeightGradient::new(&net).compute(&net, xb.view(), batch_labels, &mut g);
    let he = eigen(&h).map_err(Refusal::Numerical)?;
    let fe = eigen(&f).map_err(Refusal::Numerical)?;
    let grid = damping_grid();
    let first = |angles: Vec<Option<f64>>| {
        grid.iter()
            .zip(angles)
            .find_map(|(&mu, a)| a.map(|a| (mu, a)))
    };
    Ok(QuickCurvature {
        weights,
        examples: rows,
        hessian: SpectrumStats::new(&h, &he.values, EIGEN_FLOOR),
        fisher: SpectrumStats::new(&f, &fe.values, EIGEN_FLOOR),
        newton_angle: first(damped_angles(&he, &g, &grid)),
        natural_angle: first(damped_angles(&fe, &g, &grid)),
    })
}

/// Krylov budgets of the quick reading of a large network: about 70 products per matrix on
/// [`QUICK_MAX_EXAMPLES`] examples (a minute or two on one core for 2 million weights).
pub fn quick_krylov_options() -> KrylovOptions {
    KrylovOptions {
        solve_steps: 30,
        extreme_steps: 25,
        probes: 2,
        probe_steps: 12,
        ..KrylovOptions::standard()
    }
}

/// The quick reading of a network of any size by the Krylov method, as one log line: λ_max of H
/// and F, the estimated share of negative eigenvalues of H, and the angles at the smallest grid
/// μ whose CG solve converged. Runs on one thread of its own (a private one-thread pool), so that
/// it takes at most the core it runs on from training.
pub fn krylov_line<T: Real>(
    iteration: u64,
    net: &Network<T>,
    inputs: ArrayView2<T>,
    labels: &[crate::data::Class],
    batch: ArrayView2<T>,
    batch_labels: &[crate::data::Class],
) -> String {
    let head = format!("curvature @ it {iteration} (Krylov)");
    let rows = inputs.nrows().min(QUICK_MAX_EXAMPLES).min(labels.len());
    let net = net.cast::<f64>();
    let x: Array2<f64> = inputs.slice(s![..rows, ..]).mapv(|v| v.f64());
    let xb: Array2<f64> = batch.mapv(|v| v.f64());
    let options = quick_krylov_options();
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => pool,
        Err(e) => return format!("{head}: cannot start a thread pool: {e}"),
    };
    let result = pool.install(|| {
        krylov::measure(
            &net,
            x.view(),
            &labels[..rows],
            xb.view(),
            batch_labels,
            &options,
            &mut |_| {},
        )
    });
    let m = match result {
        Ok(m) => m,
        Err(e) => return format!("{head}: {e}"),
    };
    let grid = damping_grid();
    let first = |k: &KrylovMatrix| {
        grid.iter()
            .zip(k.angles.iter().zip(&k.angle_residuals))
            .find_map(|(&mu, (a, r))| match (a, r) {
                (Some(a), Some(r)) if *r <= options.solve_tolerance => {
                    Some(format!("{a:.1}° (μ={mu:.0e})"))
                }
                _ => None,
            })
            .unwrap_or_else(|| "not converged".into())
    };
    let top = |k: &KrylovMatrix| k.largest.first().copied().unwrap_or(f64::NAN);
    format!(
        "{head} on {} examples, {} weights: λmax H {:.3e} F {:.3e}, H negative ≈{:.0}%, ∠(g, Newton) {}, ∠(g, natural) {}",
        m.examples,
        m.weights,
        top(&m.hessian),
        top(&m.fisher),
        100.0 * m.hessian.negative_share,
        first(&m.hessian),
        first(&m.fisher)
    )
}
