//! The status lines: run, state, position, learning rate, speed and time, and the banner of
//! health alerts below them when any holds.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::view::{clock, num};
use crate::train::RunState;

/// Rows of the status lines without alerts.
pub const HEIGHT: u16 = 2;

/// Rows of the status panel: the two lines, and the alert banner when there are alerts.
pub fn height(app: &App) -> u16 {
    HEIGHT + u16::from(!app.alerts.is_empty())
}

/// The colour of a run state.
pub fn state_style(state: RunState) -> Style {
    let colour = match state {
        RunState::Running => Color::Green,
        RunState::Paused => Color::Yellow,
        RunState::Finished => Color::Cyan,
        RunState::Stopped => Color::Magenta,
        RunState::Diverged => Color::Red,
    };
    Style::default()
        .fg(Color::Black)
        .bg(colour)
        .add_modifier(Modifier::BOLD)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let dim = Style::default().fg(Color::DarkGray);
    let mut first = vec![
        Span::styled(
            format!(" {} ", app.state.label().to_uppercase()),
            state_style(app.state),
        ),
        Span::raw(" "),
    ];
    match &app.info {
        Some(info) => {
            first.push(Span::styled(
                format!("{} [{}]", info.preset, info.variant),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            first.push(Span::styled(" · ", dim));
            first.push(Span::raw(info.data.clone()));
        }
        None => first.push(Span::raw("starting…")),
    }
    let mut second = Vec::new();
    // Narrow screens get single spaces between the fields, so that the ETA still fits.
    let gap = if area.width < 100 { " " } else { "  " };
    let field = |label: &str, value: String| {
        [
            Span::styled(format!("{label} "), dim),
            Span::raw(format!("{value}{gap}")),
        ]
    };
    let epochs = app.info.as_ref().map_or(0, |i| i.epochs);
    let total = app.total_iterations().unwrap_or(0);
    match app.progress {
        Some(p) => {
            // While training, the epoch under way; once over, the epochs completed.
            let epoch = if app.training() {
                (p.epoch + 1).min(epochs.max(1))
            } else {
                p.epoch.min(epochs)
            };
            // SGD shows its momentum; another optimizer its name (Adam has no momentum, and
            // Muon's for the hidden matrices is its own).
            let kind = app
                .info
                .as_ref()
                .map_or_else(Default::default, |i| i.optimizer);
            let optimizer = if kind == crate::preset::OptimizerKind::Sgd {
                ("mom", num(p.momentum, 2))
            } else {
                ("opt", kind.name().to_string())
            };
            // In display order, each with the rank it keeps when the line is too narrow
            // (the lowest goes first): epoch and ETA stay longest.
            let mut fields = vec![
                (7, ("epoch", format!("{epoch}/{epochs}"))),
                (3, ("iter", format!("{}/{}", p.iteration, total))),
                (5, ("lr", rate(p.learning_rate))),
                (1, optimizer),
                (4, ("ex/s", num(p.examples_per_second, 0))),
                (2, ("time", clock(p.elapsed_seconds))),
                (6, ("ETA", app.eta_seconds().map_or("-".into(), clock))),
            ];
            let width = |fields: &[(u8, (&str, String))]| -> usize {
                fields
                    .iter()
                    .map(|(_, (label, value))| {
                        label.chars().count() + value.chars().count() + 1 + gap.len()
                    })
                    .sum()
            };
            while width(&fields) > area.width as usize + gap.len() && fields.len() > 1 {
                let lowest = (0..fields.len())
                    .min_by_key(|&i| fields[i].0)
                    .expect("at least two fields");
                fields.remove(lowest);
            }
            for (_, (label, value)) in fields {
                second.extend(field(label, value));
            }
        }
        None => {
            second.extend(field("epoch", format!("0/{epochs}")));
            second.extend(field("iter", format!("0/{total}")));
        }
    }
    let mut lines = vec![Line::from(first), Line::from(second)];
    if let Some(banner) = banner(app, area.width as usize) {
        lines.push(banner);
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// The alerts in one line: as many as fit, then how many more (all are in the event log).
fn banner(app: &App, width: usize) -> Option<Line<'static>> {
    if app.alerts.is_empty() {
        return None;
    }
    let style = Style::default()
        .fg(Color::Black)
        .bg(Color::LightRed)
        .add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::styled(" ALERT ", style), Span::raw(" ")];
    let mut used = 8;
    let mut shown = 0;
    for a in &app.alerts {
        let text = if shown == 0 {
            a.text()
        } else {
            format!(" · {}", a.text())
        };
        let rest = app.alerts.len() - shown - 1;
        let tail = if rest > 0 { 12 } else { 0 };
        if shown > 0 && used + text.chars().count() + tail > width {
            break;
        }
        used += text.chars().count();
        spans.push(Span::styled(text, Style::default().fg(Color::LightRed)));
        shown += 1;
    }
    if shown < app.alerts.len() {
        spans.push(Span::styled(
            format!(" · +{} more", app.alerts.len() - shown),
            Style::default().fg(Color::LightRed),
        ));
    }
    Some(Line::from(spans))
}

/// A learning rate: four decimals in the usual range, scientific notation outside it.
fn rate(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e4).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        num(v, 4)
    }
}
