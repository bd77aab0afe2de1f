//! The dashboard's state: fed by training `Event`s and keys, free of terminal code, so that it
//! can be tested without a terminal.

use std::cell::Cell;
use std::collections::VecDeque;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use super::health::{self, Alert};
use super::keymap::{self, KeyAction, LEARNING_RATE_FACTOR};
use crate::confusion::EpochConfusion;
use crate::net::Flags;
pub use crate::protocol::wording::{sci, transform_text};
use crate::protocol::{TransformCause, STEERING_LINE_LOOKBACK};
use crate::stats::LayerStats;
use crate::train::{
    Command, EpochMetrics, Event, Progress, RunInfo, RunState, Steer, Summary, TransformEvent,
    Tunable,
};

/// Most lines kept in the event log.
const LOG_CAPACITY: usize = 500;
/// Most training-loss points kept; beyond this, neighbours are merged (the whole run stays
/// visible at half the resolution).
const LOSS_POINTS: usize = 4096;
/// Epochs shown by the loss panel's "recent" window (`w`).
pub const RECENT_EPOCHS: usize = 10;
/// The smoothing factors of the minibatch loss that `[` and `]` step through (TensorBoard's
/// debiased exponential moving average; 0 is no smoothing).
pub const SMOOTHING_STEPS: [f64; 7] = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99];
/// Evaluations kept for the heat strips; beyond, every other one is dropped (a run of that
/// many epochs is drawn a column per many epochs anyway).
pub const SPREAD_EPOCHS: usize = 8192;
/// Bounds of the unit-spread bins (output std), lowest first; the strip's rows.
pub const SPREAD_BINS: [f64; 6] = [0.0, 0.03, 0.1, 0.3, 0.6, 1.0];
/// Bounds of the slope bins (mean tanh′, 1 linear, near 0 saturated), lowest first.
pub const SLOPE_BINS: [f64; 6] = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9];

/// What the terminal loop must do after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this command to the trainer.
    Send(Command),
    /// Leave the dashboard; a run still training goes on (detach).
    Quit,
    /// Stop the run, wait for its files, then leave.
    Stop,
}

/// The live-settings editor (`e`): a list of the run's tunables, one of them perhaps being
/// edited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsEditor {
    pub selected: usize,
    /// The new value being typed for the selected setting.
    pub input: Option<String>,
}

/// How the event log colours a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Info,
    Transform,
    Warning,
    Error,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub iteration: Option<u64>,
    pub kind: LogKind,
    pub text: String,
    /// Scheduled re-estimations summarised on this line, which later ones extend while no
    /// other line comes between (0 for every other line).
    pub scheduled: usize,
}

/// The running summary of consecutive scheduled re-estimations (one log line).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScheduledRun {
    count: usize,
    first: u64,
    largest: f64,
}

/// One evaluation, as the loss panel needs it: the clean training, validation and test figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    pub epoch: usize,
    pub iteration: u64,
    pub train_loss: f64,
    pub train_error: Option<f64>,
    pub validation_loss: f64,
    pub validation_error: Option<f64>,
    pub test_loss: f64,
    pub test_error: Option<f64>,
}

/// What part of the run the loss panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossWindow {
    Whole,
    /// The last [`RECENT_EPOCHS`] epochs.
    Recent,
}

/// One evaluation reduced to the distribution of its units in every hidden layer: how many
/// units' output std falls in each of [`SPREAD_BINS`], and their slope in [`SLOPE_BINS`].
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSpread {
    pub epoch: usize,
    pub layers: Vec<LayerSpread>,
}

/// One layer's units at one evaluation (`layer`: its index, the input layer being 0).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpread {
    pub layer: usize,
    pub std: [usize; SPREAD_BINS.len()],
    pub slope: [usize; SLOPE_BINS.len()],
}

impl EpochSpread {
    /// The evaluation's distributions; `None` when it holds no per-unit statistics.
    pub fn of(m: &EpochMetrics) -> Option<Self> {
        let layers: Vec<LayerSpread> = m
            .layers
            .iter()
            .filter(|l| !l.per_unit.std_out.is_empty())
            .map(|l| {
                let mut std = [0; SPREAD_BINS.len()];
                for &s in &l.per_unit.std_out {
                    std[bin_of(&SPREAD_BINS, s)] += 1;
                }
                let mut slope = [0; SLOPE_BINS.len()];
                for &s in &l.per_unit.tanh_slope {
                    slope[bin_of(&SLOPE_BINS, s)] += 1;
                }
                LayerSpread {
                    layer: l.layer,
                    std,
                    slope,
                }
            })
            .collect();
        (!layers.is_empty()).then_some(EpochSpread {
            epoch: m.epoch,
            layers,
        })
    }
}

