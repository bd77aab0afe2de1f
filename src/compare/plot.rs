//! Learning-curve plots (SVG and PNG): per variant, the mean over seeds as a line and the
//! min–max band as a shaded area.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::aggregate::CurvePoint;

/// DejaVu Sans, embedded so that PNG text renders on machines without fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER_FONT.call_once(|| {
        // The embedded font is valid; if it were not, text would be missing, not wrong.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One curve to draw.
pub struct Series<'a> {
    pub label: &'a str,
    pub points: &'a [CurvePoint],
}

/// What a plot shows.
pub struct PlotSpec<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub log_y: bool,
    pub series: Vec<Series<'a>>,
}

/// Distinct, print-safe line colours (Tableau 10).
const TABLEAU: [(u8, u8, u8); 6] = [
    (214, 39, 40),
    (31, 119, 180),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (140, 86, 75),
];

/// Plot size in pixels.
const SIZE: (u32, u32) = (900, 560);

/// Writes `<stem>.svg` and `<stem>.png` into `dir`.
pub fn write_plot(dir: &Path, stem: &str, spec: &PlotSpec) -> Result<(), String> {
    register_font();
    let svg = dir.join(format!("{stem}.svg"));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), spec)
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    let png = dir.join(format!("{stem}.png"));
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), spec)
        .map_err(|e| format!("{}: {e}", png.display()))
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, spec: &PlotSpec) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let points = || spec.series.iter().flat_map(|s| s.points.iter());
    let max_epoch = points().map(|p| p.epoch).max().unwrap_or(1).max(1) as f64;
    let finite = |v: f64| v.is_finite() && (!spec.log_y || v > 0.0);
    let lo = points()
        .map(|p| p.min)
        .filter(|v| finite(*v))
        .fold(f64::INFINITY, f64::min);
    let hi = points()
        .map(|p| p.max)
        .filter(|v| finite(*v))
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo * 0.9, lo * 1.1 + 1e-9)
    } else {
        (0.1, 1.0)
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70);
    // A log axis only gets labels across a decade or more; a narrower range stays linear.
    if spec.log_y && lo > 0.0 && hi / lo >= 10.0 {
        let chart = builder
            .build_cartesian_2d(1f64..max_epoch, (lo * 0.9..hi * 1.1).log_scale())
            .map_err(|e| err(&e))?;
        fill(chart, spec, true)?;
    } else {
        let pad = (hi - lo) * 0.05;
        let chart = builder
            .build_cartesian_2d(1f64..max_epoch, (lo - pad).max(0.0)..hi + pad)
            .map_err(|e| err(&e))?;
        fill(chart, spec, false)?;
    }
    root.present().map_err(|e| err(&e))
}

fn draw_series<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    s: &Series,
    color: RGBAColor,
    log_y: bool,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64>,
{
    let keep = |v: f64| v.is_finite() && (!log_y || v > 0.0);
    let pts: Vec<&CurvePoint> = s
        .points
        .iter()
        .filter(|p| keep(p.min) && keep(p.max) && keep(p.mean))
        .collect();
    if pts.len() > 1 {
        let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.epoch as f64, p.max)).collect();
        band.extend(pts.iter().rev().map(|p| (p.epoch as f64, p.min)));
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.18).filled(),
            )))
            .map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.epoch as f64, p.mean)),
            color.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(s.label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// Axes, one band and line per series, and the legend.
fn fill<'a, DB, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    spec: &PlotSpec,
    log_y: bool,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(spec.y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in spec.series.iter().enumerate() {
        let (r, g, b) = TABLEAU[i % TABLEAU.len()];
        draw_series(&mut chart, s, RGBColor(r, g, b).to_rgba(), log_y)?;
    }
    legend(&mut chart)
}

fn legend<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}
