//! The one-line footer: the key table in short, or the question being asked.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::App;
use super::keymap::{self, KeyBinding};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let key = Style::default()
        .fg(Color::Black)
        .bg(Color::Gray)
        .add_modifier(Modifier::BOLD);
    let line = if app.confirm_quit && app.read_only {
        Line::from(vec![
            Span::styled(" y ", key),
            Span::raw(" close the viewer (the run goes on)  "),
            Span::styled(" any key ", key),
            Span::raw(" stay"),
        ])
    } else if app.confirm_quit {
        Line::from(vec![
            Span::styled(" s ", key),
            Span::raw(" stop and save  "),
            Span::styled(" d ", key),
            Span::raw(" detach  "),
            Span::styled(" any key ", key),
            Span::raw(" stay"),
        ])
    } else {
        let mut spans = Vec::new();
        let mut used = 0;
        if !app.training() {
            let text = "training over ";
            used += text.chars().count();
            spans.push(Span::styled(text, Style::default().fg(Color::Cyan)));
        }
        // Help and quit first, so that they show on the narrowest screen.
        let first = |k: &&KeyBinding| matches!(k.label, "?" | "q");
        let keys: Vec<&KeyBinding> = keymap::visible(app.read_only).collect();
        for k in keys
            .iter()
            .copied()
            .filter(first)
            .chain(keys.iter().copied().filter(|k| !first(k)))
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
