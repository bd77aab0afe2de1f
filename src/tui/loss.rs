//! The loss panel: block-character sparklines over the whole run, or a larger line chart
//! (`c`), optionally on a log scale (`l`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::app::{App, ChartMarker};
use super::view::{num, panel};

/// Sparkline levels, lowest first (block characters: no Braille font needed).
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Width of the label and latest value before a sparkline.
const LABEL_WIDTH: usize = 16;

const TRAIN: Color = Color::Cyan;
const VALID: Color = Color::Yellow;
const ERROR: Color = Color::Magenta;

/// Rows of the sparkline view: training and validation loss, and the error of classifiers.
pub fn sparkline_rows(app: &App) -> u16 {
    if app.info.as_ref().is_some_and(|i| i.classify) {
        3
    } else {
        2
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let scale = if app.log_scale { ", log scale" } else { "" };
    if app.chart {
        chart(frame, area, app, scale);
    } else {
        sparklines(frame, area, app, scale);
    }
}

fn sparklines(frame: &mut Frame, area: Rect, app: &App, scale: &str) {
    let block = panel(format!("Loss{scale}"));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = (inner.width as usize).saturating_sub(LABEL_WIDTH);
    // The x axis is the whole run: iteration 0 on the left, the last one on the right.
    let total = app.total_iterations().unwrap_or(0).max(app.iteration());
    let valid: Vec<(u64, f64)> = app
        .epochs
        .iter()
        .map(|e| (e.iteration, e.validation_loss))
        .collect();
    let last = |v: &[(u64, f64)], decimals| v.last().map_or("-".into(), |p| num(p.1, decimals));
    let mut lines = vec![
        spark_line(
            "train",
            &app.train_loss,
            last(&app.train_loss, 4),
            total,
            width,
            app.log_scale,
            TRAIN,
        ),
        spark_line(
            "valid",
            &valid,
            last(&valid, 4),
            total,
            width,
            app.log_scale,
            VALID,
        ),
    ];
    if sparkline_rows(app) == 3 {
        let error: Vec<(u64, f64)> = app
            .epochs
            .iter()
            .map(|e| (e.iteration, e.validation_error.unwrap_or(f64::NAN)))
            .collect();
        let value = error
            .last()
            .map_or("-".to_string(), |e| format!("{}%", num(e.1, 2)));
        lines.push(spark_line(
            "error",
            &error,
            value,
            total,
            width,
            app.log_scale,
            ERROR,
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn spark_line(
    label: &str,
    points: &[(u64, f64)],
    value: String,
    total: u64,
    width: usize,
    log: bool,
    colour: Color,
) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<6}"), Style::default().fg(colour)),
        Span::raw(format!("{value:>9} ")),
        Span::styled(
            sparkline(&by_iteration(points, total, width), log),
            Style::default().fg(colour),
        ),
    ])
}

/// Places (iteration, value) points into `width` columns spanning iterations 1..=`total`:
/// each column holds the mean of its points, a column without points repeats the one before,
/// and columns before the first point or after the last are left out (`None` / cut).
pub fn by_iteration(points: &[(u64, f64)], total: u64, width: usize) -> Vec<Option<f64>> {
    if width == 0 || points.is_empty() {
        return Vec::new();
    }
    let total = total
        .max(points.iter().map(|p| p.0).max().unwrap_or(1))
        .max(1);
    let mut sums = vec![(0.0, 0usize); width];
    for &(it, v) in points {
        let b = ((it.saturating_sub(1)) as u128 * width as u128 / total as u128) as usize;
        let s = &mut sums[b.min(width - 1)];
        s.0 += v;
        s.1 += 1;
    }
    let Some(end) = sums.iter().rposition(|s| s.1 > 0) else {
        return Vec::new();
    };
    let mut previous = None;
    sums[..=end]
        .iter()
        .map(|&(sum, n)| {
            if n > 0 {
                previous = Some(sum / n as f64);
            }
            previous
        })
        .collect()
}

/// Draws columns as bars between their smallest and largest value. Empty columns are blank;
/// non-finite values (and non-positive ones on a log scale) are drawn as `!`.
pub fn sparkline(columns: &[Option<f64>], log: bool) -> String {
    let y = |v: f64| {
        if !log {
            v
        } else if v > 0.0 {
            v.log10()
        } else {
            f64::NAN
        }
    };
    let ys: Vec<Option<f64>> = columns.iter().map(|c| c.map(y)).collect();
    let (lo, hi) = ys
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    ys.iter()
        .map(|c| match c {
            None => ' ',
            Some(v) if !v.is_finite() => '!',
            Some(_) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => BARS[3],
            Some(v) => {
                let level = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round() as usize;
                BARS[level.min(BARS.len() - 1)]
            }
        })
        .collect()
}

fn chart(frame: &mut Frame, area: Rect, app: &App, scale: &str) {
    let y = |v: f64| if app.log_scale { v.log10() } else { v };
    let keep = |&(_, v): &(f64, f64)| v.is_finite();
    let train: Vec<(f64, f64)> = app
        .train_loss
        .iter()
        .map(|&(it, l)| (it as f64, y(l)))
        .filter(keep)
        .collect();
    let valid: Vec<(f64, f64)> = app
        .epochs
        .iter()
        .map(|e| (e.iteration as f64, y(e.validation_loss)))
        .filter(keep)
        .collect();
    let x_max = app
        .total_iterations()
        .unwrap_or(1)
        .max(app.iteration())
        .max(1) as f64;
    let (lo, hi) = train
        .iter()
        .chain(valid.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, hi + 0.5)
    } else {
        (0.0, 1.0)
    };
    let marker = match app.marker {
        ChartMarker::Braille => Marker::Braille,
        ChartMarker::HalfBlock => Marker::HalfBlock,
    };
    let label = |v: f64| {
        if app.log_scale {
            format!("{:.3}", 10f64.powf(v))
        } else {
            format!("{v:.3}")
        }
    };
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(marker)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(TRAIN))
            .data(&train),
        Dataset::default()
            .name("valid")
            .marker(marker)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(VALID))
            .data(&valid),
    ];
    let chart = Chart::new(datasets)
        .block(panel(format!("Loss by iteration{scale}  (c: sparklines)")))
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(vec![Span::raw("0"), Span::raw(format!("{x_max:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels(vec![Span::raw(label(lo)), Span::raw(label(hi))]),
        );
    frame.render_widget(chart, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(values: &[f64], log: bool) -> String {
        let cols: Vec<Option<f64>> = values.iter().map(|&v| Some(v)).collect();
        sparkline(&cols, log)
    }

    #[test]
    fn sparkline_spans_the_range_and_marks_nan() {
        assert_eq!(line(&[1.0, 2.0, 3.0], false), "▁▅█");
        assert_eq!(line(&[1.0, f64::NAN, 3.0], false), "▁!█");
        assert_eq!(line(&[2.0, 2.0], false), "▄▄");
        assert_eq!(line(&[1.0, 10.0, 100.0], true), "▁▅█");
        assert_eq!(sparkline(&[None, Some(1.0), Some(2.0)], false), " ▁█");
    }

    #[test]
    fn points_are_placed_by_iteration_over_the_whole_run() {
        // Two evaluations of a 100-iteration run on 10 columns: at iterations 50 and 100.
        let cols = by_iteration(&[(50, 2.0), (100, 1.0)], 100, 10);
        assert_eq!(cols.len(), 10);
        assert_eq!(cols[0], None);
        assert_eq!(cols[4], Some(2.0));
        assert_eq!(cols[8], Some(2.0));
        assert_eq!(cols[9], Some(1.0));
        // Half-way through the run, only half the columns are drawn.
        assert_eq!(by_iteration(&[(10, 1.0), (50, 3.0)], 100, 10).len(), 5);
        // Columns average their points.
        assert_eq!(by_iteration(&[(1, 1.0), (2, 3.0)], 2, 1), vec![Some(2.0)]);
    }
}
