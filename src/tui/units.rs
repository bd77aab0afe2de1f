//! The unit view of the selected layer: one cell per unit, shaded and coloured by its output
//! standard deviation; saturated and collapsed units get their own letters, so the view
//! reads without colour too.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, LayerSpread, SLOPE_BINS, SPREAD_BINS};
use super::view::{num, panel};
use crate::stats::{GuardMark, LayerStats};

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
        "Units of layer {} ({} units, by output std; ← → cursor)",
        layer.layer, layer.units
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let height = inner.height as usize;
    let cursor = app
        .unit_cursor
        .min(layer.per_unit.std_out.len().saturating_sub(1));
    let mut lines = vec![summary_line(layer)];
    lines.extend(unit_details(layer, cursor, width));
    // The grid gets what it needs of the rows left after the legend, then the heat strips of
    // the whole run and the slope histogram take what remains, each only if it fits whole.
    let grid_room = height.saturating_sub(lines.len() + 1);
    let grid_lines = grid(layer, width, grid_room, cursor);
    lines.extend(grid_lines);
    lines.push(legend());
    for strip in [&STD_STRIP, &SLOPE_STRIP] {
        let left = height.saturating_sub(lines.len());
        if left > strip.bins.len() + 1 {
            lines.extend(heat_strip(app, layer.layer, width, strip));
        }
    }
    let left = height.saturating_sub(lines.len());
    if left >= MIN_HISTOGRAM_ROWS {
        lines.push(Line::raw(""));
        lines.extend(slope_histogram(layer, width, left - 1));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The unit under the cursor: its α, β, γ, output mean and variance, mean slope, input
/// spread and flags, on one row or two when the panel is narrow.
fn unit_details(l: &LayerStats, j: usize, width: usize) -> Vec<Line<'static>> {
    let u = &l.per_unit;
    let get = |v: &[f64]| v.get(j).copied().unwrap_or(f64::NAN);
    let flag = |v: &[bool]| v.get(j).copied().unwrap_or(false);
    let mut flags = Vec::new();
    if flag(&u.saturated) {
        flags.push(Span::styled(" saturated", Style::default().fg(SATURATED.1)));
    }
    if flag(&u.collapsed) {
        flags.push(Span::styled(" collapsed", Style::default().fg(COLLAPSED.1)));
    }
    match u.guarded.get(j).copied().flatten() {
        Some(GuardMark::Capped) => flags.push(Span::raw(" γ capped by guard")),
        Some(GuardMark::Off) => flags.push(Span::raw(" γ off (guard)")),
        None => {}
    }
    let params = if u.alpha.is_empty() {
        "α β γ -".to_string()
    } else {
        format!(
            "α {} β {} γ {}",
            signed(get(&u.alpha)),
            signed(get(&u.beta)),
            num(get(&u.gamma), 2)
        )
    };
    let head = Span::styled(
        format!("unit {j}: "),
        Style::default().add_modifier(Modifier::BOLD),
    );
    let figures = format!(
        "mean {} var {} slope {} std x {}",
        signed(get(&u.mean_out)),
        num(get(&u.std_out).powi(2), 3),
        num(get(&u.mean_slope), 2),
        num(get(&u.std_pre), 2)
    );
    let one_row = format!("unit {j}: {params}  {figures}").chars().count()
        + flags
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>();
    if one_row <= width {
        let mut spans = vec![head, Span::raw(format!("{params}  {figures}"))];
        spans.extend(flags);
        vec![Line::from(spans)]
    } else {
        let mut first = vec![head, Span::raw(params)];
        first.extend(flags);
        vec![Line::from(first), Line::raw(format!("  {figures}"))]
    }
}

fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.2}")
    } else {
        num(v, 2)
    }
}

/// What one heat strip shows.
struct Strip {
    what: &'static str,
    bins: &'static [f64; SPREAD_BINS.len()],
    counts: fn(&LayerSpread) -> &[usize; SPREAD_BINS.len()],
    /// The colour of a bin's row.
    colour: fn(usize) -> Color,
}

/// The output-std strip: collapse shows as mass moving to the bottom rows.
const STD_STRIP: Strip = Strip {
    what: "output std",
    bins: &SPREAD_BINS,
    counts: |l| &l.std,
    colour: |bin| {
        if bin == 0 {
            COLLAPSED.1
        } else {
            LEVELS
                .iter()
                .find(|(lo, _, _)| SPREAD_BINS[bin] >= *lo)
                .map_or(Color::Gray, |l| l.2)
        }
    },
};

