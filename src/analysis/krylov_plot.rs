//! SVG plots of a Krylov report: the SLQ spectral densities of H and F, and the angle between
//! the gradient and the damped Newton / natural-gradient directions against μ; a column per
//! training point (epoch, or iteration), a line per variant and seed.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::krylov::KrylovMatrix;
use super::plot::colour;
use super::scale::{Entry, KrylovReport};

/// Below this magnitude the density's axis is linear: x = sign(λ)·log10(1 + |λ|/SYMLOG_LINEAR).
const SYMLOG_LINEAR: f64 = 1e-4;
/// Width of the Gaussian that smooths the quadrature nodes, in units of the (symlog) axis.
const SMOOTHING: f64 = 0.08;
/// Densities below this are drawn at it (log axis).
const DENSITY_FLOOR: f64 = 1e-4;

fn label(e: &Entry) -> String {
    format!("{} s{}", super::plot::label(&e.variant), e.seed)
}

/// The training point an entry belongs to (its column), and that column's caption.
fn key(e: &Entry) -> (u64, String) {
    match e.epoch {
        Some(epoch) => (epoch as u64, format!("epoch {epoch}")),
        None => (e.iteration, format!("iteration {}", e.iteration)),
    }
}

fn columns(report: &KrylovReport) -> Vec<(u64, String)> {
    let mut keys: Vec<(u64, String)> = report.entries.iter().map(key).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn symlog(l: f64) -> f64 {
    l.signum() * (1.0 + l.abs() / SYMLOG_LINEAR).log10()
}

type Pick = fn(&Entry) -> &KrylovMatrix;
const MATRICES: [(&str, Pick); 2] = [
    ("Hessian H", |e| &e.measurement.hessian),
    ("Fisher F", |e| &e.measurement.fisher),
];

/// Smoothed density of the quadrature nodes on the symlog axis at `xs`.
fn density(m: &KrylovMatrix, xs: &[f64]) -> Vec<f64> {
    let norm = 1.0 / (SMOOTHING * (2.0 * std::f64::consts::PI).sqrt());
    xs.iter()
        .map(|&x| {
            m.density_nodes
                .iter()
                .zip(&m.density_weights)
                .map(|(&l, &w)| {
                    let z = (x - symlog(l)) / SMOOTHING;
                    w * norm * (-0.5 * z * z).exp()
                })
                .sum::<f64>()
                .max(DENSITY_FLOOR)
        })
        .collect()
}

/// `densities.svg`: log10 of the smoothed SLQ density against the symlog eigenvalue axis.
pub fn densities(report: &KrylovReport, path: &Path) -> anyhow::Result<()> {
    crate::compare::plot::register_font();
    let cols = columns(report);
    if cols.is_empty() {
        return Ok(());
    }
    let (mut lo, mut hi) = (-1.0f64, 1.0f64);
    for e in &report.entries {
        for (_, pick) in MATRICES {
            for &l in &pick(e).density_nodes {
                lo = lo.min(symlog(l));
                hi = hi.max(symlog(l));
            }
        }
    }
    let (lo, hi) = (lo - 0.3, hi + 0.3);
    let xs: Vec<f64> = (0..=600)
        .map(|i| lo + (hi - lo) * i as f64 / 600.0)
        .collect();
    let root = SVGBackend::new(path, (460 * cols.len() as u32, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let areas = root.split_evenly((2, cols.len()));
    for (r, (name, pick)) in MATRICES.iter().enumerate() {
        for (c, (k, caption)) in cols.iter().enumerate() {
            let area = &areas[r * cols.len() + c];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name}, {caption}"), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(44)
                .build_cartesian_2d(lo..hi, DENSITY_FLOOR.log10()..2f64)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc(format!("sign(λ)·log10(1 + |λ|/{SYMLOG_LINEAR:e})"))
                .y_desc("log10 density")
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for e in report.entries.iter().filter(|e| key(e).0 == *k) {
                let d = density(pick(e), &xs);
                let points: Vec<(f64, f64)> =
                    xs.iter().zip(&d).map(|(&x, &y)| (x, y.log10())).collect();
                let col = colour(&e.variant);
                chart
                    .draw_series(LineSeries::new(points, col.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(label(e))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// `angles-krylov.svg`: angle between g and (M + μI)⁻¹g against log10 μ; filled points are
/// converged CG solves, hollow ones unconverged iterates (their angle is a lower bound in
/// practice: CG iterates start at g).
pub fn angles(report: &KrylovReport, path: &Path) -> anyhow::Result<()> {
    crate::compare::plot::register_font();
    let cols = columns(report);
    if cols.is_empty() {
        return Ok(());
    }
    let mus: Vec<f64> = report.damping.iter().map(|m| m.log10()).collect();
    let (x0, x1) = (mus[0], mus[mus.len() - 1]);
    let tol = report.options.solve_tolerance;
    let root = SVGBackend::new(path, (460 * cols.len() as u32, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let areas = root.split_evenly((2, cols.len()));
    let titles = ["g vs (H+μI)⁻¹g", "g vs (F+μI)⁻¹g"];
    for (r, (_, pick)) in MATRICES.iter().enumerate() {
        for (c, (k, caption)) in cols.iter().enumerate() {
            let area = &areas[r * cols.len() + c];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{}, {caption}", titles[r]), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(44)
                .build_cartesian_2d(x0..x1, 0f64..90f64)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("log10 μ")
                .y_desc("angle (degrees)")
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for e in report.entries.iter().filter(|e| key(e).0 == *k) {
                let m = pick(e);
                let col = colour(&e.variant);
                let points: Vec<(f64, f64, bool)> = mus
                    .iter()
                    .zip(m.angles.iter().zip(&m.angle_residuals))
                    .filter_map(|(&x, (a, res))| {
                        a.map(|a| (x, a, res.is_some_and(|res| res <= tol)))
                    })
                    .collect();
                chart
                    .draw_series(points.iter().map(|&(x, a, ok)| {
                        let style = if ok {
                            col.filled()
                        } else {
                            col.stroke_width(1)
                        };
                        Circle::new((x, a), 3, style)
                    }))
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .draw_series(LineSeries::new(
                        points.iter().map(|&(x, a, _)| (x, a)),
                        col.stroke_width(2),
                    ))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(label(e))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
