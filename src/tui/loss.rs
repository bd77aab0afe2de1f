//! The loss panel: the clean training, validation and test losses of every epoch and the
//! minibatch loss as a faint smoothed line, all on one y scale; block-character sparklines or a
//! larger line chart (`c`), the whole run or the last epochs (`w`), optionally on a log scale
//! (`l`), with epoch ticks on the x axis.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::app::{App, ChartMarker, LossWindow, RECENT_EPOCHS};
use super::view::{num, panel};

/// Sparkline levels, lowest first (block characters: no Braille font needed).
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Width of a series label before its figures.
const NAME_WIDTH: usize = 6;
/// Width of the latest loss.
const LOSS_WIDTH: usize = 8;
/// Width of the latest error (classifiers, when there is room).
const ERROR_WIDTH: usize = 8;
/// Below this inner width the error figures are left out of the sparkline rows.
const ERRORS_FROM: usize = 50;
/// Fewest columns between two epoch labels on the x axis.
const TICK_SPACING: usize = 6;

/// One line of the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// The minibatch loss (with input noise), smoothed: faint, as it is noisy.
    Batch,
    Train,
    Valid,
    Test,
}

impl Series {
    /// Display order, top to bottom.
    pub const ALL: [Series; 4] = [Series::Batch, Series::Train, Series::Valid, Series::Test];
    /// The order in which rows are given up when the panel is short: last first.
    const PRIORITY: [Series; 4] = [Series::Valid, Series::Train, Series::Batch, Series::Test];

    pub fn name(self) -> &'static str {
        match self {
            Series::Batch => "batch",
            Series::Train => "train",
            Series::Valid => "valid",
            Series::Test => "test",
        }
    }

    pub fn style(self) -> Style {
        match self {
            Series::Batch => Style::default()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::DIM),
            Series::Train => Style::default().fg(Color::Cyan),
            Series::Valid => Style::default().fg(Color::Yellow),
            Series::Test => Style::default().fg(Color::Magenta),
        }
    }
}

/// Rows the sparkline view would like: the series and the epoch ticks.
pub fn sparkline_rows(_app: &App) -> u16 {
    Series::ALL.len() as u16 + 1
}

/// Debiased exponential moving average (as TensorBoard's smoothing): with s the factor,
/// m ← s·m + (1 − s)·v and the value shown is m / (1 − sᵏ) after k points, so the line
/// starts at the first value instead of at zero. Non-finite values pass through unsmoothed.
pub fn smooth(points: &[(u64, f64)], s: f64) -> Vec<(u64, f64)> {
    let mut m = 0.0;
    let mut weight = 1.0;
    points
        .iter()
        .map(|&(it, v)| {
            if !v.is_finite() {
                return (it, v);
            }
            m = s * m + (1.0 - s) * v;
            weight *= s;
            (it, if weight < 1.0 { m / (1.0 - weight) } else { v })
        })
        .collect()
}

/// The iterations the panel spans: (first, last), first excluded. The whole run spans what
/// has been trained so far.
pub fn window(app: &App) -> (u64, u64) {
    let latest = app
        .iteration()
        .max(app.epochs.last().map_or(0, |e| e.iteration));
    match app.window {
        // What has been trained, not what is planned: a run planned for 100,000 epochs would
        // otherwise draw its first hundreds in one column. The title marks the planned end.
        LossWindow::Whole => (0, latest.max(1)),
        LossWindow::Recent => {
            let per_epoch = app.info.as_ref().map_or(1, |i| i.iterations_per_epoch) as u64;
            let span = (RECENT_EPOCHS as u64 * per_epoch.max(1)).max(1);
            let end = latest.max(span);
            (end - span, end)
        }
    }
}

