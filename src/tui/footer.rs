//! The one-line footer: the key table in short, or the question being asked.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::keymap::{KeyBinding, KEYS};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let key = Style::default()
        .fg(Color::Black)
        .bg(Color::Gray)
        .add_modifier(Modifier::BOLD);
    let line = if app.confirm_quit {
        Line::from(vec![
            Span::styled(" y ", key),
            Span::raw(" stop, save and quit  "),
            Span::styled(" any key ", key),
            Span::raw(" stay"),
        ])
    } else {
        let mut spans = Vec::new();
        let mut used = 0;
        if !app.training() {
            let text = "training over: q quits ";
            used += text.chars().count();
            spans.push(Span::styled(text, Style::default().fg(Color::Cyan)));
        }
        // Help and quit first, so that they show on the narrowest screen.
        let first = |k: &&KeyBinding| matches!(k.label, "?" | "q");
        for k in KEYS
            .iter()
            .filter(first)
            .chain(KEYS.iter().filter(|k| !first(k)))
        {
            let len = k.label.chars().count() + k.short.chars().count() + 3;
            if used + len > area.width as usize {
                break;
            }
            used += len;
            spans.push(Span::styled(format!(" {} ", k.label), key));
            spans.push(Span::raw(format!("{} ", k.short)));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
