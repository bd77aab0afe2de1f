//! The matrix-free curvature measurement of one network state: for H (exact Hessian-vector
//! products) and F (Gauss–Newton = Fisher products), Lanczos for the extreme eigenvalues,
//! stochastic Lanczos quadrature (SLQ) for the spectral density, the trace and the share of
//! negative eigenvalues, and CG (through Lanczos from g, every μ at once) for the angles
//! between g and (M + μI)⁻¹g over the dense method's damping grid.

use std::time::Instant;

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::angles::{angle_deg, damping_grid, INDEFINITE_FLOOR};
use super::lanczos::{lanczos, Ritz, Tridiagonal};
use super::products::{CurvatureProducts, ProductError};
use super::spectrum::EIGEN_FLOOR;
use crate::net::Network;

/// How much work each part of the measurement may do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KrylovOptions {
    /// Most Lanczos steps (products) from g for the damped solves.
    pub solve_steps: usize,
    /// CG relative residual ‖(M + μI)d − g‖/‖g‖ at which a damped solve counts as converged.
    pub solve_tolerance: f64,
    /// Most Lanczos steps of the extreme-eigenvalue run (also the first SLQ probe).
    pub extreme_steps: usize,
    /// Ritz residual, relative to |λ_max|, at which an extreme eigenvalue counts as converged.
    pub extreme_tolerance: f64,
    /// How many of the largest eigenvalues to report (and wait for).
    pub top: usize,
    /// SLQ probes (Rademacher vectors) including the extreme-eigenvalue run, and steps of each
    /// further probe.
    pub probes: usize,
    pub probe_steps: usize,
    /// Seed of the probe vectors.
    pub seed: u64,
}

impl KrylovOptions {
    /// Budgets for a network of about 2 million weights: about 200 products per matrix.
    pub fn standard() -> Self {
        KrylovOptions {
            solve_steps: 80,
            solve_tolerance: 1e-3,
            extreme_steps: 60,
            extreme_tolerance: 1e-6,
            top: 5,
            probes: 4,
            probe_steps: 30,
            seed: 1,
        }
    }

    /// Budgets that make the method exact up to round-off on a network of a few thousand
    /// weights (the agreement tests with the dense method).
    pub fn exhaustive() -> Self {
        KrylovOptions {
            solve_steps: usize::MAX,
            solve_tolerance: 1e-10,
            extreme_steps: usize::MAX,
            extreme_tolerance: 1e-12,
            top: 5,
            probes: 4,
            probe_steps: 60,
            seed: 1,
        }
    }
}

/// What the Krylov method gives for one matrix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KrylovMatrix {
    /// The largest eigenvalues, descending, and their Ritz residuals ‖My − θy‖.
    pub largest: Vec<f64>,
    pub largest_residuals: Vec<f64>,
    /// The smallest Ritz value found (≥ the true λ_min) and its residual.
    pub smallest: f64,
    pub smallest_residual: f64,
    /// s = trace(M)/n, the mean diagonal (Hutchinson estimate over the probes).
    pub trace_mean: f64,
    /// SLQ estimates of the share of eigenvalues below 0 and below −`EIGEN_FLOOR`.
    pub negative_share: f64,
    pub negative_share_beyond_floor: f64,
    /// SLQ quadrature nodes and weights (the weights sum to 1 over all probes): the spectral
    /// density estimate Σ w_j δ(λ − θ_j).
    pub density_nodes: Vec<f64>,
    pub density_weights: Vec<f64>,
    /// Angle (degrees) between g and (M + μI)⁻¹g for each μ of the damping grid; null where
    /// M + μI is not positive definite (smallest eigenvalue + μ ≤ `INDEFINITE_FLOOR`).
    pub angles: Vec<Option<f64>>,
    /// CG relative residual of each solve (null where undefined): above `solve_tolerance` the
    /// angle is that of an unconverged CG iterate, which lies closer to g than the solution.
    pub angle_residuals: Vec<Option<f64>>,
    /// μ / λ_max and μ / s for each μ of the grid.
    pub mu_over_lambda_max: Vec<f64>,
    pub mu_over_trace_mean: Vec<f64>,
    /// Lanczos steps taken: extreme run, each further probe, solve run.
    pub extreme_steps: usize,
    pub probe_steps: usize,
    pub solve_steps: usize,
    pub products: usize,
    pub seconds: f64,
}

/// Which curvature matrix a product computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    Hessian,
    Fisher,
}

impl Matrix {
    pub fn name(self) -> &'static str {
        match self {
            Matrix::Hessian => "H",
            Matrix::Fisher => "F",
        }
    }
}

/// Progress messages (stage, products so far) for long measurements.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// A matrix-vector product with the matrix being measured.
type Apply<'a> = &'a mut dyn FnMut(&[f64], &mut [f64]);

