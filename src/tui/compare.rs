//! `ltmlp tui --compare DIR`: the settings of a comparison or sweep folder overlaid (mean validation
//! curve per setting, with a table of the latest figures), re-read every second while the runs
//! progress.

use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Row, Table};
use ratatui::Frame;

use crate::compare::{aggregate, read_runs, VariantReport};
use crate::preset::VARIANTS;

/// How often the folder is read again.
const REFRESH: Duration = Duration::from_secs(1);
/// One colour per variant, in the order of `VARIANTS` (none, ab, abg, bn, ln), then others.
const COLOURS: [Color; 6] = [
    Color::Red,
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
];

/// What the comparison view shows: everything comes from the files, nothing else.
#[derive(Debug, Clone, Default)]
pub struct CompareState {
    pub folder: String,
    pub reports: Vec<VariantReport>,
    pub runs: usize,
    pub in_progress: usize,
    pub log_scale: bool,
    pub error: Option<String>,
}

/// Why a folder cannot be shown as a comparison.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}: is one run's folder, not a comparison; `ltmlp watch {0}` shows it")]
    SingleRun(String),
    #[error(
        "{0}: not a comparison folder (no run folders with a config.toml inside); \
         `ltmlp compare PRESET --out {0}` makes one"
    )]
    NoRuns(String),
    #[error("{0}: {1}")]
    Unreadable(String, std::io::Error),
}

/// Checks that `dir` holds a comparison's runs before the view opens.
pub fn check_folder(dir: &Path) -> Result<(), CompareError> {
    let name = dir.display().to_string();
    if crate::compare::runs::is_run_folder(dir) {
        return Err(CompareError::SingleRun(name));
    }
    let runs = read_runs(dir).map_err(|e| CompareError::Unreadable(name.clone(), e))?;
    if runs.is_empty() {
        return Err(CompareError::NoRuns(name));
    }
    Ok(())
}

impl CompareState {
    /// Reads the folder's runs again.
    pub fn refresh(&mut self, dir: &Path) {
        match read_runs(dir) {
            Ok(runs) => {
                let mut variants: Vec<String> = VARIANTS.iter().map(|v| v.to_string()).collect();
                variants.retain(|v| runs.iter().any(|r| &r.variant == v));
                self.runs = runs.len();
                self.in_progress = runs.iter().filter(|r| r.in_progress()).count();
                self.reports = aggregate(&runs, &variants, None, &[]);
                self.error = (runs.is_empty()).then(|| "no runs yet".to_string());
            }
            Err(e) => self.error = Some(format!("{}: {e}", dir.display())),
        }
    }
}

fn value(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-12).log10()
    } else {
        v
    }
}

/// Draws the comparison view.
pub fn draw(frame: &mut Frame, state: &CompareState) {
    let area = frame.area();
    let table_rows = state.reports.len() as u16 + 3;
    let [title, chart_area, table_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(6),
        Constraint::Length(table_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    let finished = state.runs - state.in_progress;
    let error = state
        .error
        .as_deref()
        .map_or(String::new(), |e| format!(" · {e}"));
    let mut status = format!(
        " COMPARE  {} · {finished} of {} runs finished, {} in progress{error}",
        state.folder, state.runs, state.in_progress,
    );
    if status.chars().count() > area.width as usize {
        // Narrow screens keep the counts whole and let the folder name go first.
        status = format!(
            " COMPARE  {finished}/{} done, {} live{error} · {}",
            state.runs, state.in_progress, state.folder
        );
    }
    frame.render_widget(
        Paragraph::new(status).style(Style::default().add_modifier(Modifier::BOLD)),
        title,
    );
    draw_chart(frame, chart_area, state);
    draw_table(frame, table_area, state);
    frame.render_widget(
        Paragraph::new(" q quit  l log scale  (refreshes every second)"),
        footer,
    );
}

fn draw_chart(frame: &mut Frame, area: Rect, state: &CompareState) {
    let log = state.log_scale;
    let series: Vec<(String, Vec<(f64, f64)>)> = state
        .reports
        .iter()
        .map(|r| {
            let points = r
                .validation_curve
                .iter()
                .filter(|p| p.mean.is_finite())
                .map(|p| (p.epoch as f64, value(p.mean, log)))
                .collect();
            (r.label.clone(), points)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let max_x = all().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let datasets: Vec<Dataset> = series
        .iter()
        .enumerate()
        .map(|(i, (name, points))| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::HalfBlock)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(COLOURS[i % COLOURS.len()]))
                .data(points)
        })
        .collect();
    let metric = state
        .reports
        .first()
        .map_or("validation error %", |r| r.metric.as_str());
    let label = |v: f64| {
        let v = if log { 10f64.powf(v) } else { v };
        Span::raw(format!("{v:.3}"))
    };
    // The legend is part of the title, so that it never hides curves; on narrow screens the
    // description shrinks so that every entry of the legend stays.
    let legend_width: usize = series.iter().map(|(n, _)| n.chars().count() + 3).sum();
    let log_note = if log { " (log)" } else { "" };
    let long = format!(" mean {metric} per variant by epoch{log_note} · ");
    let short = format!(" {metric}{log_note} · ");
    let room = (area.width as usize).saturating_sub(2);
    let mut title = vec![Span::raw(if long.chars().count() + legend_width <= room {
        long
    } else {
        short
    })];
    for (i, (name, _)) in series.iter().enumerate() {
        title.push(Span::styled(
            format!("━ {name} "),
            Style::default().fg(COLOURS[i % COLOURS.len()]),
        ));
    }
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(Line::from(title)),
        )
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([1.0, max_x])
                .labels(vec![Span::raw("1"), Span::raw(format!("{max_x:.0}"))]),
        )
        .y_axis(Axis::default().bounds([lo, hi]).labels(vec![
            label(lo),
            label((lo + hi) / 2.0),
            label(hi),
        ]));
    frame.render_widget(chart, area);
}

