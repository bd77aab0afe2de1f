//! Curvature diagnostics (docs/method.md): the Hessian and Fisher matrices of small
//! classifiers with respect to their weights, their spectra, and the angles between the
//! gradient and the damped Newton and natural-gradient directions.
//!
//! Every matrix here is with respect to the **weights only** (biases are held fixed), as in the
//! authors' `ltmlp_hessian.m`, and is computed in f64.

pub mod angles;
pub mod command;
pub mod diagnose;
pub mod fisher;
pub mod gradient;
pub mod hessian;
pub mod krylov;
pub mod krylov_plot;
pub mod lanczos;
pub mod plot;
pub mod products;
pub mod quick;
pub mod scale;
pub mod spectrum;

pub use angles::{angle_deg, damped_angles, damped_direction, damping_grid, INDEFINITE_FLOOR};
pub use fisher::fisher;
pub use gradient::{weight_count, WeightGradient};
pub use hessian::{asymmetry, hessian_fd, symmetrise, DEFAULT_STEP};
pub use krylov::{KrylovMatrix, KrylovMeasurement, KrylovOptions};
pub use products::CurvatureProducts;
pub use quick::{quick_curvature, QuickCurvature, Refusal, QUICK_MAX_EXAMPLES, QUICK_MAX_WEIGHTS};
pub use spectrum::{eigen, off_diagonal_ratio, Eigen, SpectrumStats, EIGEN_FLOOR};
