//! The transformations panel: α, β, γ on or off, and the last change of them (a switch, or a
//! manual or scheduled re-estimation) with the output change it caused.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{sci, App};
use super::view::panel;
use crate::net::Param;
use crate::preset::Variant;
use crate::protocol::TransformCause;

/// What the panel says before any change: the keys, or why they do nothing on this run.
fn idle_hint(app: &App) -> &'static str {
    // A foreign trainer's variant is its own text: no variant of ours, so the keys are offered.
    let variant = app
        .info
        .as_ref()
        .and_then(|i| Variant::from_name(&i.variant));
    let cannot_follow = app
        .info
        .as_ref()
        .is_some_and(|i| !Param::ALL.into_iter().any(|p| i.optimizer.can_follow(p)));
    match (variant, cannot_follow) {
        (Some(Variant::Bn), _) => "not on bn runs",
        (Some(Variant::Ln), _) => "not on ln runs",
        (_, true) => "not under Adam",
        _ => "a b g switch",
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let block = panel("Transforms");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut flags = Vec::new();
    for p in Param::ALL {
        let on = app.flags.get(p);
        let style = if on {
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        flags.push(Span::styled(
            format!("{} {} ", p.symbol(), if on { "on " } else { "off" }),
            style,
        ));
    }
    let mut lines = vec![Line::from(flags)];
    match &app.last_transform {
        Some(t) => {
            let what = match t.cause {
                TransformCause::Switch { param, on } => {
                    format!(
                        "{} switched {}",
                        param.symbol(),
                        if on { "on" } else { "off" }
                    )
                }
                TransformCause::Manual => "re-est. (manual)".to_string(),
                TransformCause::Scheduled => "re-est. (sched.)".to_string(),
                TransformCause::Guard {
                    layer,
                    unit,
                    action,
                } => format!("guard {} L{layer}#{unit}", action.name()),
                TransformCause::Rollback { to } => format!("rolled back to it {to}"),
            };
            lines.push(Line::from(format!("last: {what}")));
            lines.push(Line::from(format!("at it {}", t.iteration)));
            lines.push(Line::from(format!("max Δout {}", sci(t.max_output_change))));
        }
        None => lines.push(Line::styled(
            idle_hint(app),
            Style::default().fg(Color::DarkGray),
        )),
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