/// The table's columns, most important first: on a narrow screen the last ones are dropped
/// whole instead of every one being cut.
const COLUMNS: [(&str, u16); 6] = [
    ("variant", 8),
    ("epoch", 5),
    ("best", 15),
    ("latest", 15),
    ("runs", 14),
    ("collapsed %", 11),
];

fn draw_table(frame: &mut Frame, area: Rect, state: &CompareState) {
    let stat = |s: &Option<crate::compare::Stat>, decimals: usize| {
        s.map_or("–".to_string(), |s| {
            if s.n > 1 {
                format!("{:.decimals$} ± {:.decimals$}", s.mean, s.std)
            } else {
                format!("{:.decimals$}", s.mean)
            }
        })
    };
    // Columns kept: as many as fit, in order of importance (one space between columns).
    let room = area.width.saturating_sub(2);
    let mut used = 0;
    let kept = COLUMNS
        .iter()
        .take_while(|(_, width)| {
            used += width + 1;
            used <= room + 1
        })
        .count()
        .max(1);
    let rows = state.reports.iter().enumerate().map(|(i, r)| {
        let epochs = r.validation_curve.last().map_or(0, |p| p.epoch);
        let mut runs = r.runs.to_string();
        if r.in_progress > 0 {
            runs += &format!(", {} live", r.in_progress);
        }
        if !r.failed.is_empty() {
            runs += &format!(", {} fail", r.failed.len());
        }
        let collapsed = r.collapsed_at_end.map(|s| crate::compare::Stat {
            mean: 100.0 * s.mean,
            std: 100.0 * s.std,
            n: s.n,
        });
        let cells = [
            Line::styled(
                r.variant.clone(),
                Style::default().fg(COLOURS[i % COLOURS.len()]),
            ),
            Line::raw(epochs.to_string()),
            Line::raw(stat(&r.best_validation, 3)),
            Line::raw(stat(&r.final_validation, 3)),
            Line::raw(runs),
            Line::raw(stat(&collapsed, 1)),
        ];
        Row::new(cells.into_iter().take(kept))
    });
    let widths = COLUMNS
        .iter()
        .take(kept)
        .map(|&(_, w)| Constraint::Length(w));
    let table = Table::new(rows, widths)
        .header(
            Row::new(COLUMNS.iter().take(kept).map(|&(name, _)| name))
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" variants (mean ± std over seeds) "),
        );
    frame.render_widget(table, area);
}

/// Shows the comparison folder until the user quits.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    check_folder(dir)?;
    let mut state = CompareState {
        folder: dir.display().to_string(),
        ..CompareState::default()
    };
    state.refresh(dir);
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> anyhow::Result<()> {
        let mut last_read = Instant::now();
        let mut dirty = true;
        loop {
            if last_read.elapsed() >= REFRESH {
                state.refresh(dir);
                last_read = Instant::now();
                dirty = true;
            }
            if dirty {
                terminal.draw(|f| draw(f, &state))?;
                dirty = false;
            }
            if !event::poll(Duration::from_millis(100))? {
                continue;
            }
            match event::read()? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Char('l') => {
                        state.log_scale = !state.log_scale;
                        dirty = true;
                    }
                    _ => {}
                },
                TermEvent::Resize(..) => dirty = true,
                _ => {}
            }
        }
    })();
    ratatui::restore();
    result
}
