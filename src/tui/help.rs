//! The help popup, generated from the key table.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Cell, Clear, Row, Table};
use ratatui::Frame;

use super::keymap::KEYS;
use super::view::centered;

pub fn draw(frame: &mut Frame, area: Rect) {
    let width = KEYS
        .iter()
        .map(|k| k.description.chars().count())
        .max()
        .unwrap_or(40) as u16
        + 11;
    let popup = centered(area, width, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let rows = KEYS.iter().map(|k| {
        Row::new([
            Cell::from(k.label).style(Style::default().add_modifier(Modifier::BOLD)),
            Cell::from(k.description),
        ])
    });
    let table = Table::new(rows, [Constraint::Length(6), Constraint::Min(10)]).block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(Style::default().fg(Color::Cyan))
            .title(" Keys (? or esc: close) "),
    );
    frame.render_widget(table, popup);
}
