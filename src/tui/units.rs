//! The unit view of the selected layer: one cell per unit, shaded and coloured by its output
//! standard deviation; saturated and collapsed units get their own letters, so the view
//! reads without colour too.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::view::{num, panel};
use crate::stats::LayerStats;

/// Output-std levels: lower bound, glyph, colour. A fixed scale, so that colours compare
/// across layers and over time.
/// The steps are roughly logarithmic: untransformed units often have output stds of 0.01–0.3.
const LEVELS: [(f64, char, Color); 5] = [
    (1.0, '█', Color::LightGreen),
    (0.3, '▓', Color::Green),
    (0.1, '▒', Color::Cyan),
    (0.03, '░', Color::Blue),
    (0.0, '·', Color::DarkGray),
];
/// Fewest free rows for the slope histogram (a title and at least three bins).
const MIN_HISTOGRAM_ROWS: usize = 5;
/// Histogram bins below this mean tanh′ are drawn in the saturated colour (a display choice;
/// the trainer's own threshold decides which units count as saturated).
const NEAR_SATURATION: f64 = 0.2;
/// Most bins of the slope histogram.
const MAX_BINS: usize = 10;
const SATURATED: (char, Color) = ('S', Color::LightRed);
const COLLAPSED: (char, Color) = ('C', Color::LightMagenta);

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(layer) = app.selected_layer() else {
        let block = panel("Units");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new("no statistics yet"), inner);
        return;
    };
    let block = panel(format!(
        "Units of layer {} ({} units, by output std)",
        layer.layer, layer.units
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![summary_line(layer)];
    let grid_rows = (inner.height as usize).saturating_sub(2);
    lines.extend(grid(layer, inner.width as usize, grid_rows));
    lines.push(legend());
    // Room to spare: a histogram of the saturation measure below the grid.
    let left = (inner.height as usize).saturating_sub(lines.len());
    if left >= MIN_HISTOGRAM_ROWS {
        lines.push(Line::raw(""));
        lines.extend(slope_histogram(layer, inner.width as usize, left - 1));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn summary_line(l: &LayerStats) -> Line<'static> {
    let u = &l.per_unit;
    let mut std: Vec<f64> = u.std_out.clone();
    std.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        std.get(((std.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
    Line::from(format!(
        "std min {} med {} max {}  saturated {}  collapsed {}",
        num(pick(0.0), 2),
        num(pick(0.5), 2),
        num(pick(1.0), 2),
        count(&u.saturated),
        count(&u.collapsed),
    ))
}

/// The glyph and colour of one unit.
pub fn unit_cell(std_out: f64, saturated: bool, collapsed: bool) -> (char, Color) {
    if collapsed {
        return COLLAPSED;
    }
    if saturated {
        return SATURATED;
    }
    if !std_out.is_finite() {
        return ('!', Color::Red);
    }
    LEVELS
        .iter()
        .find(|(lo, _, _)| std_out >= *lo)
        .map_or(('·', Color::DarkGray), |&(_, g, c)| (g, c))
}

/// Units in rows of `width` cells (two columns per unit when they fit, else one).
fn grid(l: &LayerStats, width: usize, rows: usize) -> Vec<Line<'static>> {
    let u = &l.per_unit;
    let n = u.std_out.len();
    if width == 0 || rows == 0 || n == 0 {
        return Vec::new();
    }
    let cell = if n.div_ceil(width / 2) <= rows { 2 } else { 1 };
    let per_row = width / cell;
    let mut lines = Vec::new();
    for start in (0..n).step_by(per_row.max(1)) {
        if lines.len() == rows {
            let last: &mut Line = lines.last_mut().expect("rows > 0");
            *last = Line::from(format!("… {} more units (enlarge the terminal)", n - start));
            break;
        }
        let spans = (start..(start + per_row).min(n))
            .map(|j| {
                let (glyph, colour) = unit_cell(
                    u.std_out[j],
                    u.saturated.get(j).copied().unwrap_or(false),
                    u.collapsed.get(j).copied().unwrap_or(false),
                );
                let text = if cell == 2 {
                    format!("{glyph} ")
                } else {
                    glyph.to_string()
                };
                Span::styled(text, Style::default().fg(colour))
            })
            .collect::<Vec<_>>();
        lines.push(Line::from(spans));
    }
    lines
}

fn legend() -> Line<'static> {
    let mut spans = vec![Span::raw("std ")];
    for (lo, glyph, colour) in LEVELS {
        let bound = format!("{lo}");
        let bound = bound.strip_prefix('0').unwrap_or(&bound);
        let text = if lo > 0.0 {
            format!("{glyph}≥{bound} ")
        } else {
            format!("{glyph}<.03 ")
        };
        spans.push(Span::styled(text, Style::default().fg(colour)));
    }
    spans.push(Span::styled(
        format!(" {} sat ", SATURATED.0),
        Style::default().fg(SATURATED.1),
    ));
    spans.push(Span::styled(
        format!("{} coll", COLLAPSED.0),
        Style::default().fg(COLLAPSED.1),
    ));
    Line::from(spans)
}

/// Units counted by their mean tanh′ (1: linear regime, near 0: saturated), one bin a row.
fn slope_histogram(l: &LayerStats, width: usize, rows: usize) -> Vec<Line<'static>> {
    let bins = (rows.saturating_sub(1)).min(MAX_BINS);
    if bins == 0 {
        return Vec::new();
    }
    let mut counts = vec![0usize; bins];
    let mut invalid = 0;
    for &v in &l.per_unit.tanh_slope {
        if v.is_finite() {
            counts[((v.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1)] += 1;
        } else {
            invalid += 1;
        }
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let bar_width = width.saturating_sub(18);
    let mut lines = vec![Line::styled(
        if invalid > 0 {
            format!("units by mean tanh′ (0 = saturated, 1 = linear); {invalid} NaN")
        } else {
            "units by mean tanh′ (0 = saturated, 1 = linear)".to_string()
        },
        Style::default().fg(Color::DarkGray),
    )];
    for (b, &count) in counts.iter().enumerate().rev() {
        let lo = b as f64 / bins as f64;
        let hi = (b + 1) as f64 / bins as f64;
        let len = (count * bar_width).div_ceil(most);
        let colour = if lo < NEAR_SATURATION {
            SATURATED.1
        } else {
            Color::Cyan
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{lo:.2}–{hi:.2} {count:>5} ")),
            Span::styled("■".repeat(len), Style::default().fg(colour)),
        ]));
    }
    lines
}