/// The chart marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartMarker {
    Braille,
    HalfBlock,
}

/// Everything the views show.
#[derive(Debug, Clone)]
pub struct App {
    pub info: Option<RunInfo>,
    pub state: RunState,
    pub flags: Flags,
    pub progress: Option<Progress>,
    /// (iteration, mean training loss since the previous point).
    pub train_loss: Vec<(u64, f64)>,
    pub epochs: Vec<EpochPoint>,
    pub layers: Vec<LayerStats>,
    pub layers_iteration: u64,
    pub last_transform: Option<TransformEvent>,
    pub log: VecDeque<LogLine>,
    pub summary: Option<Summary>,
    /// Run folder shown in the status panel.
    pub out_dir: Option<String>,
    pub selected: usize,
    pub unit_view: bool,
    pub chart: bool,
    pub log_scale: bool,
    pub marker: ChartMarker,
    pub help: bool,
    /// The confusion-matrix popup (`x`) is open.
    pub confusion_view: bool,
    /// The matrices of the latest evaluation that had them, and its epoch.
    pub confusion: Option<(usize, EpochConfusion)>,
    pub confirm_quit: bool,
    /// A viewer that only watches (`ltmlp watch`): no steering keys.
    pub read_only: bool,
    /// The run's live settings and their values.
    pub tunables: Vec<Tunable>,
    pub settings: Option<SettingsEditor>,
    /// A stop was asked for: the dashboard leaves once the run's files are written.
    pub stopping: bool,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub window: LossWindow,
    /// Index into [`SMOOTHING_STEPS`].
    pub smoothing: usize,
    /// Log lines scrolled back from the newest (0: following the end).
    pub log_scroll: usize,
    /// Rows of the log panel at the last draw: the page of PgUp / PgDn.
    pub log_page: Cell<usize>,
    /// The log filter being typed after `/` (keys go to it, not to the dashboard).
    pub filter_input: Option<String>,
    /// The applied log filter (case-insensitive substring); empty: every line.
    pub log_filter: String,
    /// The alerts that hold now (banner).
    pub alerts: Vec<Alert>,
    /// Whether the γ blow-up hint was logged (once per run).
    pub gamma_hint_given: bool,
    /// The unit under the unit view's cursor.
    pub unit_cursor: usize,
    /// The units' distributions at every evaluation of the run (kept or new), oldest first.
    pub epoch_spread: Vec<EpochSpread>,
    scheduled_run: Option<ScheduledRun>,
}

impl App {
    /// A fresh dashboard for a run that starts with these transformation flags.
    pub fn new(flags: Flags) -> Self {
        App {
            info: None,
            state: RunState::Running,
            flags,
            progress: None,
            train_loss: Vec::new(),
            epochs: Vec::new(),
            layers: Vec::new(),
            layers_iteration: 0,
            last_transform: None,
            log: VecDeque::new(),
            summary: None,
            out_dir: None,
            selected: 0,
            unit_view: false,
            chart: false,
            log_scale: false,
            marker: ChartMarker::Braille,
            help: false,
            confusion_view: false,
            confusion: None,
            confirm_quit: false,
            read_only: false,
            tunables: Vec::new(),
            settings: None,
            stopping: false,
            dirty: true,
            window: LossWindow::Whole,
            smoothing: 2,
            log_scroll: 0,
            log_page: Cell::new(10),
            filter_input: None,
            log_filter: String::new(),
            alerts: Vec::new(),
            gamma_hint_given: false,
            unit_cursor: 0,
            epoch_spread: Vec::new(),
            scheduled_run: None,
        }
    }

    /// The smoothing factor of the minibatch loss line.
    pub fn smoothing_factor(&self) -> f64 {
        SMOOTHING_STEPS[self.smoothing.min(SMOOTHING_STEPS.len() - 1)]
    }

