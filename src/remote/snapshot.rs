//! What a viewer that attaches late needs to see the whole run: the events so far, folded
//! into a bounded picture that is replayed to it as events before the live ones.

use std::collections::VecDeque;

use crate::protocol::{best, STEERING_LINE_LOOKBACK};
use crate::train::{EpochMetrics, Event, Progress, RunInfo, RunState, Summary, Tunable};

use super::wire::Status;
use crate::stats::LayerStats;

/// Loss points kept for the sparkline (older ones are thinned to every other one).
const PROGRESS_POINTS: usize = 2048;
/// Log-like events kept (log lines, switches, re-estimations, failures, steering).
const TAIL_EVENTS: usize = 300;

/// The run so far.
#[derive(Debug, Default)]
pub struct Snapshot {
    info: Option<RunInfo>,
    /// Every evaluation; of the older ones' per-unit statistics only what the dashboard's
    /// heat strips show (each unit's output std and slope), the latest's whole.
    epochs: Vec<EpochMetrics>,
    layers: Option<(u64, Vec<LayerStats>)>,
    progress: Vec<Progress>,
    /// The latest position report (no new loss).
    position: Option<Progress>,
    /// Log-like events, each with the iteration it belongs to: its own where it says (a
    /// switch, a command), else where the run was when it came.
    tail: VecDeque<(u64, Event)>,
    state: Option<RunState>,
    tunables: Vec<Tunable>,
    finished: Option<Summary>,
    steering_actions: usize,
    /// The switches now (from the latest evaluation or change).
    flags: Option<crate::net::Flags>,
}

impl Snapshot {
    /// Takes in one event of the run.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Started(info) => self.info = Some(info.clone()),
            Event::Progress(p) if p.batch_loss.is_nan() => self.position = Some(*p),
            Event::Progress(p) => {
                self.position = None;
                self.progress.push(*p);
                if self.progress.len() > PROGRESS_POINTS {
                    let mut keep = false;
                    self.progress.retain(|_| {
                        keep = !keep;
                        keep
                    });
                }
            }
            // A late viewer gets the whole record as evaluations, kept or new.
            Event::Epoch(m) | Event::Replayed(m) => {
                // Per-unit statistics of old epochs are cut to the two lists the unit view's
                // history shows, output std and slope (the rest would make a late viewer's
                // snapshot tens of megabytes); the latest layers are kept whole. Old confusion
                // matrices go (the dashboard shows the latest).
                if let Some(last) = self.epochs.last_mut() {
                    for l in &mut last.layers {
                        l.per_unit = crate::stats::UnitStats {
                            std_out: std::mem::take(&mut l.per_unit.std_out),
                            tanh_slope: std::mem::take(&mut l.per_unit.tanh_slope),
                            ..Default::default()
                        };
                    }
                    last.confusion = None;
                }
                self.flags = Some(m.flags);
                self.epochs.push((**m).clone());
            }
            Event::Layers { iteration, layers } => {
                if self.layers.as_ref().is_none_or(|(it, _)| iteration >= it) {
                    self.layers = Some((*iteration, layers.clone()));
                }
            }
            Event::State(s) => self.state = Some(*s),
            Event::Tunables(t) => self.tunables = t.clone(),
            Event::Finished(s) => {
                self.state = Some(s.state);
                self.finished = Some((**s).clone());
            }
            Event::Steered(s) => {
                self.steering_actions += 1;
                self.date_steering_line(s);
                self.push_tail(s.iteration, event);
            }
            Event::Transform(t) => {
                self.flags = Some(t.flags);
                self.push_tail(t.iteration, event);
            }
            Event::Log(_) | Event::Failed(_) => self.push_tail(self.iteration_now(), event),
        }
    }

    /// The latest iteration the run has told of.
    fn iteration_now(&self) -> u64 {
        let progress = self.position.or(self.progress.last().copied());
        progress
            .map_or(0, |p| p.iteration)
            .max(self.epochs.last().map_or(0, |m| m.iteration))
    }

    /// The trainer sends a command's log line just before its `Steered` event: that line
    /// belongs to the command's own iteration (progress reports are rate-limited, so where the
    /// run was last heard of can be earlier).
    fn date_steering_line(&mut self, steer: &crate::train::Steer) {
        let line = self
            .tail
            .iter_mut()
            .rev()
            .take(STEERING_LINE_LOOKBACK)
            .find(|(_, e)| matches!(e, Event::Log(text) if steer.is_its_log_line(text)));
        if let Some((iteration, _)) = line {
            *iteration = steer.iteration;
        }
    }

    fn push_tail(&mut self, iteration: u64, event: &Event) {
        if self.tail.len() == TAIL_EVENTS {
            self.tail.pop_front();
        }
        self.tail.push_back((iteration, event.clone()));
    }

    /// The run so far as events, in an order a fresh dashboard can take in.
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        out.extend(self.info.clone().map(Event::Started));
        if !self.tunables.is_empty() {
            out.push(Event::Tunables(self.tunables.clone()));
        }
        // The progress points and log lines come in iteration order around the epochs (a
        // progress point first where they share one).
        let mut progress = self.progress.iter().peekable();
        let mut tail = self.tail.iter().peekable();
        let mut merge = |out: &mut Vec<Event>, until: u64| loop {
            let p = progress
                .peek()
                .map(|p| p.iteration)
                .filter(|&it| it <= until);
            let t = tail.peek().map(|(it, _)| *it).filter(|&it| it <= until);
            match (p, t) {
                (Some(p), Some(t)) if p <= t => {
                    out.extend(progress.next().map(|p| Event::Progress(*p)))
                }
                (_, Some(_)) => out.extend(tail.next().map(|(_, e)| e.clone())),
                (Some(_), None) => out.extend(progress.next().map(|p| Event::Progress(*p))),
                (None, None) => break,
            }
        };
        for m in &self.epochs {
            merge(&mut out, m.iteration);
            out.push(Event::Epoch(Box::new(m.clone())));
        }
        merge(&mut out, u64::MAX);
        out.extend(self.position.map(Event::Progress));
        if let Some((iteration, layers)) = &self.layers {
            out.push(Event::Layers {
                iteration: *iteration,
                layers: layers.clone(),
            });
        }
        out.extend(self.state.map(Event::State));
        out.extend(self.finished.clone().map(|s| Event::Finished(Box::new(s))));
        out
    }

    /// Where the run is now.
    pub fn status(&self, dir: &str, pid: u32, viewers: usize) -> Status {
        let last_progress = self.position.or(self.progress.last().copied());
        let best = best::best_of(&self.epochs).map(best::validation_figure);
        Status {
            dir: dir.to_string(),
            pid,
            state: self.state,
            preset: self.info.as_ref().map(|i| i.preset.clone()),
            variant: self.info.as_ref().map(|i| i.variant.clone()),
            epoch: self.epochs.last().map_or(0, |m| m.epoch),
            // The run's length is a live setting: its latest value wins.
            epochs: self
                .tunables
                .iter()
                .find(|t| t.key == "train.epochs")
                .and_then(|t| t.value.parse().ok())
                .unwrap_or(self.info.as_ref().map_or(0, |i| i.epochs)),
            iteration: last_progress.map_or(0, |p| p.iteration),
            learning_rate: last_progress.map(|p| p.learning_rate),
            flags: self.flags,
            best,
            viewers,
            steering_actions: self.steering_actions,
            tunables: self.tunables.clone(),
            commands: self
                .info
                .as_ref()
                .and_then(|i| i.trainer.as_ref())
                .map(|t| t.commands.clone()),
        }
    }
}