/// The points of one series inside the window.
fn points(app: &App, series: Series, (start, end): (u64, u64)) -> Vec<(u64, f64)> {
    let inside = |&(it, _): &(u64, f64)| it > start && it <= end;
    match series {
        Series::Batch => smooth(&app.train_loss, app.smoothing_factor())
            .into_iter()
            .filter(inside)
            .collect(),
        _ => app
            .epochs
            .iter()
            .map(|e| {
                let v = match series {
                    Series::Train => e.train_loss,
                    Series::Valid => e.validation_loss,
                    _ => e.test_loss,
                };
                (e.iteration, v)
            })
            .filter(inside)
            .collect(),
    }
}

/// The latest error of a series, for classifiers.
fn latest_error(app: &App, series: Series) -> Option<f64> {
    let e = app.epochs.last()?;
    match series {
        Series::Batch => None,
        Series::Train => e.train_error,
        Series::Valid => e.validation_error,
        Series::Test => e.test_error,
    }
}

/// The y value drawn for a loss (log10 on a log scale; NaN when it cannot be drawn).
fn y(v: f64, log: bool) -> f64 {
    if !log {
        v
    } else if v > 0.0 {
        v.log10()
    } else {
        f64::NAN
    }
}

/// The one scale shared by every series: (low, high) in drawn units.
fn shared_scale(series: &[Vec<(u64, f64)>], log: bool) -> Option<(f64, f64)> {
    let (lo, hi) = series
        .iter()
        .flatten()
        .map(|&(_, v)| y(v, log))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    lo.is_finite().then_some((lo, hi))
}

