//! The dashboard's state: fed by training `Event`s and keys, free of terminal code, so that it
//! can be tested without a terminal.

use std::collections::VecDeque;

use ratatui::crossterm::event::{KeyEvent, KeyEventKind};

use super::keymap::{self, KeyAction, LEARNING_RATE_FACTOR};
use crate::net::Flags;
use crate::stats::LayerStats;
use crate::train::protocol::TransformCause;
use crate::train::{
    Command, EpochMetrics, Event, Progress, RunInfo, RunState, Summary, TransformEvent,
};

/// Most lines kept in the event log.
const LOG_CAPACITY: usize = 500;
/// Most training-loss points kept; beyond this, neighbours are merged (the whole run stays
/// visible at half the resolution).
const LOSS_POINTS: usize = 4096;

/// What the terminal loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Send this command to the trainer.
    Send(Command),
    /// Leave the dashboard (stopping training if it still runs).
    Quit,
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
}

/// One evaluation, as the loss panel needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    pub epoch: usize,
    pub iteration: u64,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub validation_error: Option<f64>,
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
    pub confirm_quit: bool,
    /// Something changed since the last draw.
    pub dirty: bool,
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
            confirm_quit: false,
            dirty: true,
        }
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
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            iteration,
            kind,
            text: text.into(),
        });
        self.dirty = true;
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
            Event::Epoch(m) => self.on_epoch(*m),
            Event::Layers { iteration, layers } => {
                if iteration >= self.layers_iteration || self.layers.is_empty() {
                    self.set_layers(iteration, layers);
                }
            }
            Event::Transform(t) => {
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
                    // Progress reports are rate-limited; the summary has the last iteration.
                    p.iteration = summary.iterations;
                }
                self.state = summary.state;
                self.confirm_quit = false;
                self.summary = Some(*summary);
            }
            Event::Failed(reason) => {
                self.push_log(Some(self.iteration()), LogKind::Error, reason);
            }
        }
    }

    fn on_epoch(&mut self, m: EpochMetrics) {
        let scheduled: Vec<&TransformEvent> = m
            .transform_events
            .iter()
            .filter(|t| t.cause == TransformCause::Scheduled)
            .collect();
        if let Some(last) = scheduled.last() {
            let largest = scheduled
                .iter()
                .map(|t| t.max_output_change)
                .fold(f64::NAN, f64::max);
            let text = if scheduled.len() == 1 {
                format!("re-estimated (scheduled), max Δout {}", sci(largest))
            } else {
                format!(
                    "{} scheduled re-estimations, max Δout {}",
                    scheduled.len(),
                    sci(largest)
                )
            };
            self.push_log(Some(last.iteration), LogKind::Transform, text);
        }
        self.flags = m.flags;
        self.epochs.push(EpochPoint {
            epoch: m.epoch,
            iteration: m.iteration,
            train_loss: m.train_loss,
            validation_loss: m.validation_loss,
            validation_error: m.validation_error,
        });
        if m.iteration >= self.layers_iteration {
            self.set_layers(m.iteration, m.layers);
        }
    }

    fn set_layers(&mut self, iteration: u64, layers: Vec<LayerStats>) {
        self.layers_iteration = iteration;
        self.layers = layers;
        if self.selected >= self.layers.len() {
            self.selected = self.layers.len().saturating_sub(1);
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
                ratatui::crossterm::event::KeyCode::Char('y' | 'Y' | 'q') => Some(Action::Quit),
                _ => None,
            };
        }
        if key.code == ratatui::crossterm::event::KeyCode::Esc {
            if self.help {
                self.help = false;
            } else {
                self.unit_view = false;
            }
            return None;
        }
        self.on_action(keymap::lookup(&key)?)
    }

    /// Carries out one key action.
    pub fn on_action(&mut self, action: KeyAction) -> Option<Action> {
        self.dirty = true;
        let training = self.training();
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
            KeyAction::SelectUp => self.selected = self.selected.saturating_sub(1),
            KeyAction::SelectDown => {
                if self.selected + 1 < self.layers.len() {
                    self.selected += 1;
                }
            }
            KeyAction::UnitView => self.unit_view = !self.unit_view,
            KeyAction::Chart => self.chart = !self.chart,
            KeyAction::LogScale => self.log_scale = !self.log_scale,
            KeyAction::Marker => {
                self.marker = match self.marker {
                    ChartMarker::Braille => ChartMarker::HalfBlock,
                    ChartMarker::HalfBlock => ChartMarker::Braille,
                }
            }
            KeyAction::Help => self.help = !self.help,
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

/// "α off, max Δout 3.1e-9" and the like.
pub fn transform_text(t: &TransformEvent) -> String {
    let what = match t.cause {
        TransformCause::Switch { param, on } => {
            format!(
                "{} switched {}",
                param.symbol(),
                if on { "on" } else { "off" }
            )
        }
        TransformCause::Manual => "re-estimated (manual)".to_string(),
        TransformCause::Scheduled => "re-estimated (scheduled)".to_string(),
    };
    format!(
        "{what}, max Δout {} → {}",
        sci(t.max_output_change),
        t.flags.label()
    )
}

/// Scientific notation with two digits, NaN as NaN.
pub fn sci(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.1e}")
    }
}
