//! SVG plots of a diagnose report: eigenvalue spectra per variant and checkpoint, and the angle
//! between the gradient and the damped Newton / natural-gradient directions against μ.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::diagnose::{MatrixReport, Report};
use crate::preset::Variant;

/// Lines of a name that is no variant of ours (a report another trainer wrote) are grey.
const FOREIGN_COLOUR: RGBColor = RGBColor(110, 110, 110);

/// A variant's line colour in these plots, from the variant's name in a report.
pub(super) fn colour(variant: &str) -> RGBColor {
    Variant::from_name(variant).map_or(FOREIGN_COLOUR, |v| {
        let (r, g, b) = v.colour();
        RGBColor(r, g, b)
    })
}

/// A variant's legend label; a foreign name is shown as it is.
pub(super) fn label(variant: &str) -> &str {
    Variant::from_name(variant).map_or(variant, |v| v.label())
}

/// Iterations measured by any variant, ascending.
fn iterations(report: &Report) -> Vec<u64> {
    let mut at: Vec<u64> = report
        .variants
        .iter()
        .flat_map(|v| v.checkpoints.iter().map(|c| c.iteration))
        .collect();
    at.sort_unstable();
    at.dedup();
    at
}

type Pick = fn(&super::diagnose::Checkpoint) -> &MatrixReport;
const MATRICES: [(&str, Pick); 2] = [("Hessian H", |c| &c.hessian), ("Fisher F", |c| &c.fisher)];

/// `spectra.svg`: log10 of the eigenvalues above the floor, largest first, against their rank
/// (as a fraction of the weight count); a row per matrix, a column per checkpoint.
pub fn spectra(report: &Report, path: &Path) -> anyhow::Result<()> {
    crate::compare::plot::register_font();
    let at = iterations(report);
    if at.is_empty() {
        return Ok(());
    }
    let floor = report.eigen_floor;
    let root = SVGBackend::new(path, (420 * at.len() as u32, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let rows = root.split_evenly((2, at.len()));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in &report.variants {
        for c in &v.checkpoints {
            for (_, pick) in MATRICES {
                for &l in pick(c).eigenvalues.iter().filter(|&&l| l > floor) {
                    lo = lo.min(l.log10());
                    hi = hi.max(l.log10());
                }
            }
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (floor.log10(), 0.0);
    }
    for (r, (name, pick)) in MATRICES.iter().enumerate() {
        for (col, &it) in at.iter().enumerate() {
            let area = &rows[r * at.len() + col];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{name}, iteration {it}"), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(32)
                .y_label_area_size(44)
                .build_cartesian_2d(0f64..1f64, lo.floor()..hi.ceil())
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("rank / #weights")
                .y_desc(format!("log10 eigenvalue (> {floor:e})"))
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for v in &report.variants {
                let Some(c) = v.checkpoints.iter().find(|c| c.iteration == it) else {
                    continue;
                };
                let m = pick(c);
                let n = m.eigenvalues.len().max(2) as f64 - 1.0;
                let points: Vec<(f64, f64)> = m
                    .eigenvalues
                    .iter()
                    .rev()
                    .enumerate()
                    .filter(|(_, &l)| l > floor)
                    .map(|(i, &l)| (i as f64 / n, l.log10()))
                    .collect();
                let c = colour(&v.variant);
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(label(&v.variant))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
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

/// `angles.svg`: the angle between g and (M + μI)⁻¹g against log10 μ (gaps where M + μI is
/// indefinite); a row per matrix (Newton, natural gradient), a column per checkpoint.
pub fn angles(report: &Report, path: &Path) -> anyhow::Result<()> {
    crate::compare::plot::register_font();
    let at = iterations(report);
    if at.is_empty() {
        return Ok(());
    }
    let mus: Vec<f64> = report.damping.iter().map(|m| m.log10()).collect();
    let (x0, x1) = (mus[0], mus[mus.len() - 1]);
    let root = SVGBackend::new(path, (420 * at.len() as u32, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let rows = root.split_evenly((2, at.len()));
    let titles = ["g vs (H+μI)⁻¹g", "g vs (F+μI)⁻¹g"];
    for (r, (_, pick)) in MATRICES.iter().enumerate() {
        for (col, &it) in at.iter().enumerate() {
            let area = &rows[r * at.len() + col];
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{}, iteration {it}", titles[r]), ("sans-serif", 16))
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
            for v in &report.variants {
                let Some(c) = v.checkpoints.iter().find(|c| c.iteration == it) else {
                    continue;
                };
                let colour = colour(&v.variant);
                let points: Vec<(f64, f64)> = mus
                    .iter()
                    .zip(&pick(c).angles)
                    .filter_map(|(&m, a)| a.map(|a| (m, a)))
                    .collect();
                chart
                    .draw_series(PointSeries::of_element(
                        points.clone(),
                        3,
                        colour.filled(),
                        &|p, s, st| Circle::new(p, s, st),
                    ))
                    .map_err(|e| anyhow!("{e}"))?;
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(label(&v.variant))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_abg_is_labelled_alpha_beta_gamma() {
        for name in crate::preset::VARIANTS {
            assert_eq!(
                label(name) == "α β γ",
                name == "abg",
                "{name}: {}",
                label(name)
            );
        }
        assert_eq!(label("bn"), "batch norm");
        assert_eq!(label("ln"), "layer norm");
        assert_eq!(label("kfac"), "kfac");
        assert_eq!(colour("kfac"), FOREIGN_COLOUR);
        assert_ne!(colour("bn"), colour("abg"));
    }
}
