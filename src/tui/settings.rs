//! The live-settings popup (`e`): every tunable of the run with its value; enter edits one,
//! and the trainer checks the new value with the preset's rules (its answer is in the log).

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Clear, Row, Table};
use ratatui::Frame;

use super::app::App;
use super::view::centered;
use crate::train::tunables::LIVE_KEYS;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(editor) = &app.settings else {
        return;
    };
    let key_width = app
        .tunables
        .iter()
        .map(|t| t.key.chars().count())
        .max()
        .unwrap_or(10) as u16;
    let height = app.tunables.len() as u16 + 3;
    let popup = centered(area, area.width.saturating_sub(4).min(100), height);
    frame.render_widget(Clear, popup);
    let title = match &editor.input {
        Some(_) => " Settings: type the value, enter applies, esc cancels ",
        None => " Settings: ↑ ↓ choose, enter edits, esc closes ",
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Cyan))
        .title(title);
    let rows = app.tunables.iter().enumerate().map(|(i, t)| {
        let chosen = i == editor.selected;
        let value = match (&editor.input, chosen) {
            (Some(input), true) => format!("{input}▏"),
            _ => t.value.clone(),
        };
        let about = LIVE_KEYS
            .iter()
            .find(|k| k.key == t.key)
            .map_or("", |k| k.about);
        let style = if chosen {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        Row::new([
            Cell::from(t.key.clone()),
            Cell::from(value),
            Cell::from(about).style(Style::default().fg(Color::DarkGray)),
        ])
        .style(style)
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(key_width),
            Constraint::Length(12),
            Constraint::Min(10),
        ],
    );
    frame.render_widget(table.block(block), popup);
}
