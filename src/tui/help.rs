//! The help popup, generated from the key table: a key and its sentence per row, or, on a
//! screen too small for that, every key with its short label in columns.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use ratatui::Frame;

use super::keymap::{self, KeyBinding};
use super::view::centered;

pub fn draw(frame: &mut Frame, area: Rect, read_only: bool) {
    let keys: Vec<&KeyBinding> = keymap::visible(read_only).collect();
    let keys = &keys[..];
    let key_width = keys
        .iter()
        .map(|k| k.label.chars().count())
        .max()
        .unwrap_or(6) as u16;
    let width = keys
        .iter()
        .map(|k| k.description.chars().count())
        .max()
        .unwrap_or(40) as u16
        + key_width
        + 3;
    let height = keys.len() as u16 + 2;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Cyan))
        .title(" Keys (? or esc: close) ");
    if width <= area.width && height <= area.height {
        let popup = centered(area, width, height);
        frame.render_widget(Clear, popup);
        let rows = keys.iter().map(|k| {
            Row::new([
                Cell::from(k.label).style(Style::default().add_modifier(Modifier::BOLD)),
                Cell::from(k.description),
            ])
        });
        let table = Table::new(rows, [Constraint::Length(key_width), Constraint::Min(10)]);
        frame.render_widget(table.block(block), popup);
        return;
    }
    // Compact: "label short" entries in as many columns as the width allows.
    let entry = keys
        .iter()
        .map(|k| k.label.chars().count() + k.short.chars().count() + 3)
        .max()
        .unwrap_or(16);
    let inner_width = area.width.saturating_sub(2) as usize;
    let per_row = (inner_width / entry).max(1);
    let rows = keys.len().div_ceil(per_row);
    let popup = centered(area, (per_row * entry + 2) as u16, rows as u16 + 2);
    frame.render_widget(Clear, popup);
    let lines: Vec<Line> = keys
        .chunks(per_row)
        .map(|chunk| {
            Line::from(
                chunk
                    .iter()
                    .flat_map(|k| {
                        let pad = entry - k.label.chars().count() - k.short.chars().count() - 1;
                        [
                            Span::styled(k.label, Style::default().add_modifier(Modifier::BOLD)),
                            Span::raw(format!(" {}{}", k.short, " ".repeat(pad))),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
