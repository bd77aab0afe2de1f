//! The layers table: one row per hidden layer with its statistics and α/β/γ.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{App, LogKind};
use super::view::{fit, num, panel};
use crate::net::{Flags, Param, UnitKind};
use crate::stats::{LayerStats, Range};

/// Saturated or collapsed fractions above this are drawn in warning colours.
const WARN_FRACTION: f64 = 0.1;
/// Width of an α/β/γ range ("-0.87…-0.39") and of a midpoint.
const RANGE_WIDTH: u16 = 11;
const MID_WIDTH: u16 = 6;

/// One column of the table: its header, width, rank (0 is kept longest) and cells.
struct Column {
    header: String,
    width: u16,
    rank: usize,
    cells: Vec<Cell<'static>>,
}

/// The columns in display order, with α/β/γ as ranges (`wide`) or midpoints.
fn columns(app: &App, wide: bool) -> Vec<Column> {
    let layers = &app.layers;
    let col =
        |header: &str, width: u16, rank: usize, cell: &dyn Fn(&LayerStats) -> Cell<'static>| {
            Column {
                header: header.to_string(),
                width,
                rank,
                cells: layers.iter().map(cell).collect(),
            }
        };
    let mut out = vec![
        Column {
            header: "layer".into(),
            width: 5,
            rank: 0,
            cells: layers
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mark = if i == app.selected { "▶" } else { " " };
                    Cell::from(format!("{mark} {}", l.layer))
                })
                .collect(),
        },
        col("units", 5, 10, &|l| Cell::from(format!("{:>5}", l.units))),
        col("mean", 6, 9, &|l| Cell::from(fit(l.mean_out, 3, 6))),
        col("slope", 5, 3, &|l| Cell::from(fit(l.mean_slope, 3, 5))),
        col("var", 5, 7, &|l| Cell::from(fit(l.var_out, 3, 5))),
        col("std x", 5, 8, &|l| Cell::from(fit(l.std_pre, 2, 5))),
        col("sat %", 5, 1, &|l| percent_cell(l.saturated_fraction)),
        col("col %", 5, 2, &|l| percent_cell(l.collapsed_fraction)),
    ];
    for (k, p) in Param::ALL.into_iter().enumerate() {
        let (header, width) = if wide {
            (format!("{} range", p.symbol()), RANGE_WIDTH)
        } else {
            (format!("{} mid", p.symbol()), MID_WIDTH)
        };
        out.push(Column {
            header,
            width,
            rank: 4 + k,
            cells: layers
                .iter()
                .map(|l| Cell::from(param_text(l, app.flags, p, wide)))
                .collect(),
        });
    }
    out
}

/// Keeps the columns that fit in `width` (one space between columns), dropping the
/// lowest-ranked first, in display order.
fn fitting(mut cols: Vec<Column>, width: u16) -> (Vec<Column>, bool) {
    let total = |c: &[Column]| c.iter().map(|c| c.width + 1).sum::<u16>();
    let mut dropped = false;
    while total(&cols) > width + 1 && cols.len() > 1 {
        let worst = cols
            .iter()
            .enumerate()
            .max_by_key(|(_, c)| c.rank)
            .map(|(i, _)| i)
            .expect("non-empty");
        cols.remove(worst);
        dropped = true;
    }
    (cols, dropped)
}

/// The columns shown at this inner width: ranges if every column fits with them, else
/// midpoints, dropping columns by rank if even those do not fit.
fn chosen(app: &App, width: u16) -> (Vec<Column>, bool) {
    let (cols, dropped) = fitting(columns(app, true), width);
    if !dropped {
        return (cols, false);
    }
    fitting(columns(app, false), width)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let hint = if app.unit_view {
        "enter: close units"
    } else {
        "↑↓ select, enter: units"
    };
    let block = panel(format!("Layers @ it {}  ({hint})", app.layers_iteration));
    if app.layers.is_empty() {
        let inner = block.inner(area);
        frame.render_widget(block, area);
        // A failure (a damaged metrics log under `watch`, say) is why none may come: say it.
        let failure = app.log.iter().rev().find(|l| l.kind == LogKind::Error);
        let text = failure.map_or("waiting for statistics…".to_string(), |l| {
            format!("no statistics: {}", l.text)
        });
        frame.render_widget(
            Paragraph::new(Line::from(text)).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let (cols, _) = chosen(app, area.width.saturating_sub(2));
    let header = Row::new(cols.iter().map(|c| Cell::from(c.header.clone())))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = (0..app.layers.len()).map(|i| {
        let style = if i == app.selected {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        Row::new(cols.iter().map(|c| c.cells[i].clone())).style(style)
    });
    let widths: Vec<Constraint> = cols.iter().map(|c| Constraint::Length(c.width)).collect();
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn percent_cell(fraction: f64) -> Cell<'static> {
    let text = format!("{:>5}", num(100.0 * fraction, 1));
    let style = if fraction.is_nan() || fraction > WARN_FRACTION {
        Style::default().fg(Color::Red)
    } else if fraction > 0.0 {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default()
    };
    Cell::from(text).style(style)
}

/// "off", the value, or its range over the layer's units.
fn param_text(l: &LayerStats, flags: Flags, p: Param, wide: bool) -> String {
    if l.kind != UnitKind::Tanh {
        return "-".into();
    }
    if !flags.get(p) {
        return "off".into();
    }
    let r: Range = match p {
        Param::Alpha => l.alpha,
        Param::Beta => l.beta,
        Param::Gamma => l.gamma,
    };
    if !r.min.is_finite() || !r.max.is_finite() {
        return "NaN".into();
    }
    if wide {
        format!("{:+.2}…{:+.2}", r.min, r.max)
    } else {
        num((r.min + r.max) / 2.0, 2)
    }
}
