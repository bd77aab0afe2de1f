//! The event log: switches, re-estimations, learning-rate changes, divergence, the end.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, LogKind};
use super::view::panel;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let title = match &app.out_dir {
        Some(dir) => format!("Events · run folder {dir}"),
        None => "Events".to_string(),
    };
    let block = panel(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let visible = inner.height as usize;
    let skip = app.log.len().saturating_sub(visible);
    let lines: Vec<Line> = app
        .log
        .iter()
        .skip(skip)
        .map(|l| {
            let it = l
                .iteration
                .map_or(String::from("      "), |i| format!("{i:>6}"));
            let colour = match l.kind {
                LogKind::Info => Color::Reset,
                LogKind::Transform => Color::Green,
                LogKind::Warning => Color::Yellow,
                LogKind::Error => Color::Red,
            };
            Line::from(vec![
                Span::styled(format!("{it} "), Style::default().fg(Color::DarkGray)),
                Span::styled(l.text.clone(), Style::default().fg(colour)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
