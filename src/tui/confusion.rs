//! The confusion-matrix popup (`x`): the monitored split's matrix at the latest evaluation,
//! rows true classes and columns predictions, each row's error at its end; or why there is
//! none (a regression or autoencoder run, no evaluation yet, too many classes).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::app::App;
use super::view::centered;
use crate::confusion::{Confusion, MAX_TRAINING_CLASSES};
use crate::preset::Task;

/// The explanation without a matrix is wrapped to this width (it fits the smallest screen).
const SENTENCE_WIDTH: usize = 54;
/// Width of the per-class error column (" 100.0%").
const ERROR_WIDTH: usize = 8;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let monitor = app
        .info
        .as_ref()
        .map_or("validation", |i| i.monitor.label());
    let (title, lines) = match (&app.confusion, app.info.as_ref().map(|i| i.task())) {
        (Some((epoch, c)), _) => (
            format!(" Confusion · {monitor} · epoch {epoch} (x or esc: close) "),
            matrix(&c.labels, &c.validation, area),
        ),
        (None, task) => (" Confusion (x or esc: close) ".to_string(), why_none(task)),
    };
    let width = lines
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .max(title.chars().count())
        + 2;
    let height = lines.len() + 2;
    let popup = centered(area, width as u16, height as u16);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Cyan))
        .title(title);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// The sentence shown instead of a matrix.
fn why_none(task: Option<Task>) -> Vec<Line<'static>> {
    let text = match task {
        Some(Task::Regress) => {
            "No confusion matrix: this is a regression run (its losses are mean squared errors, \
             with R² in metrics.jsonl)."
                .to_string()
        }
        Some(Task::Autoencode) => "No confusion matrix: an autoencoder has no classes.".to_string(),
        _ => format!(
            "No confusion matrix yet: it comes with the first epoch's evaluation (classifiers \
             of up to {MAX_TRAINING_CLASSES} classes; `ltmlp eval DIR` writes any)."
        ),
    };
    wrap(&text, SENTENCE_WIDTH)
}

/// `text` broken into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(Line::from(std::mem::take(&mut line)));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    lines.push(Line::from(line));
    lines
}

/// The matrix as styled lines, cut to the classes that fit in `area` (with a note saying so).
fn matrix(labels: &[i64], c: &Confusion, area: Rect) -> Vec<Line<'static>> {
    let k = c.classes();
    let names: Vec<String> = (0..k)
        .map(|i| {
            labels
                .get(i)
                .map_or_else(|| i.to_string(), |l| l.to_string())
        })
        .collect();
    let widest = c
        .counts
        .iter()
        .flatten()
        .max()
        .map_or(1, |m| m.to_string().len());
    let w = names.iter().map(String::len).max().unwrap_or(1).max(widest) + 1;
    // Room inside the popup's border for the label column, the counts and the error column;
    // and for the header, the summary line and the note.
    let columns = (area.width as usize)
        .saturating_sub(2 + w + 1 + ERROR_WIDTH)
        .checked_div(w)
        .unwrap_or(0)
        .min(k);
    let rows = (area.height as usize).saturating_sub(2 + 3).min(k);
    let dim = Style::default().fg(Color::DarkGray);
    let right = Style::default()
        .fg(Color::Green)
        .add_modifier(Modifier::BOLD);
    let wrong = Style::default().fg(Color::Red);
    let mut lines = vec![Line::from(format!(
        "{} examples, error {:.2}% · rows: true class, columns: predicted",
        c.examples(),
        c.error_percent()
    ))];
    let mut header = format!("{:>w$} ", "");
    for name in &names[..columns] {
        header += &format!("{name:>w$}");
    }
    lines.push(Line::styled(header + "   error", dim));
    for (t, row) in c.counts.iter().enumerate().take(rows) {
        let mut spans = vec![Span::styled(format!("{:>w$} ", names[t]), dim)];
        for (p, &n) in row.iter().enumerate().take(columns) {
            let style = match (t == p, n) {
                (_, 0) => dim,
                (true, _) => right,
                (false, _) => wrong,
            };
            spans.push(Span::styled(format!("{n:>w$}"), style));
        }
        let error = c.per_class_error()[t].map_or("      -".to_string(), |e| format!("  {e:5.1}%"));
        spans.push(Span::raw(error));
        lines.push(Line::from(spans));
    }
    if rows < k || columns < k {
        lines.push(Line::styled(
            format!("{rows}/{k} rows, {columns}/{k} columns: `ltmlp eval` writes them all"),
            dim,
        ));
    }
    lines
}