    /// Whether a popup (help, confusion matrix, quit question, filter input, settings) takes
    /// the keys.
    pub fn popup_open(&self) -> bool {
        self.help
            || self.confusion_view
            || self.confirm_quit
            || self.filter_input.is_some()
            || self.settings.is_some()
    }

    /// Forgets the run's picture (the viewer fell behind and gets it again from the start);
    /// what the user chose to look at stays.
    pub fn reset(&mut self) {
        let mut fresh = App::new(self.flags);
        fresh.read_only = self.read_only;
        fresh.out_dir = self.out_dir.take();
        fresh.selected = self.selected;
        fresh.unit_view = self.unit_view;
        fresh.chart = self.chart;
        fresh.log_scale = self.log_scale;
        fresh.marker = self.marker;
        fresh.window = self.window;
        fresh.smoothing = self.smoothing;
        fresh.stopping = self.stopping;
        *self = fresh;
    }

    /// The log lines that pass the filter, oldest first.
    pub fn filtered_log(&self) -> Vec<&LogLine> {
        let needle = self.log_filter.to_lowercase();
        self.log
            .iter()
            .filter(|l| needle.is_empty() || l.text.to_lowercase().contains(&needle))
            .collect()
    }

    /// The iteration of the latest news from the trainer.
    pub fn iteration(&self) -> u64 {
        self.progress.map_or(0, |p| p.iteration)
    }

    /// Total iterations of the run, once known.
    pub fn total_iterations(&self) -> Option<u64> {
        self.info
            .as_ref()
            .map(|i| (i.epochs * i.iterations_per_epoch) as u64)
    }

    /// Whether training is still going (running or paused).
    pub fn training(&self) -> bool {
        !self.state.is_over() && self.summary.is_none()
    }

    /// The selected hidden layer's statistics.
    pub fn selected_layer(&self) -> Option<&LayerStats> {
        self.layers.get(self.selected)
    }

    /// Seconds left at the current speed, while running.
    pub fn eta_seconds(&self) -> Option<f64> {
        let p = self.progress?;
        let total = self.total_iterations()?;
        if self.state != RunState::Running || p.iteration == 0 || p.elapsed_seconds <= 0.0 {
            return None;
        }
        let per_iteration = p.elapsed_seconds / p.iteration as f64;
        Some(per_iteration * total.saturating_sub(p.iteration) as f64)
    }

    pub fn push_log(&mut self, iteration: Option<u64>, kind: LogKind, text: impl Into<String>) {
        self.scheduled_run = None;
        self.push_line(LogLine {
            iteration,
            kind,
            text: text.into(),
            scheduled: 0,
        });
    }