/// The slope strip (mean tanh′): saturation shows as mass moving to the bottom rows.
const SLOPE_STRIP: Strip = Strip {
    what: "slope",
    bins: &SLOPE_BINS,
    counts: |l| &l.slope,
    colour: |bin| {
        if SLOPE_BINS[bin] < NEAR_SATURATION {
            SATURATED.1
        } else {
            Color::Cyan
        }
    },
};

/// The layer's distribution of one unit measure at every evaluation of the run,
/// TensorBoard-histogram style: one row per bin (highest on top), one column per evaluation
/// (a column per several when the run has more than the panel is wide), shaded by the share
/// of units in the bin.
fn heat_strip(app: &App, layer: usize, width: usize, strip: &Strip) -> Vec<Line<'static>> {
    const LABEL: usize = 7;
    let columns = width.saturating_sub(LABEL).max(1);
    let history: Vec<(usize, &[usize; SPREAD_BINS.len()])> = app
        .epoch_spread
        .iter()
        .filter_map(|s| {
            let l = s.layers.iter().find(|l| l.layer == layer)?;
            Some((s.epoch, (strip.counts)(l)))
        })
        .collect();
    // Epochs per column, so that the whole run fits.
    let per_column = history.len().div_ceil(columns).max(1);
    let merged: Vec<[usize; SPREAD_BINS.len()]> = history
        .chunks(per_column)
        .map(|group| {
            let mut sum = [0; SPREAD_BINS.len()];
            for (_, counts) in group {
                for (s, c) in sum.iter_mut().zip(counts.iter()) {
                    *s += c;
                }
            }
            sum
        })
        .collect();
    let span = match (history.first(), history.last()) {
        (Some((first, _)), Some((last, _))) => format!("epochs {first}…{last}"),
        _ => "no evaluations with unit statistics yet".to_string(),
    };
    let per = if per_column > 1 {
        format!(", {per_column} a column")
    } else {
        String::new()
    };
    let mut lines = vec![Line::styled(
        format!(
            "unit {} over the run ({span}{per}), share of units: ░ ▒ ▓ █",
            strip.what
        ),
        Style::default().fg(Color::DarkGray),
    )];
    for bin in (0..strip.bins.len()).rev() {
        let label = format!("≥{:<4} ", strip.bins[bin]);
        let cells: String = merged
            .iter()
            .map(|counts| {
                let total = counts.iter().sum::<usize>().max(1);
                shade(counts[bin] as f64 / total as f64)
            })
            .collect();
        lines.push(Line::from(vec![
            Span::styled(
                format!("{label:>LABEL$}"),
                Style::default().fg(Color::DarkGray),
            ),
            Span::styled(cells, Style::default().fg((strip.colour)(bin))),
        ]));
    }
    lines
}

/// A share of units as a shade.
fn shade(share: f64) -> char {
    match share {
        s if s <= 0.0 => ' ',
        s if s < 0.1 => '░',
        s if s < 0.3 => '▒',
        s if s < 0.6 => '▓',
        _ => '█',
    }
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

/// Units in rows of `width` cells (two columns per unit when they fit, else one); the unit
/// under the cursor is drawn reversed.
fn grid(l: &LayerStats, width: usize, rows: usize, cursor: usize) -> Vec<Line<'static>> {
    let u = &l.per_unit;
    let n = u.std_out.len();
    if width == 0 || rows == 0 || n == 0 {
        return Vec::new();
    }
    let cell = if n.div_ceil((width / 2).max(1)) <= rows {
        2
    } else {
        1
    };
    let per_row = (width / cell).max(1);
    let total = n.div_ceil(per_row);
    // More rows than room: show the rows around the cursor and say which units are shown.
    let (first, shown) = if total <= rows {
        (0, total)
    } else {
        let visible = if rows > 1 { rows - 1 } else { 1 };
        let cursor_row = cursor / per_row;
        (
            cursor_row.saturating_sub(visible - 1).min(total - visible),
            visible,
        )
    };
    let mut lines = Vec::new();
    for r in first..first + shown {
        let start = r * per_row;
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
                let style = Style::default().fg(colour);
                if j == cursor {
                    Span::styled(
                        text,
                        style.add_modifier(Modifier::REVERSED | Modifier::BOLD),
                    )
                } else {
                    Span::styled(text, style)
                }
            })
            .collect::<Vec<_>>();
        lines.push(Line::from(spans));
    }
    if total > rows && rows > 1 {
        let a = first * per_row;
        let b = ((first + shown) * per_row).min(n);
        lines.push(Line::styled(
            format!(
                "units {a}–{} of {n} shown (← → moves; enlarge for all)",
                b - 1
            ),
            Style::default().fg(Color::DarkGray),
        ));
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
