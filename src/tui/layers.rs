//! The layers table: one row per hidden layer with its statistics and α/β/γ.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::App;
use super::view::{fit, num, panel};
use crate::net::{Flags, Param, UnitKind};
use crate::stats::{LayerStats, Range};

/// From this width on, α/β/γ show their range instead of the midpoint.
const WIDE: u16 = 94;
/// Saturated or collapsed fractions above this are drawn in warning colours.
const WARN_FRACTION: f64 = 0.1;

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
        frame.render_widget(Paragraph::new(Line::from("waiting for statistics…")), inner);
        return;
    }
    let wide = area.width >= WIDE;
    let param_width = if wide { 13 } else { 6 };
    let header = Row::new(
        [
            "layer", "units", "mean", "slope", "var", "std x", "sat %", "col %", "α", "β", "γ",
        ]
        .map(Cell::from),
    )
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = app.layers.iter().enumerate().map(|(i, l)| {
        let selected = i == app.selected;
        let mark = if selected { "▶" } else { " " };
        let mut cells = vec![
            Cell::from(format!("{mark} {}", l.layer)),
            Cell::from(format!("{:>5}", l.units)),
            Cell::from(fit(l.mean_out, 3, 6)),
            Cell::from(fit(l.mean_slope, 3, 5)),
            Cell::from(fit(l.var_out, 3, 5)),
            Cell::from(fit(l.std_pre, 2, 5)),
            percent_cell(l.saturated_fraction),
            percent_cell(l.collapsed_fraction),
        ];
        for p in Param::ALL {
            cells.push(Cell::from(param_text(l, app.flags, p, wide)));
        }
        let style = if selected {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        Row::new(cells).style(style)
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(param_width),
        Constraint::Length(param_width),
        Constraint::Length(param_width),
    ];
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