    fn push_line(&mut self, line: LogLine) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
        // A reader scrolled back keeps the same lines in view.
        if self.log_scroll > 0 {
            self.log_scroll += 1;
        }
        self.dirty = true;
    }

    /// Gives the log line of a steering command (sent just before its `Steered` event) the
    /// iteration the command took effect at.
    fn date_steering_line(&mut self, steer: &Steer) {
        // The line is among the last few (an alert or a re-estimation may follow it).
        if let Some(line) = self
            .log
            .iter_mut()
            .rev()
            .take(STEERING_LINE_LOOKBACK)
            .find(|l| steer.is_its_log_line(&l.text))
        {
            line.iteration = Some(steer.iteration);
            self.dirty = true;
        }
    }

    /// Logs scheduled re-estimations: consecutive ones share one line, so that a run that
    /// re-estimates every minibatch never floods the log.
    fn log_scheduled(&mut self, events: &[&TransformEvent]) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let largest = events
            .iter()
            .map(|t| t.max_output_change)
            .fold(f64::NAN, f64::max);
        // Any other line since the last summary starts a new one (push_log clears the run).
        let run = match self.scheduled_run {
            Some(run) => ScheduledRun {
                count: run.count + events.len(),
                first: run.first,
                largest: run.largest.max(largest),
            },
            None => ScheduledRun {
                count: events.len(),
                first: first.iteration,
                largest,
            },
        };
        let text = if run.count == 1 {
            format!("re-estimated (scheduled), max Δout {}", sci(run.largest))
        } else {
            format!(
                "{} scheduled re-estimations since it {}, max Δout {}",
                run.count,
                run.first,
                sci(run.largest)
            )
        };
        let line = LogLine {
            iteration: Some(last.iteration),
            kind: LogKind::Transform,
            text,
            scheduled: run.count,
        };
        match self.log.back_mut() {
            Some(back) if self.scheduled_run.is_some() => {
                *back = line;
                self.dirty = true;
            }
            _ => self.push_line(line),
        }
        self.scheduled_run = Some(run);
    }

    /// Recomputes the alerts; each new one is logged once.
    fn check_health(&mut self) {
        let now = health::alerts(&self.epochs, &self.layers);
        for a in &now {
            if !self.alerts.iter().any(|b| b.same_kind(a)) {
                let it = Some(self.iteration());
                self.push_log(it, LogKind::Warning, format!("alert: {}", a.text()));
                let saturated = matches!(a, Alert::Saturated { .. });
                if saturated && self.flags.gamma && !self.gamma_hint_given {
                    self.gamma_hint_given = true;
                    let hint = health::GAMMA_BLOW_UP_HINT.to_string();
                    self.push_log(it, LogKind::Warning, hint);
                }
            }
        }
        self.alerts = now;
    }

    /// Moves the status line's position forward to `iteration` (never back): progress reports
    /// are rate-limited, so other events can be newer.
    fn advance_to(&mut self, iteration: u64) {
        if let Some(p) = self.progress.as_mut() {
            if iteration > p.iteration {
                p.iteration = iteration;
                if let Some(info) = &self.info {
                    let per_epoch = info.iterations_per_epoch.max(1) as u64;
                    p.epoch = (iteration / per_epoch) as usize;
                }
            }
        }
    }

    /// Takes in one event from the trainer.
    pub fn on_event(&mut self, event: Event) {
        self.dirty = true;
        match event {
            Event::Started(info) => {
                self.push_log(
                    Some(0),
                    LogKind::Info,
                    format!(
                        "started {} [{}]: {}, {} weights, {} epochs × {} iterations",
                        info.preset,
                        info.variant,
                        info.topology,
                        info.weights,
                        info.epochs,
                        info.iterations_per_epoch
                    ),
                );
                if info.out_dir.is_some() {
                    self.out_dir = info.out_dir.clone();
                }
                self.info = Some(info);
            }
            Event::Progress(p) if p.batch_loss.is_nan() && self.progress.is_some() => {
                // A position report (after a pause or a rate change): no new loss.
                self.progress = Some(p);
            }
            Event::Progress(p) => {
                self.train_loss.push((p.iteration, p.batch_loss));
                if self.train_loss.len() > LOSS_POINTS {
                    self.train_loss = self
                        .train_loss
                        .chunks(2)
                        .map(|c| {
                            let (it, _) = c[c.len() - 1];
                            (it, c.iter().map(|&(_, l)| l).sum::<f64>() / c.len() as f64)
                        })
                        .collect();
                }
                self.progress = Some(p);
            }
            Event::Epoch(m) | Event::Replayed(m) => self.on_epoch(*m),
            Event::Layers { iteration, layers } => {
                if iteration >= self.layers_iteration || self.layers.is_empty() {
                    self.set_layers(iteration, layers);
                    self.check_health();
                }
            }
            Event::Transform(t) => {
                self.advance_to(t.iteration);
                self.flags = t.flags;
                self.push_log(Some(t.iteration), LogKind::Transform, transform_text(&t));
                self.last_transform = Some(t);
            }
            Event::State(s) => {
                let it = Some(self.iteration());
                match s {
                    RunState::Paused => self.push_log(it, LogKind::Info, "paused"),
                    RunState::Running if self.state == RunState::Paused => {
                        self.push_log(it, LogKind::Info, "resumed")
                    }
                    RunState::Diverged => {
                        self.push_log(it, LogKind::Error, "training diverged and stopped")
                    }
                    RunState::Stopped => self.push_log(it, LogKind::Info, "training stopped"),
                    _ => {}
                }
                self.state = s;
                if s.is_over() {
                    self.confirm_quit = false;
                }
            }
            Event::Log(line) => {
                let kind = if line.contains("not switched")
                    || line.contains("refused")
                    || line.contains("diverge")
                    || line.contains("NaN")
                {
                    LogKind::Warning
                } else {
                    LogKind::Info
                };
                self.push_log(Some(self.iteration()), kind, line);
            }
            Event::Finished(summary) => {
                let text = format!(
                    "{} after {} epochs ({} iterations), {:.0} examples/s",
                    summary.state.label(),
                    summary.epochs_completed,
                    summary.iterations,
                    summary.examples_per_second
                );
                let kind = if summary.state == RunState::Diverged {
                    LogKind::Error
                } else {
                    LogKind::Info
                };
                self.push_log(Some(summary.iterations), kind, text);
                if let Some(dir) = &summary.out_dir {
                    self.push_log(None, LogKind::Info, format!("files saved in {dir}"));
                    self.out_dir = Some(dir.clone());
                }
                if let Some(p) = self.progress.as_mut() {
                    // Progress reports are rate-limited; the summary has the last position.
                    p.iteration = summary.iterations;
                    p.epoch = summary.epochs_completed;
                }
                self.state = summary.state;
                self.confirm_quit = false;
                self.summary = Some(*summary);
            }
            Event::Failed(reason) => {
                self.push_log(Some(self.iteration()), LogKind::Error, reason);
            }
            // What a command did is in the log line the trainer sends just before; that line
            // was dated by the latest (rate-limited) progress report, the command knows its
            // own iteration.
            Event::Steered(steer) => self.date_steering_line(&steer),
            Event::Tunables(tunables) => {
                let epochs = tunables
                    .iter()
                    .find(|t| t.key == "train.epochs")
                    .and_then(|t| t.value.parse::<usize>().ok());
                if let (Some(info), Some(epochs)) = (self.info.as_mut(), epochs) {
                    info.epochs = epochs;
                }
                self.tunables = tunables;
            }
        }
    }

    fn on_epoch(&mut self, m: EpochMetrics) {
        self.record_spread(&m);
        let scheduled: Vec<&TransformEvent> = m
            .transform_events
            .iter()
            .filter(|t| t.cause == TransformCause::Scheduled)
            .collect();
        self.log_scheduled(&scheduled);
        // Rollbacks happen within steps, so they arrive with the epoch, not as events.
        for t in &m.transform_events {
            if matches!(t.cause, TransformCause::Rollback { .. }) {
                self.push_log(Some(t.iteration), LogKind::Warning, transform_text(t));
                self.last_transform = Some(*t);
            }
        }
        if let Some(&&last) = scheduled.last() {
            if self
                .last_transform
                .is_none_or(|t| last.iteration >= t.iteration)
            {
                self.last_transform = Some(last);
            }
        }
        self.flags = m.flags;
        if let Some(c) = m.confusion {
            if self.confusion.as_ref().is_none_or(|(e, _)| m.epoch >= *e) {
                self.confusion = Some((m.epoch, *c));
            }
        }
        self.advance_to(m.iteration);
        if let Some(p) = self.progress.as_mut() {
            if p.iteration == m.iteration {
                p.learning_rate = m.learning_rate;
                p.momentum = m.momentum;
            }
        }
        self.epochs.push(EpochPoint {
            epoch: m.epoch,
            iteration: m.iteration,
            train_loss: m.train_loss,
            train_error: m.train_error,
            validation_loss: m.validation_loss,
            validation_error: m.validation_error,
            test_loss: m.test_loss,
            test_error: m.test_error,
        });
        if m.iteration >= self.layers_iteration {
            self.set_layers(m.iteration, m.layers);
        }
        self.check_health();
    }

    fn set_layers(&mut self, iteration: u64, layers: Vec<LayerStats>) {
        self.layers_iteration = iteration;
        self.layers = layers;
        if self.selected >= self.layers.len() {
            self.selected = self.layers.len().saturating_sub(1);
        }
        self.clamp_cursor();
    }

    /// Adds the evaluation's unit distributions to the heat strips' history (a repeated epoch,
    /// after a rollback, replaces the later ones).
    fn record_spread(&mut self, m: &EpochMetrics) {
        let Some(spread) = EpochSpread::of(m) else {
            return;
        };
        self.epoch_spread.retain(|s| s.epoch < spread.epoch);
        if self.epoch_spread.len() >= SPREAD_EPOCHS {
            let mut keep = false;
            self.epoch_spread.retain(|_| {
                keep = !keep;
                keep
            });
        }
        self.epoch_spread.push(spread);
    }

    fn clamp_cursor(&mut self) {
        let units = self
            .selected_layer()
            .map_or(0, |l| l.per_unit.std_out.len());
        self.unit_cursor = self.unit_cursor.min(units.saturating_sub(1));
    }

    /// Keys while the log filter is being typed.
    fn on_filter_key(&mut self, key: KeyEvent) {
        let Some(input) = self.filter_input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Enter => {
                self.log_filter = input.trim().to_string();
                self.filter_input = None;
                self.log_scroll = 0;
            }
            KeyCode::Esc => self.filter_input = None,
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char(c) => input.push(c),
            _ => {}
        }
    }

    /// Takes in one key; returns what the terminal loop must do, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.dirty = true;
        if keymap::is_interrupt(&key) {
            return Some(Action::Quit);
        }
        if self.confirm_quit {
            self.confirm_quit = false;
            return match key.code {
                KeyCode::Char('y' | 'Y' | 'q') if self.read_only => Some(Action::Quit),
                KeyCode::Char('s' | 'S' | 'y' | 'Y') if !self.read_only => {
                    self.stopping = true;
                    Some(Action::Stop)
                }
                KeyCode::Char('d' | 'D') if !self.read_only => Some(Action::Quit),
                _ => None,
            };
        }
        if self.settings.is_some() {
            return self.on_settings_key(key);
        }
        if self.filter_input.is_some() {
            self.on_filter_key(key);
            return None;
        }
        if self.help {
            // Keys never act behind the popup: only its own keys close it.
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('?' | 'q')) {
                self.help = false;
            }
            return None;
        }
        if self.confusion_view {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('x' | 'q')) {
                self.confusion_view = false;
            }
            return None;
        }
        if key.code == KeyCode::Esc {
            if !self.log_filter.is_empty() {
                self.log_filter.clear();
            } else {
                self.unit_view = false;
            }
            return None;
        }
        self.on_action(keymap::lookup(&key)?)
    }

    /// Keys while the settings editor is open.
    fn on_settings_key(&mut self, key: KeyEvent) -> Option<Action> {
        let count = self.tunables.len();
        let editor = self.settings.as_mut()?;
        if let Some(input) = editor.input.as_mut() {
            match key.code {
                KeyCode::Enter => {
                    let value = input.trim().to_string();
                    editor.input = None;
                    let key = self.tunables.get(editor.selected)?.key.clone();
                    return Some(Action::Send(Command::Set { key, value }));
                }
                KeyCode::Esc => editor.input = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) if input.len() < 200 => input.push(c),
                _ => {}
            }
            return None;
        }
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => editor.selected = editor.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                editor.selected = (editor.selected + 1).min(count.saturating_sub(1))
            }
            KeyCode::Enter => {
                editor.input = self.tunables.get(editor.selected).map(|t| t.value.clone())
            }
            KeyCode::Esc | KeyCode::Char('e' | 'q') => self.settings = None,
            _ => {}
        }
        None
    }

    /// Carries out one key action; a command the run's trainer did not declare (a foreign
    /// run's) is not sent, and the log says so.
    pub fn on_action(&mut self, action: KeyAction) -> Option<Action> {
        match self.carry_out(action) {
            Some(Action::Send(command)) if !self.offers(&command) => {
                let name = crate::host::foreign::messages::command_name(&command);
                let trainer = self
                    .info
                    .as_ref()
                    .and_then(|i| i.trainer.as_ref())
                    .map_or_else(String::new, |t| format!("{} {}", t.producer, t.version));
                let text = format!("{trainer} does not carry out `{name}` (not declared)");
                self.push_log(None, LogKind::Info, text);
                None
            }
            outcome => outcome,
        }
    }

    /// Whether the run's trainer carries out `command`: a native one every command, a foreign
    /// one those it declared.
    pub fn offers(&self, command: &Command) -> bool {
        let name = crate::host::foreign::messages::command_name(command);
        self.info
            .as_ref()
            .and_then(|i| i.trainer.as_ref())
            .is_none_or(|t| t.commands.iter().any(|c| c == name))
    }

    fn carry_out(&mut self, action: KeyAction) -> Option<Action> {
        self.dirty = true;
        let training = self.training();
        let steers = keymap::KEYS
            .iter()
            .any(|b| b.steers && b.keys.iter().any(|&(_, a)| a == action));
        if steers && self.read_only {
            self.push_log(
                None,
                LogKind::Info,
                "read-only viewer: `ltmlp attach DIR` steers the run",
            );
            return None;
        }
        match action {
            KeyAction::PauseResume => match self.state {
                RunState::Running if training => return Some(Action::Send(Command::Pause)),
                RunState::Paused if training => return Some(Action::Send(Command::Resume)),
                _ => {}
            },
            KeyAction::Step => {
                if self.state == RunState::Paused && training {
                    return Some(Action::Send(Command::Step));
                }
                if training {
                    self.push_log(None, LogKind::Info, "n runs one minibatch while paused");
                }
            }
            KeyAction::Toggle(p) if training => return Some(Action::Send(Command::Toggle(p))),
            KeyAction::Reestimate if training => return Some(Action::Send(Command::Reestimate)),
            KeyAction::Checkpoint if training => return Some(Action::Send(Command::Checkpoint)),
            KeyAction::Curvature if training => return Some(Action::Send(Command::Curvature)),
            KeyAction::FasterLearning if training => {
                return Some(Action::Send(Command::ScaleLearningRate(
                    LEARNING_RATE_FACTOR,
                )))
            }
            KeyAction::SlowerLearning if training => {
                return Some(Action::Send(Command::ScaleLearningRate(
                    1.0 / LEARNING_RATE_FACTOR,
                )))
            }
            KeyAction::Toggle(_)
            | KeyAction::Reestimate
            | KeyAction::Checkpoint
            | KeyAction::Curvature
            | KeyAction::FasterLearning
            | KeyAction::SlowerLearning => {
                self.push_log(None, LogKind::Info, "training is over");
            }
            KeyAction::SelectUp => {
                self.selected = self.selected.saturating_sub(1);
                self.clamp_cursor();
            }
            KeyAction::SelectDown => {
                if self.selected + 1 < self.layers.len() {
                    self.selected += 1;
                }
                self.clamp_cursor();
            }
            KeyAction::UnitView => self.unit_view = !self.unit_view,
            KeyAction::UnitLeft => self.unit_cursor = self.unit_cursor.saturating_sub(1),
            KeyAction::UnitRight => {
                self.unit_cursor += 1;
                self.clamp_cursor();
            }
            KeyAction::Window => {
                self.window = match self.window {
                    LossWindow::Whole => LossWindow::Recent,
                    LossWindow::Recent => LossWindow::Whole,
                }
            }
            KeyAction::LessSmoothing => self.smoothing = self.smoothing.saturating_sub(1),
            KeyAction::MoreSmoothing => {
                self.smoothing = (self.smoothing + 1).min(SMOOTHING_STEPS.len() - 1)
            }
            KeyAction::LogPageUp => {
                let most = self.filtered_log().len().saturating_sub(1);
                self.log_scroll = (self.log_scroll + self.log_page.get().max(1)).min(most);
            }
            KeyAction::LogPageDown => {
                self.log_scroll = self.log_scroll.saturating_sub(self.log_page.get().max(1))
            }
            KeyAction::LogOldest => self.log_scroll = self.filtered_log().len().saturating_sub(1),
            KeyAction::LogNewest => self.log_scroll = 0,
            KeyAction::Filter => self.filter_input = Some(self.log_filter.clone()),
            KeyAction::Chart => self.chart = !self.chart,
            KeyAction::LogScale => self.log_scale = !self.log_scale,
            KeyAction::Marker => {
                self.marker = match self.marker {
                    ChartMarker::Braille => ChartMarker::HalfBlock,
                    ChartMarker::HalfBlock => ChartMarker::Braille,
                }
            }
            KeyAction::Settings if training => {
                if self.tunables.is_empty() {
                    self.push_log(None, LogKind::Info, "the run has not said its settings yet");
                } else {
                    self.settings = Some(SettingsEditor::default());
                }
            }
            KeyAction::Settings => self.push_log(None, LogKind::Info, "training is over"),
            KeyAction::Detach => return Some(Action::Quit),
            KeyAction::Help => self.help = !self.help,
            KeyAction::Confusion => self.confusion_view = !self.confusion_view,
            KeyAction::Quit => {
                if training {
                    self.confirm_quit = true;
                } else {
                    return Some(Action::Quit);
                }
            }
        }
        None
    }
}

/// The bin of `value` among `bins` (lower bounds, lowest first; non-finite values go to the
/// lowest bin).
pub fn bin_of(bins: &[f64], value: f64) -> usize {
    bins.iter().rposition(|&lo| value >= lo).unwrap_or(0)
}
