//! The event log: switches, re-estimations, learning-rate changes, alerts, divergence, the
//! end. Lines wrap to the panel's width (nothing is cut), scroll with PgUp / PgDn / Home / End
//! and can be filtered with `/`.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{App, LogKind, LogLine};
use super::view::panel;

/// Width of the iteration column.
const ITERATION_WIDTH: usize = 6;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let lines = app.filtered_log();
    let mut title = match &app.out_dir {
        Some(dir) => format!("Events · run folder {dir}"),
        None => "Events".to_string(),
    };
    if !app.log_filter.is_empty() {
        title.push_str(&format!(
            " · filter \"{}\": {} of {} lines (esc clears)",
            app.log_filter,
            lines.len(),
            app.log.len()
        ));
    }
    let block = panel(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut rows = inner.height as usize;
    let width = inner.width as usize;
    let mut out: Vec<Line> = Vec::new();
    if let Some(input) = &app.filter_input {
        rows = rows.saturating_sub(1);
        out.push(Line::from(vec![
            Span::styled(
                "filter: ",
                Style::default()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{input}▏")),
            Span::styled(
                "  enter applies, esc cancels",
                Style::default().fg(Color::DarkGray),
            ),
        ]));
    }
    app.log_page.set(rows.max(1));
    // The newest line not scrolled past, then as many older ones as fit, wrapped.
    let scroll = app.log_scroll.min(lines.len().saturating_sub(1));
    let end = lines.len() - scroll.min(lines.len());
    let mut picked: Vec<Line> = Vec::new();
    for line in lines[..end].iter().rev() {
        let wrapped = wrap_line(line, width);
        let room = rows.saturating_sub(picked.len());
        if room == 0 {
            break;
        }
        // A line taller than the room left shows its first rows.
        picked.extend(wrapped.into_iter().take(room).rev());
    }
    picked.reverse();
    if scroll > 0 && rows > 0 {
        let note = format!("↓ {scroll} newer lines (End: follow)");
        if picked.len() == rows {
            picked.pop();
        }
        picked.push(Line::styled(
            note,
            Style::default().fg(Color::Black).bg(Color::Gray),
        ));
    }
    out.extend(picked);
    frame.render_widget(Paragraph::new(out), inner);
}

/// One log line as rows of at most `width` cells: the iteration, then the text broken at
/// spaces (or anywhere in a word longer than a row), continuation rows indented.
pub fn wrap_line(line: &LogLine, width: usize) -> Vec<Line<'static>> {
    let it = line.iteration.map_or(" ".repeat(ITERATION_WIDTH), |i| {
        format!("{i:>ITERATION_WIDTH$}")
    });
    let colour = match line.kind {
        LogKind::Info => Color::Reset,
        LogKind::Transform => Color::Green,
        LogKind::Warning => Color::Yellow,
        LogKind::Error => Color::Red,
    };
    let indent = ITERATION_WIDTH + 1;
    let text_width = width.saturating_sub(indent).max(1);
    wrap(&line.text, text_width)
        .into_iter()
        .enumerate()
        .map(|(k, part)| {
            let lead = if k == 0 {
                format!("{it} ")
            } else {
                " ".repeat(indent)
            };
            Line::from(vec![
                Span::styled(lead, Style::default().fg(Color::DarkGray)),
                Span::styled(part, Style::default().fg(colour)),
            ])
        })
        .collect()
}

/// Breaks `text` into rows of at most `width` characters, at spaces where possible.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let len = row.chars().count();
        if len > 0 && len + 1 + word.len() <= width {
            row.push(' ');
            row.extend(word.iter());
            continue;
        }
        if len > 0 {
            rows.push(std::mem::take(&mut row));
        }
        while word.len() > width {
            rows.push(word.drain(..width).collect());
        }
        row = word.into_iter().collect();
    }
    rows.push(row);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_within_the_width() {
        let text =
            "checkpoint saved: runs/default-ab-20261202T140000Z/checkpoint.bin after 5 epochs";
        for width in [8, 20, 33, 80] {
            let rows = wrap(text, width);
            assert!(rows.iter().all(|r| r.chars().count() <= width), "{rows:?}");
            let joined: String = rows.concat();
            assert_eq!(
                joined.replace(' ', ""),
                text.replace(' ', ""),
                "nothing is lost at width {width}"
            );
        }
        assert_eq!(wrap("a bc def", 4), vec!["a bc", "def"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }
}
