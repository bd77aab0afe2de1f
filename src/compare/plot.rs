//! Plots (SVG and PNG): learning curves (per series the mean over seeds as a line and the
//! min–max band as a shaded area) and sensitivity plots (mean ± std as points with error bars),
//! on linear or log axes, with numeric or categorical x.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;

/// DejaVu Sans, embedded so that PNG text renders on machines without fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER_FONT.call_once(|| {
        // The embedded font is valid; if it were not, text would be missing, not wrong.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One point: the mean and the extent of the band or error bar around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line with a shaded band (learning curves).
    Band,
    /// Markers joined by a line, with error bars (sensitivity).
    Bars,
}

/// One curve to draw.
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// What a plot shows.
pub struct PlotSpec<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
    /// Names of the x positions 0, 1, … for a categorical axis.
    pub categories: Option<Vec<String>>,
    pub style: Style,
    pub series: Vec<Series>,
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

/// Writes `<stem>.svg` and `<stem>.png` into `dir`; returns both paths.
pub fn write_plot(
    dir: &Path,
    stem: &str,
    spec: &PlotSpec,
) -> Result<[std::path::PathBuf; 2], String> {
    register_font();
    let svg = dir.join(format!("{stem}.svg"));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), spec)
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    let png = dir.join(format!("{stem}.png"));
    write_png(&png, SIZE, |root| draw(root, spec))?;
    Ok([svg, png])
}

/// Draws with `draw` on a bitmap of `size` pixels and writes it to `path` as a PNG (atomically).
/// The pixels go through the `png` crate: plotters' own file encoder would build the whole
/// `image` crate into the binary for this one format.
pub(crate) fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut pixels = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(root.clone()).map_err(|e| at(&e))?;
        root.present().map_err(|e| at(&e))?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, size.0, size.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| at(&e))?;
    crate::durable::write_atomic(path, &bytes).map_err(|e| at(&e))
}

/// The data range of some values, padded; `log` keeps it positive. A log axis only gets
/// labels across a decade or more, so a narrower range stays linear (second value false).
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64, bool) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.1 * lo.abs() - 1e-9, lo + 0.1 * lo.abs() + 1e-9)
    } else {
        (0.1, 1.0)
    };
    if log && lo > 0.0 && hi / lo >= 10.0 {
        (lo / 1.1, hi * 1.1, true)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad, false)
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, spec: &PlotSpec) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let points = || spec.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1, log_x) = match &spec.categories {
        Some(c) => (-0.5, c.len().max(1) as f64 - 0.5, false),
        None if spec.log_x && points().all(|p| p.x > 0.0) => {
            // Rates are shown on a log axis even within one decade.
            let (lo, hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.x), hi.max(p.x))
            });
            (lo / 1.25, hi * 1.25, lo.is_finite())
        }
        None => range(points().map(|p| p.x), false),
    };
    let (y0, y1, log_y) = range(points().flat_map(|p| [p.low, p.high, p.mean]), spec.log_y);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! build {
        ($x:expr, $y:expr) => {{
            let chart = builder.build_cartesian_2d($x, $y).map_err(|e| err(&e))?;
            fill(chart, spec, log_x, log_y)?;
        }};
    }
    match (log_x, log_y) {
        (false, false) => build!(x0..x1, y0..y1),
        (true, false) => build!((x0..x1).log_scale(), y0..y1),
        (false, true) => build!(x0..x1, (y0..y1).log_scale()),
        (true, true) => build!((x0..x1).log_scale(), (y0..y1).log_scale()),
    }
    root.present().map_err(|e| err(&e))
}

fn draw_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    s: &Series,
    style: Style,
    color: RGBAColor,
    (log_x, log_y): (bool, bool),
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let ok = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let pts: Vec<&Point> = s
        .points
        .iter()
        .filter(|p| ok(p.x, log_x) && ok(p.low, log_y) && ok(p.high, log_y) && ok(p.mean, log_y))
        .collect();
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    match style {
        Style::Band if pts.len() > 1 => {
            let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.x, p.high)).collect();
            band.extend(pts.iter().rev().map(|p| (p.x, p.low)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))
                .map_err(e)?;
        }
        Style::Band => {}
        Style::Bars => {
            chart
                .draw_series(pts.iter().map(|p| {
                    PathElement::new(vec![(p.x, p.low), (p.x, p.high)], color.stroke_width(2))
                }))
                .map_err(e)?;
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p.x, p.mean), 4, color.filled())),
                )
                .map_err(e)?;
        }
    }
    chart
        .draw_series(LineSeries::new(
            pts.iter().map(|p| (p.x, p.mean)),
            color.stroke_width(2),
        ))
        .map_err(e)?
        .label(s.label.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// Axes, every series, and the legend.
fn fill<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    spec: &PlotSpec,
    log_x: bool,
    log_y: bool,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let categories = spec.categories.clone();
    let label_x = move |x: &f64| match &categories {
        Some(c) => {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                c.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => format!("{}", (x * 1e4).round() / 1e4),
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_label_formatter(&label_x);
    if let Some(c) = &spec.categories {
        mesh.x_labels(c.len() * 2 + 1);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    for (i, s) in spec.series.iter().enumerate() {
        let (r, g, b) = TABLEAU[i % TABLEAU.len()];
        draw_series(
            &mut chart,
            s,
            spec.style,
            RGBColor(r, g, b).to_rgba(),
            (log_x, log_y),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}