/// A drawn value back as a loss, for labels.
fn label_value(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn window_label(app: &App) -> String {
    match app.window {
        LossWindow::Whole => match (&app.info, app.epochs.last()) {
            (Some(info), Some(last)) if last.epoch < info.epochs => {
                format!("whole run, {} of {} epochs", last.epoch, info.epochs)
            }
            _ => "whole run".into(),
        },
        LossWindow::Recent => format!("last {RECENT_EPOCHS} epochs"),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    if app.chart {
        chart(frame, area, app);
    } else {
        sparklines(frame, area, app);
    }
}

/// A regression run's losses are mean squared errors, which the panel says.
fn regression(app: &App) -> bool {
    app.info.as_ref().map(|i| i.task()) == Some(crate::preset::Task::Regress)
}

fn sparklines(frame: &mut Frame, area: Rect, app: &App) {
    let span = window(app);
    let log = app.log_scale;
    let data: Vec<Vec<(u64, f64)>> = Series::ALL.iter().map(|&s| points(app, s, span)).collect();
    let scale = shared_scale(&data, log);
    let scale_text = scale.map_or(String::new(), |(lo, hi)| {
        format!(", scale {}–{}", label_value(lo, log), label_value(hi, log))
    });
    let block = panel(format!(
        "Loss{} · {}{scale_text}{}",
        if regression(app) { " (MSE)" } else { "" },
        window_label(app),
        if log { ", log" } else { "" }
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    let errors =
        app.info.as_ref().is_some_and(|i| i.classify) && inner.width as usize >= ERRORS_FROM;
    let label_width = NAME_WIDTH + LOSS_WIDTH + if errors { ERROR_WIDTH } else { 0 } + 1;
    let width = (inner.width as usize).saturating_sub(label_width);
    // Which rows fit: the series by priority, the tick row after the first two.
    let mut shown: Vec<Series> = Series::PRIORITY.iter().copied().take(rows.min(2)).collect();
    let ticks = rows >= 3;
    let more = rows.saturating_sub(shown.len() + usize::from(ticks));
    shown.extend(Series::PRIORITY.iter().skip(2).take(more));
    let mut lines = Vec::new();
    for (i, &s) in Series::ALL.iter().enumerate() {
        if !shown.contains(&s) {
            continue;
        }
        let value = data[i].last().map_or("-".into(), |p| num(p.1, 4));
        let mut spans = vec![
            Span::styled(format!("{:<NAME_WIDTH$}", s.name()), s.style()),
            Span::raw(format!("{value:>LOSS_WIDTH$}")),
        ];
        if errors {
            let e = latest_error(app, s).map_or(String::new(), |e| format!("{}%", num(e, 2)));
            spans.push(Span::raw(format!("{e:>ERROR_WIDTH$}")));
        }
        spans.push(Span::raw(" "));
        let columns = by_iteration(&data[i], span, width);
        spans.push(Span::styled(sparkline(&columns, log, scale), s.style()));
        lines.push(Line::from(spans));
    }
    if ticks {
        let per_epoch = app.info.as_ref().map_or(0, |i| i.iterations_per_epoch) as u64;
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:>w$} ", "epoch", w = label_width - 1),
                Style::default().fg(Color::DarkGray),
            ),
            Span::styled(
                epoch_ticks(span, per_epoch, width),
                Style::default().fg(Color::DarkGray),
            ),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The column of an iteration in a row of `width` columns spanning `(start, end]`.
fn column(it: u64, (start, end): (u64, u64), width: usize) -> usize {
    let span = end.saturating_sub(start).max(1);
    let offset = it.saturating_sub(start + 1);
    ((offset as u128 * width as u128 / span as u128) as usize).min(width.saturating_sub(1))
}

/// Places (iteration, value) points into `width` columns spanning iterations `(start, end]`:
/// each column holds the mean of its points, a column without points repeats the one before,
/// and columns before the first point or after the last are left out (`None` / cut).
pub fn by_iteration(points: &[(u64, f64)], span: (u64, u64), width: usize) -> Vec<Option<f64>> {
    if width == 0 || points.is_empty() {
        return Vec::new();
    }
    let end = span.1.max(points.iter().map(|p| p.0).max().unwrap_or(1));
    let span = (span.0, end);
    let mut sums = vec![(0.0, 0usize); width];
    for &(it, v) in points.iter().filter(|p| p.0 > span.0) {
        let s = &mut sums[column(it, span, width)];
        s.0 += v;
        s.1 += 1;
    }
    let Some(last) = sums.iter().rposition(|s| s.1 > 0) else {
        return Vec::new();
    };
    let mut previous = None;
    sums[..=last]
        .iter()
        .map(|&(sum, n)| {
            if n > 0 {
                previous = Some(sum / n as f64);
            }
            previous
        })
        .collect()
}

/// The x axis of the sparklines: each epoch's number at the column where it ends, as many as
/// fit [`TICK_SPACING`] apart, on a row of `width` columns.
pub fn epoch_ticks(span: (u64, u64), per_epoch: u64, width: usize) -> String {
    let mut row = vec![' '; width];
    if per_epoch == 0 || width == 0 {
        return String::new();
    }
    let first = span.0 / per_epoch + 1;
    let last = span.1 / per_epoch;
    let epochs = last.saturating_sub(first) + 1;
    // Label every k-th epoch, with k a 1-2-5 step wide enough for the labels.
    let label_len = last.to_string().len() + 1;
    let room = (width / label_len.max(TICK_SPACING)).max(1) as u64;
    let step = [1u64, 2, 5]
        .iter()
        .flat_map(|&m| (0..6).map(move |p| m * 10u64.pow(p)))
        .filter(|&k| epochs.div_ceil(k) <= room)
        .min()
        .unwrap_or(epochs.max(1));
    let mut free_from = 0;
    for e in first..=last {
        let c = column(e * per_epoch, span, width);
        // A tick at every epoch while they stay apart, else only at the labelled ones.
        if epochs as usize * 2 <= width || e % step == 0 {
            row[c] = '╵';
        }
        if e % step != 0 {
            continue;
        }
        let text = e.to_string();
        let start = (c + 1).saturating_sub(text.len());
        if start < free_from || start + text.len() > width {
            continue;
        }
        for (k, ch) in text.chars().enumerate() {
            row[start + k] = ch;
        }
        free_from = start + text.len() + 1;
    }
    row.into_iter().collect::<String>().trim_end().to_string()
}

/// Draws columns as bars on the scale `(low, high)` (in drawn units; each line's own range when
/// None). Empty columns are blank; non-finite values (and non-positive ones on a log scale) are
/// drawn as `!`.
pub fn sparkline(columns: &[Option<f64>], log: bool, scale: Option<(f64, f64)>) -> String {
    let ys: Vec<Option<f64>> = columns.iter().map(|c| c.map(|v| y(v, log))).collect();
    let (lo, hi) = scale.unwrap_or_else(|| {
        ys.iter()
            .flatten()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            })
    });
    ys.iter()
        .map(|c| match c {
            None => ' ',
            Some(v) if !v.is_finite() => '!',
            Some(_) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => BARS[3],
            Some(v) => {
                let level = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round();
                BARS[(level.max(0.0) as usize).min(BARS.len() - 1)]
            }
        })
        .collect()
}

fn chart(frame: &mut Frame, area: Rect, app: &App) {
    let span = window(app);
    let log = app.log_scale;
    let per_epoch = app
        .info
        .as_ref()
        .map_or(1, |i| i.iterations_per_epoch)
        .max(1) as f64;
    let data: Vec<Vec<(u64, f64)>> = Series::ALL.iter().map(|&s| points(app, s, span)).collect();
    let (lo, hi) = match shared_scale(&data, log) {
        Some((lo, hi)) if hi > lo => (lo, hi),
        Some((lo, hi)) => (lo - 0.5, hi + 0.5),
        None => (0.0, 1.0),
    };
    // x in epochs, so that the axis labels are epoch numbers.
    let drawn: Vec<Vec<(f64, f64)>> = data
        .iter()
        .map(|p| {
            p.iter()
                .map(|&(it, v)| (it as f64 / per_epoch, y(v, log)))
                .filter(|p| p.1.is_finite())
                .collect()
        })
        .collect();
    let marker = match app.marker {
        ChartMarker::Braille => Marker::Braille,
        ChartMarker::HalfBlock => Marker::HalfBlock,
    };
    let datasets = Series::ALL
        .iter()
        .zip(&drawn)
        .map(|(&s, points)| {
            Dataset::default()
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(s.style())
                .data(points)
        })
        .collect();
    // The legend goes in the title: ratatui's legend box would cover the curves.
    // The legend first, so that a narrow title still shows it; then what the axes are.
    let mut title = vec![Span::raw(" ")];
    for s in Series::ALL {
        title.push(Span::styled(format!("━ {} ", s.name()), s.style()));
    }
    let regress = regression(app);
    title.push(Span::raw(format!(
        "· x: epoch, {}{}{} ",
        window_label(app),
        if regress { ", y: MSE" } else { "" },
        if log { ", log y" } else { "" }
    )));
    let (x0, x1) = (span.0 as f64 / per_epoch, span.1 as f64 / per_epoch);
    let x_labels = axis_labels(x0, x1, area.width.saturating_sub(10) as usize);
    let y_labels = vec![
        Span::raw(label_value(lo, log)),
        Span::raw(label_value((lo + hi) / 2.0, log)),
        Span::raw(label_value(hi, log)),
    ];
    let chart = Chart::new(datasets)
        .block(
            ratatui::widgets::Block::default()
                .borders(ratatui::widgets::Borders::ALL)
                .border_style(Style::default().fg(Color::DarkGray))
                .title(Line::from(title)),
        )
        .legend_position(None)
        .x_axis(Axis::default().bounds([x0, x1]).labels(x_labels))
        .y_axis(Axis::default().bounds([lo, hi]).labels(y_labels));
    frame.render_widget(chart, area);
}

/// Evenly spaced epoch labels for a chart axis `width` columns wide.
fn axis_labels(x0: f64, x1: f64, width: usize) -> Vec<Span<'static>> {
    let n = (width / 10).clamp(2, 6);
    (0..n)
        .map(|k| {
            let v = x0 + (x1 - x0) * k as f64 / (n - 1) as f64;
            let text = if (v - v.round()).abs() < 0.05 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            };
            Span::raw(text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(values: &[f64], log: bool) -> String {
        let cols: Vec<Option<f64>> = values.iter().map(|&v| Some(v)).collect();
        sparkline(&cols, log, None)
    }

    #[test]
    fn sparkline_spans_the_range_and_marks_nan() {
        assert_eq!(line(&[1.0, 2.0, 3.0], false), "▁▅█");
        assert_eq!(line(&[1.0, f64::NAN, 3.0], false), "▁!█");
        assert_eq!(line(&[2.0, 2.0], false), "▄▄");
        assert_eq!(line(&[1.0, 10.0, 100.0], true), "▁▅█");
        assert_eq!(sparkline(&[None, Some(1.0), Some(2.0)], false, None), " ▁█");
    }

    #[test]
    fn a_shared_scale_keeps_lines_comparable() {
        // 2.0 is the middle of the shared 1..3 scale, not the top of its own line.
        let cols = [Some(2.0), Some(2.0)];
        assert_eq!(sparkline(&cols, false, Some((1.0, 3.0))), "▅▅");
        assert_eq!(sparkline(&[Some(3.0)], false, Some((1.0, 3.0))), "█");
    }

    #[test]
    fn points_are_placed_by_iteration_over_the_window() {
        // Two evaluations of a 100-iteration run on 10 columns: at iterations 50 and 100.
        let cols = by_iteration(&[(50, 2.0), (100, 1.0)], (0, 100), 10);
        assert_eq!(cols.len(), 10);
        assert_eq!(cols[0], None);
        assert_eq!(cols[4], Some(2.0));
        assert_eq!(cols[8], Some(2.0));
        assert_eq!(cols[9], Some(1.0));
        // Half-way through the run, only half the columns are drawn.
        assert_eq!(by_iteration(&[(10, 1.0), (50, 3.0)], (0, 100), 10).len(), 5);
        // Columns average their points.
        assert_eq!(
            by_iteration(&[(1, 1.0), (2, 3.0)], (0, 2), 1),
            vec![Some(2.0)]
        );
        // A window from iteration 50 on leaves the earlier points out.
        let cols = by_iteration(&[(50, 2.0), (100, 1.0)], (50, 100), 5);
        assert_eq!(cols, vec![None, None, None, None, Some(1.0)]);
    }

    #[test]
    fn smoothing_is_a_debiased_moving_average() {
        let raw = [(1, 1.0), (2, 3.0), (3, 3.0)];
        assert_eq!(smooth(&raw, 0.0), raw.to_vec());
        let s = smooth(&raw, 0.5);
        // m = 0.5, 1.75, 2.375; weights 0.5, 0.75, 0.875.
        assert_eq!(s[0], (1, 1.0));
        assert!((s[1].1 - 1.75 / 0.75).abs() < 1e-12);
        assert!((s[2].1 - 2.375 / 0.875).abs() < 1e-12);
        // A constant stays constant (no bias towards zero).
        let flat: Vec<(u64, f64)> = (1..50).map(|i| (i, 0.7)).collect();
        assert!(smooth(&flat, 0.99)
            .iter()
            .all(|p| (p.1 - 0.7).abs() < 1e-12));
    }

    #[test]
    fn epoch_ticks_mark_every_epoch_and_label_what_fits() {
        // 4 epochs of 10 iterations on 40 columns: a tick and a label at each epoch's end.
        let row = epoch_ticks((0, 40), 10, 40);
        assert_eq!(row.chars().filter(|&c| c == '╵').count(), 0, "{row}");
        assert!(row.contains('1') && row.contains('4'), "{row}");
        // 100 epochs on 30 columns: labels thinned to a 1-2-5 step, never overlapping.
        let row = epoch_ticks((0, 1000), 10, 30);
        assert!(row.chars().count() <= 30, "{row}");
        assert!(row.contains("100"), "{row}");
        assert!(!row.contains("99"), "{row}");
    }
}
