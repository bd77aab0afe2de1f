//! The whole screen: lays out the panels, or says that the terminal is too small.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::App;
use super::{confusion, footer, help, layers, log, loss, settings, status, transforms, units};

/// Smallest usable terminal: below this a message replaces the dashboard.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// From this size on (width, height of the log area), the unit view sits beside the log.
const SIDE_BY_SIDE: (u16, u16) = (110, 14);
/// Width of the transformations panel beside the loss panel.
const TRANSFORMS_WIDTH: u16 = 24;

/// Draws the dashboard into the frame.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, app);
        return;
    }
    let layer_rows = app.layers.len().max(1) as u16;
    let status_height = status::height(app);
    let loss_rows = loss::sparkline_rows(app);
    let fixed = status_height + layer_rows + 3 + 1;
    let free = area.height.saturating_sub(fixed);
    let loss_height = if app.chart {
        (free / 2).max(loss_rows + 2).min(free.saturating_sub(3))
    } else {
        (loss_rows + 2).min(free.saturating_sub(3))
    };
    let [status_area, top, layers_area, bottom, footer_area] = Layout::vertical([
        Constraint::Length(status_height),
        Constraint::Length(loss_height),
        Constraint::Length(layer_rows + 3),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let [loss_area, transforms_area] =
        Layout::horizontal([Constraint::Min(30), Constraint::Length(TRANSFORMS_WIDTH)]).areas(top);
    status::draw(frame, status_area, app);
    loss::draw(frame, loss_area, app);
    transforms::draw(frame, transforms_area, app);
    layers::draw(frame, layers_area, app);
    if app.unit_view {
        units::draw(frame, bottom, app);
    } else if bottom.width >= SIDE_BY_SIDE.0 && bottom.height >= SIDE_BY_SIDE.1 {
        // Room to spare: the selected layer's units stay in view beside the log.
        let [log_area, units_area] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(bottom);
        log::draw(frame, log_area, app);
        units::draw(frame, units_area, app);
    } else {
        log::draw(frame, bottom, app);
    }
    footer::draw(frame, footer_area, app);
    if app.help {
        help::draw(frame, area, app.read_only);
    } else if app.confusion_view {
        confusion::draw(frame, area, app);
    } else if app.confirm_quit {
        confirm_quit(frame, area, app.read_only);
    } else if app.settings.is_some() {
        settings::draw(frame, area, app);
    }
}

fn too_small(frame: &mut Frame, area: Rect, app: &App) {
    let last = if app.confirm_quit && app.read_only {
        "close this viewer? y: yes (the run goes on)"
    } else if app.confirm_quit {
        "s stops and saves, d detaches"
    } else {
        "enlarge it, or press q to quit"
    };
    let text = vec![
        Line::from("ltmlp: terminal too small"),
        Line::from(format!(
            "{}×{}, needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::from(last),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn confirm_quit(frame: &mut Frame, area: Rect, read_only: bool) {
    let bold = |s: &'static str| {
        ratatui::text::Span::styled(s, Style::default().add_modifier(Modifier::BOLD))
    };
    let raw = ratatui::text::Span::raw;
    let (title, text) = if read_only {
        (
            " Close the viewer? ",
            vec![
                Line::from("This viewer only watches: the run goes on."),
                Line::from(vec![bold("y"), raw(": close   any other key: stay")]),
            ],
        )
    } else {
        (
            " Stop the run, or detach? ",
            vec![
                Line::from("Training is still going."),
                Line::from(vec![bold("s"), raw(": stop it, save its files and quit")]),
                Line::from(vec![
                    bold("d"),
                    raw(": detach, it trains on (ltmlp attach)"),
                ]),
                Line::from("any other key: stay"),
            ],
        )
    };
    let popup = centered(area, 48, text.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(Style::default().fg(Color::Yellow));
    frame.render_widget(Paragraph::new(text).block(block), popup);
}

/// A rectangle of at most `width`×`height`, centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A panel frame with a title.
pub fn panel(title: impl Into<String>) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::DarkGray))
        .title(format!(" {} ", title.into()))
}

/// Figures for the panels: NaN as NaN, infinities as inf, otherwise `decimals` places.
pub fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{v:.decimals$}")
    }
}

/// `num(v, decimals)` if it fits in `width` characters, else scientific notation.
pub fn fit(v: f64, decimals: usize, width: usize) -> String {
    let plain = num(v, decimals);
    if plain.chars().count() <= width || !v.is_finite() {
        return format!("{plain:>width$}");
    }
    format!("{:>width$}", format!("{v:.0e}"))
}

/// h:mm:ss or m:ss.
pub fn clock(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "-".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_fit_their_columns() {
        assert_eq!(fit(0.5, 2, 5), " 0.50");
        assert_eq!(fit(35621.3, 2, 5), "  4e4");
        assert_eq!(fit(f64::NAN, 3, 5), "  NaN");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(65.0), "1:05");
    }
}