/// Measures one matrix of `ops` against the gradient `g`.
pub fn measure_matrix(
    ops: &mut CurvatureProducts,
    which: Matrix,
    g: &[f64],
    options: &KrylovOptions,
    progress: Progress,
) -> Result<KrylovMatrix, String> {
    let t0 = Instant::now();
    let n = ops.weights();
    let first_product = ops.products;
    let grid = damping_grid();
    let mut apply = |v: &[f64], out: &mut [f64]| match which {
        Matrix::Hessian => ops.hessian_vector(v, out),
        Matrix::Fisher => ops.gauss_newton_vector(v, out),
    };
    let mut rng = Pcg64Mcg::seed_from_u64(options.seed);
    let mut rademacher = || -> Vec<f64> {
        (0..n)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect()
    };
    let name = which.name();
    let start = rademacher();
    let extremes = extremes(&mut apply, &start, options, name, progress)?;
    let density = density(
        &mut apply,
        &mut rademacher,
        &extremes,
        options,
        name,
        progress,
    )?;
    let lambda_min = density.lambda_min;
    let solves = damped_solves(&mut apply, g, &grid, lambda_min, options, name, progress);
    let lambda_max = extremes.ritz.values.last().copied().unwrap_or(0.0);
    let top = options.top.max(1);
    let ritz = &extremes.ritz;
    Ok(KrylovMatrix {
        largest: ritz.values.iter().rev().take(top).copied().collect(),
        largest_residuals: ritz.residuals.iter().rev().take(top).copied().collect(),
        smallest: ritz.values[0],
        smallest_residual: ritz.residuals[0],
        trace_mean: density.trace_mean,
        negative_share: density.share(|v| v < 0.0),
        negative_share_beyond_floor: density.share(|v| v < -EIGEN_FLOOR),
        mu_over_lambda_max: grid.iter().map(|m| m / lambda_max).collect(),
        mu_over_trace_mean: grid.iter().map(|m| m / density.trace_mean).collect(),
        density_nodes: density.nodes,
        density_weights: density.weights,
        angles: solves.angles,
        angle_residuals: solves.residuals,
        extreme_steps: ritz.values.len(),
        probe_steps: density.probe_steps,
        solve_steps: solves.steps,
        products: ops.products - first_product,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The extreme-eigenvalue run: its tridiagonal T (also the first SLQ probe) and Ritz values.
struct Extremes {
    t: Tridiagonal,
    ritz: Ritz,
}

/// Extreme eigenvalues: Lanczos from the random vector `start` until the top eigenvalues and
/// the smallest Ritz value have small residuals.
fn extremes(
    apply: Apply,
    start: &[f64],
    options: &KrylovOptions,
    name: &str,
    progress: Progress,
) -> Result<Extremes, String> {
    let top = options.top.max(1);
    let tol = options.extreme_tolerance;
    // Checks at geometrically spaced steps: each costs an eigendecomposition of T.
    let mut next_check = 2 * top + 2;
    let t = lanczos(
        apply,
        start,
        options.extreme_steps,
        &mut |t: &Tridiagonal| {
            if t.len().is_multiple_of(10) {
                progress(&format!(
                    "{name}: extreme eigenvalues, Lanczos step {}",
                    t.len()
                ));
            }
            if t.len() < next_check {
                return false;
            }
            next_check = (t.len() + 5).max(t.len() * 6 / 5);
            converged_extremes(t, top, tol)
        },
    );
    let ritz = t.ritz()?;
    Ok(Extremes { t, ritz })
}

/// The spectral density by stochastic Lanczos quadrature: a node per Ritz value of every
/// probe, weighted by its first eigenvector component squared.
struct Density {
    nodes: Vec<f64>,
    weights: Vec<f64>,
    trace_mean: f64,
    /// The smallest Ritz value of any probe, the extreme run's included.
    lambda_min: f64,
    /// Lanczos steps of each probe after the first.
    probe_steps: usize,
}

impl Density {
    /// The density's mass at the eigenvalues `pred` accepts.
    fn share(&self, pred: impl Fn(f64) -> bool) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .filter(|(v, _)| pred(**v))
            .map(|(_, w)| w)
            .sum()
    }
}

/// Stochastic Lanczos quadrature over `options.probes` probes, the extreme run being probe 0
/// and each further one starting from `rademacher()`.
fn density(
    apply: Apply,
    rademacher: &mut dyn FnMut() -> Vec<f64>,
    extremes: &Extremes,
    options: &KrylovOptions,
    name: &str,
    progress: Progress,
) -> Result<Density, String> {
    let probes = options.probes.max(1);
    let mut density = Density {
        nodes: Vec::new(),
        weights: Vec::new(),
        trace_mean: 0.0,
        lambda_min: extremes.ritz.values[0],
        probe_steps: 0,
    };
    let mut trace = 0.0;
    let mut add_probe = |density: &mut Density, t: &Tridiagonal, r: &Ritz| {
        trace += t.alpha[0];
        for (v, f) in r.values.iter().zip(&r.first) {
            density.nodes.push(*v);
            density.weights.push(f * f / probes as f64);
        }
    };
    add_probe(&mut density, &extremes.t, &extremes.ritz);
    for p in 1..probes {
        progress(&format!(
            "{name}: spectral density, probe {} of {probes}",
            p + 1
        ));
        let v = rademacher();
        let t = lanczos(apply, &v, options.probe_steps, &mut |_| false);
        let r = t.ritz()?;
        density.lambda_min = density.lambda_min.min(r.values[0]);
        density.probe_steps = t.len();
        add_probe(&mut density, &t, &r);
    }
    density.trace_mean = trace / probes as f64;
    Ok(density)
}

/// The angles between g and (M + μI)⁻¹g over the damping grid, and their solve residuals.
struct Solves {
    angles: Vec<Option<f64>>,
    residuals: Vec<Option<f64>>,
    steps: usize,
}

/// The damped solves: Lanczos from g, stopped when every defined shift has converged; a shift
/// with M + μI not safely positive definite has no angle.
fn damped_solves(
    apply: Apply,
    g: &[f64],
    grid: &[f64],
    lambda_min: f64,
    options: &KrylovOptions,
    name: &str,
    progress: Progress,
) -> Solves {
    let defined = |t: &Tridiagonal, mu: f64| {
        lambda_min + mu > INDEFINITE_FLOOR && t.shifted_positive(mu - INDEFINITE_FLOOR)
    };
    let stol = options.solve_tolerance;
    let solve = lanczos(apply, g, options.solve_steps, &mut |t: &Tridiagonal| {
        if t.len().is_multiple_of(10) {
            progress(&format!(
                "{name}: damped solves, Lanczos/CG step {}",
                t.len()
            ));
        }
        if t.residual == 0.0 {
            return true;
        }
        grid.iter().filter(|&&mu| defined(t, mu)).all(|&mu| {
            t.shifted_solve(mu)
                .is_some_and(|y| t.solve_residual(&y) <= stol)
        })
    });
    let mut angles = Vec::with_capacity(grid.len());
    let mut residuals = Vec::with_capacity(grid.len());
    let mut e1 = vec![0.0; solve.len()];
    if let Some(x) = e1.first_mut() {
        *x = 1.0;
    }
    for &mu in grid {
        let y = defined(&solve, mu)
            .then(|| solve.shifted_solve(mu))
            .flatten();
        angles.push(y.as_ref().map(|y| angle_deg(&e1, y)));
        residuals.push(y.as_ref().map(|y| solve.solve_residual(y)));
    }
    Solves {
        angles,
        residuals,
        steps: solve.len(),
    }
}

/// Whether the `top` largest Ritz values and the smallest one have residuals ≤ tol·|λ_max|.
fn converged_extremes(t: &Tridiagonal, top: usize, tol: f64) -> bool {
    let Ok(r) = t.ritz() else {
        return false;
    };
    let scale = r.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = r.values.len();
    let ok = |i: usize| r.residuals[i] <= tol * scale;
    (k.saturating_sub(top)..k).all(ok) && ok(0)
}

/// Both matrices at one network state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KrylovMeasurement {
    pub weights: usize,
    pub examples: usize,
    /// Mean cross-entropy over the curvature examples, and the norm of its gradient.
    pub loss: f64,
    pub full_gradient_norm: f64,
    pub minibatch_gradient_norm: f64,
    pub hessian: KrylovMatrix,
    pub fisher: KrylovMatrix,
    pub seconds: f64,
}

/// Measures H and F of `net` on the examples `x`/`labels`, with g the gradient on `xb`/`lb`.
pub fn measure(
    net: &Network<f64>,
    x: ArrayView2<f64>,
    labels: &[crate::data::Class],
    xb: ArrayView2<f64>,
    lb: &[crate::data::Class],
    options: &KrylovOptions,
    progress: Progress,
) -> Result<KrylovMeasurement, KrylovError> {
    let t0 = Instant::now();
    let mut ops = CurvatureProducts::new(net, x, labels)?;
    let g = CurvatureProducts::new(net, xb, lb)?.gradient;
    let norm = super::lanczos::norm;
    if norm(&g) == 0.0 {
        return Err(KrylovError::ZeroGradient);
    }
    let hessian = measure_matrix(&mut ops, Matrix::Hessian, &g, options, progress)
        .map_err(KrylovError::Numerical)?;
    let fisher = measure_matrix(&mut ops, Matrix::Fisher, &g, options, progress)
        .map_err(KrylovError::Numerical)?;
    Ok(KrylovMeasurement {
        weights: ops.weights(),
        examples: ops.examples(),
        loss: ops.loss,
        full_gradient_norm: norm(&ops.gradient),
        minibatch_gradient_norm: norm(&g),
        hessian,
        fisher,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Why a Krylov measurement failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KrylovError {
    #[error(transparent)]
    Products(#[from] ProductError),
    #[error("the minibatch gradient is zero: no direction to compare with")]
    ZeroGradient,
    #[error("{0}")]
    Numerical(String),
}
