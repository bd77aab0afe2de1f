//! The status lines: run, state, position, learning rate, speed and time.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::view::{clock, num};
use crate::train::RunState;

pub const HEIGHT: u16 = 2;

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
            second.extend(field(
                "epoch",
                format!("{}/{}", (p.epoch + 1).min(epochs.max(1)), epochs),
            ));
            second.extend(field("iter", format!("{}/{}", p.iteration, total)));
            second.extend(field("lr", rate(p.learning_rate)));
            second.extend(field("mom", num(p.momentum, 2)));
            second.extend(field("ex/s", num(p.examples_per_second, 0)));
            second.extend(field("time", clock(p.elapsed_seconds)));
            second.extend(field("ETA", app.eta_seconds().map_or("-".into(), clock)));
        }
        None => {
            second.extend(field("epoch", format!("0/{epochs}")));
            second.extend(field("iter", format!("0/{total}")));
        }
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// A learning rate: four decimals in the usual range, scientific notation outside it.
fn rate(v: f64) -> String {
    if v.is_finite() && v != 0.0 && !(1e-3..1e4).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        num(v, 4)
    }
}
