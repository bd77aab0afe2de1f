//! The training thread: it owns the network, the data and the run folder, applies `Command`s
//! between minibatches and sends `Event`s without ever waiting for the receiver.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::checkpoint::{self, AnyState, Checkpoint};
use super::guard::GuardMode;
use super::protocol::{
    Command, EpochMetrics, Event, Progress, RunInfo, RunState, Steer, Summary, WallTime,
};
use super::trainer::{CompletedEpoch, EpochEnding, PendingEpoch, Trainer, TrainerState};
use crate::analysis::quick::{quick_curvature, QuickCurvature, Refusal, QUICK_MAX_WEIGHTS};
use crate::data::{self, Dataset, RawData};
use crate::net::{Network, Topology, Workspace};
use crate::preset::{Precision, PresetError, Resolved, Task};
use crate::real::Real;
use crate::sink::actions::ActionLog;
use crate::sink::{claim_existing, claim_new, summarize, Recorder, SinkError, SummaryBase};
use crate::stats::LayerStats;

/// Least time between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// How often a paused trainer looks at the interrupt flag.
const PAUSED_POLL: Duration = Duration::from_millis(200);

/// The prepared data in the run's precision.
#[derive(Clone)]
pub enum AnyData {
    F32(Arc<Dataset<f32>>),
    F64(Arc<Dataset<f64>>),
}

/// Everything a run needs, checked before any thread starts.
pub struct Experiment {
    pub resolved: Resolved,
    pub data: AnyData,
    pub topology: Topology,
    pub data_description: String,
}

impl AnyData {
    /// A fingerprint of the prepared data (see [`Dataset::fingerprint`]).
    pub fn fingerprint(&self) -> u32 {
        match self {
            AnyData::F32(d) => d.fingerprint(),
            AnyData::F64(d) => d.fingerprint(),
        }
    }
}

/// Why an experiment cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Source(#[from] data::SourceError),
    #[error("{file}: {error}")]
    Data {
        file: PathBuf,
        error: data::PrepareError,
    },
}

impl Experiment {
    /// Loads the data (the preset's, or `data_dir` if given) and checks the model against it.
    pub fn prepare(
        mut resolved: Resolved,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, PrepareError> {
        if let Some(dir) = data_dir {
            resolved.preset.data.source = dir.display().to_string();
        }
        let source = resolved.preset.data.source();
        let raw = data::load(&source)?;
        Self::from_raw(resolved, &raw, source.describe())
    }

    /// Builds the experiment from already loaded raw data.
    pub fn from_raw(
        resolved: Resolved,
        raw: &RawData,
        description: String,
    ) -> Result<Self, PrepareError> {
        let prep = resolved.preset.data.preprocess(resolved.preset.model.task);
        let origin = resolved.origin.clone();
        let wrap = |error| PrepareError::Data {
            file: origin.clone(),
            error,
        };
        let data = match resolved.preset.train.precision {
            Precision::F32 => {
                AnyData::F32(Arc::new(data::prepare::<f32>(raw, &prep).map_err(wrap)?))
            }
            Precision::F64 => {
                AnyData::F64(Arc::new(data::prepare::<f64>(raw, &prep).map_err(wrap)?))
            }
        };
        let (input_dim, classes, train) = match &data {
            AnyData::F32(d) => (d.input_dim(), d.target_outputs(), d.train.len()),
            AnyData::F64(d) => (d.input_dim(), d.target_outputs(), d.train.len()),
        };
        let topology = resolved.topology(input_dim, classes, train)?;
        Ok(Experiment {
            resolved,
            data,
            topology,
            data_description: description,
        })
    }
}

/// The front end's side of a running session.
pub struct Session {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub out_dir: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
    /// The control endpoint's hub (runs with a folder).
    hub: Option<crate::remote::hub::Hub>,
}

impl Session {
    /// Waits for the training thread to end, and for the hub to hand out its last events.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(hub) = self.hub.take() {
            hub.join();
        }
    }
}

/// How a session starts.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Run folder; `None` writes no files (and no checkpoints).
    pub out_dir: Option<PathBuf>,
    pub start_paused: bool,
    /// Continue from this checkpoint (taken in `out_dir`).
    pub resume: Option<Checkpoint>,
    /// Save a checkpoint every N epochs (0: only at the end, on request and on signals).
    pub checkpoint_every: usize,
    /// Set to a signal number by a signal handler: stop after the minibatch, save, end.
    pub interrupt: Option<Arc<AtomicUsize>>,
    /// A new run into a folder that already holds one moves the old one aside first.
    pub force: bool,
    /// `--replay`: the recorded actions of another run, applied at their iterations.
    pub replay: Vec<Steer>,
}

/// Starts the training thread. The run folder is locked and its files created (or, on
/// resume, checked) first, so an unwritable, busy or occupied folder is reported before any
/// training.
pub fn spawn(exp: Experiment, options: SessionOptions) -> Result<Session, SinkError> {
    let classify = exp.resolved.preset.model.task == Task::Classify;
    let recorder = match (&options.out_dir, &options.resume) {
        (Some(dir), Some(cp)) => {
            let lock = claim_existing(dir)?;
            // Everything a resume continues is checked before it changes anything.
            crate::sink::actions::check(dir).map_err(SinkError::Actions)?;
            Some(Recorder::resume(
                lock,
                classify,
                cp.metrics_lines,
                cp.metrics_mark,
            )?)
        }
        (Some(dir), None) => Some(Recorder::create(
            claim_new(dir, options.force)?,
            &exp.resolved.to_toml(),
            classify,
        )?),
        (None, _) => None,
    };
    let actions_error = |dir: &std::path::Path, error| SinkError::Write {
        path: dir.join(crate::sink::actions::ACTIONS_FILE),
        error,
    };
    let (recorder, actions) = match (recorder, &options.resume) {
        (Some(rec), Some(cp)) => match ActionLog::resume(rec.dir(), cp.state.iteration()) {
            Ok(log) => (Some(rec), Some(log)),
            Err(message) => return Err(actions_error(rec.dir(), std::io::Error::other(message))),
        },
        (Some(rec), None) => match ActionLog::create(rec.dir()) {
            Ok(log) => (Some(rec), Some(log)),
            Err(error) => {
                let e = actions_error(rec.dir(), error);
                rec.abandon_new();
                return Err(e);
            }
        },
        (None, _) => (None, None),
    };
    let (command_tx, command_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let out_dir = options.out_dir.clone();
    // Every run with a folder can be attached to and steered (docs/protocol.md).
    let (events, hub) = match &out_dir {
        Some(dir) => crate::remote::hub::start(dir, event_rx, command_tx.clone()),
        None => (event_rx, None),
    };
    let thread = std::thread::Builder::new()
        .name("ltmlp-train".into())
        .spawn(move || {
            crate::net::kernels::on_own_pool(move || match exp.data.clone() {
                AnyData::F32(d) => {
                    Driver::<f32>::new(exp, d, recorder, actions, options, command_rx, event_tx)
                        .run()
                }
                AnyData::F64(d) => {
                    Driver::<f64>::new(exp, d, recorder, actions, options, command_rx, event_tx)
                        .run()
                }
            })
        })
        .map_err(|error| SinkError::Write {
            path: PathBuf::from("<training thread>"),
            error,
        })?;
    Ok(Session {
        commands: command_tx,
        events,
        out_dir,
        thread: Some(thread),
        hub,
    })
}

/// The precision-specific part of a checkpoint.
pub trait StateKind: Real {
    fn wrap(state: TrainerState<Self>) -> AnyState;
    fn unwrap(state: AnyState) -> Option<TrainerState<Self>>;
}

impl StateKind for f32 {
    fn wrap(state: TrainerState<Self>) -> AnyState {
        AnyState::F32(state)
    }
    fn unwrap(state: AnyState) -> Option<TrainerState<Self>> {
        match state {
            AnyState::F32(s) => Some(s),
            AnyState::F64(_) => None,
        }
    }
}

impl StateKind for f64 {
    fn wrap(state: TrainerState<Self>) -> AnyState {
        AnyState::F64(state)
    }
    fn unwrap(state: AnyState) -> Option<TrainerState<Self>> {
        match state {
            AnyState::F64(s) => Some(s),
            AnyState::F32(_) => None,
        }
    }
}

/// The training thread's loop: commands in, steps, evaluations, files and events out.
struct Driver<T: Real> {
    exp: Experiment,
    trainer: Trainer<T>,
    recorder: Option<Recorder>,
    options: SessionOptions,
    commands: Receiver<Command>,
    events: Sender<Event>,
    state: RunState,
    reason: Option<String>,
    clock: Clock,
    early_stop: EarlyStop,
    /// Evaluations that could not be written yet (the disk was full, say); retried on resume.
    unwritten: Vec<EpochMetrics>,
    /// A scheduled checkpoint that could not be written yet; retried with the metrics.
    checkpoint_due: bool,
    /// Stored in checkpoints: a resume on other data is refused.
    data_fingerprint: u32,
    config_toml: String,
    /// The state at the end of the last epoch, for rollbacks after a divergence.
    last_good: Option<TrainerState<T>>,
    rollbacks_left: usize,
    /// Where the commands that steer the run are recorded.
    actions: Option<ActionLog>,
    /// Recorded actions still to apply (`--replay`), in order.
    replay: std::collections::VecDeque<Steer>,
    /// Where the wall time went (`steps` is the trainer's own count, filled in when read).
    wall: WallTime,
    /// The last epoch's end, its evaluation still running beside this epoch's steps.
    pending: Option<Overlapped<T>>,
    /// The state and clock a due checkpoint is to hold (an overlapped epoch's end), when it is
    /// not the state now.
    checkpoint_at: Option<(TrainerState<T>, f64)>,
    /// A statistics probe being measured on the free core: its iteration and result.
    probing: Option<(u64, Probing<T>)>,
}

/// A statistics probe measured on another thread: the statistics and the workspace back.
type Probing<T> = JoinHandle<(Vec<LayerStats>, Workspace<T>)>;

/// An epoch's end whose evaluation is overlapped with the next epoch: what its record takes
/// from the moment it ended.
struct Overlapped<T: Real> {
    epoch: Box<PendingEpoch<T>>,
    wall: WallTime,
    clock_seconds: f64,
    checkpoint: bool,
}

/// What taking a finished (or awaited) overlapped evaluation did to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Nothing changed for the steps: train on.
    Going,
    /// The trainer went back to that epoch's end (the paper rule's phase changed, or a rollback).
    WentBack,
    /// The run must end (early stop, or a divergence with no rollback left).
    Ended,
}

impl<T: StateKind> Driver<T> {
    fn new(
        mut exp: Experiment,
        data: Arc<Dataset<T>>,
        recorder: Option<Recorder>,
        actions: Option<ActionLog>,
        mut options: SessionOptions,
        commands: Receiver<Command>,
        events: Sender<Event>,
    ) -> Self {
        // `config.toml` (and the checkpoint's copy) is the run's start: the settings changed
        // live since then are taken from the action log again.
        let mut config_toml = exp.resolved.to_toml();
        if let (Some(rec), Some(_)) = (&recorder, &options.resume) {
            for action in crate::sink::actions::read(rec.dir()).unwrap_or_default() {
                if let (true, Command::Set { key, value }) = (action.ok, &action.command) {
                    if let Ok(next) = super::tunables::retune(&exp.resolved, key, value) {
                        exp.resolved = next;
                    }
                }
            }
        }
        // A resumed run continues its time accounts from its last kept evaluation.
        let wall = recorder
            .iter()
            .flat_map(|r| r.history().last())
            .find_map(|m| m.wall)
            .unwrap_or_default();
        let p = &exp.resolved.preset;
        let net = Network::<T>::init(exp.topology.clone(), p.train.seed);
        let mut trainer = Trainer::new(&exp.resolved, data, net);
        let mut early_stop = EarlyStop::new(p.train.patience.or(p.compare.patience));
        let mut clock_seconds = 0.0;
        let replay = std::mem::take(&mut options.replay);
        if let Some(cp) = options.resume.take() {
            clock_seconds = cp.clock_seconds;
            config_toml = cp.config_toml;
            if let Some(state) = T::unwrap(cp.state) {
                trainer.restore(state);
            }
            for m in recorder.iter().flat_map(|r| r.history()) {
                early_stop.after(m);
            }
        }
        let state = if options.start_paused {
            RunState::Paused
        } else {
            RunState::Running
        };
        let mut clock = Clock::new(state == RunState::Running);
        clock.total = Duration::from_secs_f64(clock_seconds);
        Driver {
            trainer,
            recorder,
            options,
            commands,
            events,
            state,
            reason: None,
            clock,
            early_stop,
            unwritten: Vec::new(),
            checkpoint_due: false,
            data_fingerprint: exp.data.fingerprint(),
            config_toml,
            last_good: None,
            rollbacks_left: exp.resolved.preset.train.divergence_rollbacks,
            actions,
            replay: replay.into(),
            wall,
            pending: None,
            checkpoint_at: None,
            probing: None,
            exp,
        }
    }

    /// After a divergence: goes back to the last epoch's end with half the learning rate if
    /// rollbacks are left (true), or ends the run in the diverged state (false).
    fn roll_back(&mut self, reason: String) -> bool {
        match self.last_good.clone() {
            Some(state) if self.rollbacks_left > 0 => {
                self.rollbacks_left -= 1;
                let rate = self.trainer.learning_rate();
                self.trainer.restore(state);
                self.trainer.set_learning_rate(rate * 0.5);
                let message = format!(
                    "{reason}; rolled back to iteration {} with learning rate {:.4} ({} rollbacks left)",
                    self.trainer.iteration,
                    self.trainer.learning_rate(),
                    self.rollbacks_left
                );
                self.send(Event::Log(message));
                true
            }
            _ => {
                self.state = RunState::Diverged;
                self.reason = Some(reason);
                false
            }
        }
    }

    /// A closed receiver means the front end is gone; training still finishes and saves.
    fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn set_state(&mut self, state: RunState) {
        if state != self.state {
            self.state = state;
            self.clock.set_running(state == RunState::Running);
            self.send_position();
            self.send(Event::State(state));
        }
    }

    /// A progress report of where the run is now, without a new loss (NaN): progress reports
    /// are rate-limited, so a pause or a rate change would otherwise show a stale position.
    fn send_position(&self) {
        self.send(Event::Progress(Progress {
            epoch: self.trainer.epoch,
            iteration: self.trainer.iteration,
            learning_rate: self.trainer.learning_rate(),
            momentum: self.trainer.momentum(),
            examples_per_second: self.trainer.examples_per_second(),
            elapsed_seconds: self.clock.seconds(),
            batch_loss: f64::NAN,
        }));
    }

    /// Saves a checkpoint into the run folder, if there is one.
    /// `Ok(None)` when the run has no folder.
    fn save_checkpoint(&mut self) -> Result<Option<PathBuf>, String> {
        if self.recorder.is_none() {
            return Ok(None);
        }
        let now = (self.trainer.snapshot(), self.clock.seconds());
        self.save_state(now)
    }

    /// Saves `state`, as it was at `clock_seconds` of the run, as the run folder's checkpoint.
    fn save_state(
        &mut self,
        (state, clock_seconds): (TrainerState<T>, f64),
    ) -> Result<Option<PathBuf>, String> {
        let Some(rec) = self.recorder.as_ref() else {
            return Ok(None);
        };
        let mark = rec.mark();
        let cp = Checkpoint {
            config_toml: self.config_toml.clone(),
            metrics_lines: mark.lines,
            clock_seconds,
            state: T::wrap(state),
            metrics_mark: Some(mark),
            data_fingerprint: Some(self.data_fingerprint),
        };
        checkpoint::save(rec.dir(), &cp)
            .map(Some)
            .map_err(|e| format!("checkpoint not saved: {e}"))
    }

    /// The signal that asked us to stop, if any.
    fn interrupted(&self) -> Option<usize> {
        let flag = self.options.interrupt.as_ref()?;
        let signal = flag.load(Ordering::SeqCst);
        (signal != 0).then_some(signal)
    }

    /// Starts a quick curvature reading on a copy of the network; training goes on. Networks
    /// beyond the dense limit get the Krylov method's reading, on one core of its own.
    fn curvature_in_background(&self) {
        let weights = self.trainer.net.params.len(false);
        let dense = weights <= QUICK_MAX_WEIGHTS;
        let net = self.trainer.net.clone();
        let data = Arc::clone(self.trainer.data());
        let (batch, labels) = self.trainer.last_batch();
        let (batch, labels) = (batch.to_owned(), labels.to_vec());
        let iteration = self.trainer.iteration;
        let events = self.events.clone();
        let method = if dense { "dense" } else { "Krylov" };
        self.send(Event::Log(format!(
            "curvature @ it {iteration}: measuring {weights} weights in the background ({method})…"
        )));
        let spawned = std::thread::Builder::new()
            .name("ltmlp-curvature".into())
            .spawn(move || {
                let train = &data.train;
                // The quick measurement reads only its first rows: decode no more of them.
                let rows = train.len().min(crate::analysis::quick::QUICK_MAX_EXAMPLES);
                let x = train.rows(0, rows);
                let (x, y) = (x.view(), train.class_indices());
                let line = if dense {
                    curvature_line(
                        iteration,
                        quick_curvature(&net, x, y, batch.view(), &labels),
                    )
                } else {
                    crate::analysis::quick::krylov_line(
                        iteration,
                        &net,
                        x,
                        y,
                        batch.view(),
                        &labels,
                    )
                };
                let _ = events.send(Event::Log(line));
            });
        if let Err(e) = spawned {
            self.send(Event::Log(format!("curvature: cannot start a thread: {e}")));
        }
    }

    /// Carries out one command, tells every front end what came of it (a `Steered` event)
    /// and records it for replays; returns true when the run must end.
    fn steer(&mut self, command: Command, step_once: &mut bool) -> bool {
        // A command applies where the run would be had it waited for the last epoch's
        // evaluation: that evaluation is taken first.
        let ended = self.settle() == Settled::Ended;
        let iteration = self.trainer.iteration;
        let (end, outcome) = if ended {
            let why = self
                .reason
                .clone()
                .unwrap_or_else(|| "the run ended".into());
            (true, Err(format!("not applied: {why}")))
        } else {
            self.apply(&command, step_once)
        };
        let (ok, message) = match outcome {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        let steer = Steer {
            iteration,
            command,
            ok,
            message,
        };
        if let Some(log) = self.actions.as_mut() {
            if let Err(e) = log.record(&steer) {
                self.send(Event::Log(format!(
                    "action not recorded (a replay will miss it): {e}"
                )));
            }
        }
        self.send(Event::Steered(steer));
        end
    }

    /// Applies one command: (the run must end, what was done or why not).
    fn apply(&mut self, command: &Command, step_once: &mut bool) -> (bool, Result<String, String>) {
        let outcome = match command {
            Command::Pause => {
                self.set_state(RunState::Paused);
                Ok("paused".into())
            }
            Command::Resume => {
                if self.flush_pending() {
                    self.set_state(RunState::Running);
                    Ok("resumed".into())
                } else {
                    Err("the pending files still cannot be written; training stays paused".into())
                }
            }
            Command::Step => {
                *step_once = true;
                Ok("one minibatch".into())
            }
            Command::Stop => {
                self.state = RunState::Stopped;
                return (true, Ok("stopping after this minibatch".into()));
            }
            Command::Checkpoint => match self.save_checkpoint() {
                Ok(Some(path)) => {
                    let m = format!("checkpoint saved: {}", path.display());
                    self.send(Event::Log(m.clone()));
                    Ok(m)
                }
                Ok(None) => {
                    let m = "no run folder: checkpoint not saved".to_string();
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
                Err(e) => {
                    self.send(Event::Log(e.clone()));
                    Err(e)
                }
            },
            Command::Curvature => {
                self.curvature_in_background();
                Ok("curvature measured in the background (the answer is a log line)".into())
            }
            Command::Toggle(which) => match self.trainer.toggle(*which) {
                Ok(event) => {
                    let m = crate::tui::app::transform_text(&event);
                    self.send(Event::Transform(event));
                    self.send_layers();
                    Ok(m)
                }
                Err(e) => {
                    let m = format!("{} not switched: {e}", which.symbol());
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
            },
            Command::Reestimate => match self.trainer.reestimate_now() {
                Ok(event) => {
                    let m = crate::tui::app::transform_text(&event);
                    self.send(Event::Transform(event));
                    self.send_layers();
                    Ok(m)
                }
                Err(e) => {
                    let m = format!("re-estimation refused: {e}");
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
            },
            Command::ScaleLearningRate(f) if f.is_finite() && *f > 0.0 => {
                self.trainer.scale_learning_rate(*f);
                Ok(self.log_position(format!(
                    "learning rate → {:.4}",
                    self.trainer.learning_rate()
                )))
            }
            Command::SetLearningRate(r) if r.is_finite() && *r > 0.0 => {
                self.trainer.set_learning_rate(*r);
                Ok(self.log_position(format!(
                    "learning rate → {:.4}",
                    self.trainer.learning_rate()
                )))
            }
            Command::ScaleLearningRate(v) | Command::SetLearningRate(v) => {
                Err(self.refuse(format!("learning rate: {v} is not a positive number")))
            }
            Command::SetMomentum(m) if m.is_finite() && (0.0..1.0).contains(m) => {
                self.trainer.set_momentum(*m);
                Ok(self.log_position(format!("momentum → {:.3}", self.trainer.momentum())))
            }
            Command::SetMomentum(m) => {
                Err(self.refuse(format!("momentum {m} must be in [0, 1), e.g. 0.9")))
            }
            Command::Set { key, value } => self.retune(key, value),
        };
        (false, outcome)
    }

    /// Logs a refused command and gives its message back.
    fn refuse(&self, message: String) -> String {
        self.send(Event::Log(format!("refused: {message}")));
        message
    }

    /// Logs a change that moved the status line's figures, and sends the new position.
    fn log_position(&self, message: String) -> String {
        self.send(Event::Log(message.clone()));
        self.send_position();
        message
    }

    /// Lets the γ guard look at `layers`; its events go out at once and, when it changed the
    /// network, `layers` is measured again.
    fn guard(&mut self, layers: &mut Vec<crate::stats::LayerStats>) {
        let before = self.trainer.pending_event_count();
        match self.trainer.guard(layers) {
            Ok(0) => {}
            Ok(acted) => {
                for event in self.trainer.pending_events_since(before) {
                    self.send(Event::Transform(event));
                }
                if self.exp.resolved.preset.guard.mode != super::guard::GuardMode::Warn {
                    *layers = self.trainer.layer_stats();
                }
                self.send(Event::Log(format!(
                    "guard ({}): {acted} collapsed unit{}",
                    self.exp.resolved.preset.guard.mode.name(),
                    if acted == 1 { "" } else { "s" }
                )));
            }
            Err(e) => self.send(Event::Log(format!("guard refused: {e}"))),
        }
    }

    /// Fresh statistics after a change of the transformations, so that no view shows the old
    /// ones beside the new flags (paused or not).
    fn send_layers(&mut self) {
        let layers = self.trainer.layer_stats();
        self.send(Event::Layers {
            iteration: self.trainer.iteration,
            layers,
        });
    }

    /// `set KEY=VALUE`: validated as the preset would be, then in force from the next
    /// minibatch; `config.toml` stays the run's start, the checkpoint carries the change.
    fn retune(&mut self, key: &str, value: &str) -> Result<String, String> {
        let next = match super::tunables::retune(&self.exp.resolved, key, value) {
            Ok(n) => n,
            Err(e) => return Err(self.refuse(e)),
        };
        self.trainer.retune(&next.preset);
        self.early_stop.patience = next.preset.train.patience.or(next.preset.compare.patience);
        self.exp.resolved = next;
        self.send(Event::Tunables(super::tunables::current(
            &self.exp.resolved.preset,
        )));
        let message = format!("{} = {}", key.trim(), value.trim());
        self.send(Event::Log(message.clone()));
        self.send_position();
        Ok(message)
    }

    /// Applies the recorded actions due at this iteration (`--replay`); true when one of them
    /// ends the run.
    fn apply_replay(&mut self) -> bool {
        while self
            .replay
            .front()
            .is_some_and(|s| s.iteration <= self.trainer.iteration)
        {
            let Some(action) = self.replay.pop_front() else {
                break;
            };
            if action.ok
                && action.command.changes_training()
                && self.steer(action.command, &mut false)
            {
                return true;
            }
        }
        false
    }

    /// Applies every waiting command (blocking only while paused); returns (end, step_once).
    fn handle_commands(&mut self) -> (bool, bool) {
        let mut step_once = false;
        loop {
            if let Some(signal) = self.interrupted() {
                self.state = RunState::Stopped;
                self.reason = Some(format!("interrupted by {}", signal_name(signal)));
                return (true, false);
            }
            let command = if self.state == RunState::Paused && !step_once {
                match self.commands.recv_timeout(PAUSED_POLL) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => continue,
                    // The front end is gone while paused: stop and save.
                    Err(RecvTimeoutError::Disconnected) => {
                        self.state = RunState::Stopped;
                        return (true, false);
                    }
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                        return (false, step_once)
                    }
                }
            };
            if self.steer(command, &mut step_once) {
                return (true, false);
            }
            if step_once && self.state == RunState::Paused {
                return (false, true);
            }
        }
    }

    /// Writes the evaluations, then the checkpoint, that could not be written before; true
    /// when nothing is left pending. On a failure the run must pause: nothing is lost.
    fn flush_pending(&mut self) -> bool {
        let Some(rec) = self.recorder.as_mut() else {
            return true;
        };
        while let Some(m) = self.unwritten.first() {
            if let Err(e) = rec.epoch(m) {
                let message = format!("{e}; training stays paused (resume to retry)");
                self.send(Event::Failed(message));
                return false;
            }
            self.unwritten.remove(0);
        }
        if self.checkpoint_due {
            let saved = match self.checkpoint_at.clone() {
                Some(at) => self.save_state(at),
                None => self.save_checkpoint(),
            };
            if let Err(e) = saved {
                self.send(Event::Failed(format!(
                    "{e}; training stays paused (resume to retry)"
                )));
                return false;
            }
            self.checkpoint_due = false;
            self.checkpoint_at = None;
        }
        true
    }

    /// Records an evaluation and, when due, a checkpoint (of the state `at`, when that is not
    /// the state now); on a write failure, pauses instead of losing either.
    fn record(
        &mut self,
        metrics: &EpochMetrics,
        checkpoint: bool,
        at: Option<(TrainerState<T>, f64)>,
    ) {
        let started = Instant::now();
        self.unwritten.push(metrics.clone());
        if checkpoint {
            self.checkpoint_due = true;
            self.checkpoint_at = at;
        }
        let written = self.flush_pending();
        self.wall.files += started.elapsed().as_secs_f64();
        if !written {
            self.set_state(RunState::Paused);
        }
    }

    /// The time accounts now.
    fn wall_time(&self) -> WallTime {
        WallTime {
            steps: self.trainer.train_seconds,
            ..self.wall
        }
    }

    fn run(mut self) {
        let p = self.exp.resolved.preset.clone();
        self.send(Event::Started(RunInfo {
            preset: p.name.clone(),
            variant: self.exp.resolved.variant.clone(),
            data: self.exp.data_description.clone(),
            topology: self.exp.topology.describe(),
            weights: self.exp.topology.weight_count(),
            epochs: p.train.epochs,
            iterations_per_epoch: self.trainer.iterations_per_epoch as usize,
            batch_size: p.train.batch_size,
            classify: p.model.task == Task::Classify,
            precision: T::NAME.to_string(),
            monitor: p.data.monitor,
            optimizer: p.train.optimizer,
            task: Some(p.model.task),
            trainer: None,
            out_dir: self
                .options
                .out_dir
                .as_ref()
                .map(|d| d.display().to_string()),
        }));
        for m in self.recorder.iter().flat_map(|r| r.history()) {
            self.send(Event::Epoch(Box::new(m.clone())));
        }
        let layers = self.trainer.layer_stats();
        self.send(Event::Layers {
            iteration: self.trainer.iteration,
            layers,
        });
        self.send(Event::State(self.state));
        if self.rollbacks_left > 0 {
            // A divergence in the first epoch rolls back to the start.
            self.last_good = Some(self.trainer.snapshot());
        }
        self.send(Event::Tunables(super::tunables::current(
            &self.exp.resolved.preset,
        )));
        let budget = p.train.time_budget_seconds;
        let mut last_progress = Instant::now();
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        // The run's length and the statistics interval are live settings: read them afresh.
        while self.trainer.iteration
            < self.exp.resolved.preset.train.epochs as u64 * self.trainer.iterations_per_epoch
        {
            if self.apply_replay() {
                break;
            }
            let (end, step_once) = self.handle_commands();
            if end {
                break;
            }
            if self.state == RunState::Paused && !step_once {
                continue;
            }
            if step_once {
                self.clock.set_running(true);
            }
            match self.trainer.step() {
                Ok(loss) => {
                    loss_sum += loss.mean();
                    loss_count += 1;
                }
                Err(div) => {
                    // The last epoch's record comes first (and may send the run back).
                    match self.settle() {
                        Settled::Ended => break,
                        Settled::WentBack => continue,
                        Settled::Going => {}
                    }
                    if self.roll_back(div.to_string()) {
                        continue;
                    }
                    break;
                }
            }
            if step_once {
                self.clock.set_running(false);
            }
            if step_once || last_progress.elapsed() >= PROGRESS_INTERVAL {
                self.send(Event::Progress(Progress {
                    epoch: self.trainer.epoch,
                    iteration: self.trainer.iteration,
                    learning_rate: self.trainer.learning_rate(),
                    momentum: self.trainer.momentum(),
                    examples_per_second: self.trainer.examples_per_second(),
                    elapsed_seconds: self.clock.seconds(),
                    batch_loss: loss_sum / loss_count.max(1) as f64,
                }));
                last_progress = Instant::now();
                (loss_sum, loss_count) = (0.0, 0);
            }
            if self
                .trainer
                .iteration
                .is_multiple_of(self.exp.resolved.preset.stats.every.max(1) as u64)
            {
                self.probe_statistics();
            }
            self.collect_statistics(false);
            let over_budget = budget.is_some_and(|b| self.trainer.train_seconds >= b);
            let at_boundary = self.trainer.at_epoch_boundary() || over_budget;
            let ready = self.pending.as_ref().is_some_and(|p| p.epoch.is_ready());
            if at_boundary || ready {
                match self.settle() {
                    Settled::Ended => break,
                    Settled::WentBack => continue,
                    Settled::Going => {}
                }
            }
            if !at_boundary {
                continue;
            }
            let last = over_budget
                || self.trainer.iteration
                    >= self.exp.resolved.preset.train.epochs as u64
                        * self.trainer.iterations_per_epoch;
            if self.trainer.overlaps_evaluation() && !last {
                if self.end_epoch_overlapped() {
                    break;
                }
                continue;
            }
            let started = Instant::now();
            let reestimated = self.trainer.reestimate_outside_steps;
            let evaluated = self.trainer.finish_epoch(self.clock.seconds());
            self.account_epoch_end(started, reestimated);
            let metrics = match evaluated {
                Ok(m) => m,
                Err(div) => {
                    if self.roll_back(div.to_string()) {
                        continue;
                    }
                    break;
                }
            };
            let stop = self.epoch_ended(metrics);
            if stop.is_some() || over_budget {
                self.reason = stop.or_else(|| {
                    Some(format!(
                        "time budget of {:.0} s of training reached",
                        budget.unwrap_or_default()
                    ))
                });
                break;
            }
        }
        self.finish();
    }

    /// The statistics probe due now: measured on a copy of the network on the free core when
    /// nothing waits for its result (no γ guard looks at it), else here.
    fn probe_statistics(&mut self) {
        let aside = self.trainer.overlaps_evaluation()
            && self.exp.resolved.preset.guard.mode == GuardMode::Off;
        // The last probe's result goes out first, so that they arrive in order.
        self.collect_statistics(true);
        let started = Instant::now();
        let iteration = self.trainer.iteration;
        if aside {
            let (net, probe) = (self.trainer.net.clone(), self.trainer.stats_probe());
            let mut ws = self.trainer.stats_workspace();
            let spawned = std::thread::Builder::new()
                .name("ltmlp-statistics".into())
                .spawn(move || (probe.measure(&net, &mut ws), ws));
            if let Ok(handle) = spawned {
                self.probing = Some((iteration, handle));
                self.wall.statistics += started.elapsed().as_secs_f64();
                return;
            }
        }
        let mut layers = self.trainer.layer_stats();
        self.wall.statistics += started.elapsed().as_secs_f64();
        self.guard(&mut layers);
        self.send(Event::Layers { iteration, layers });
    }

    /// Sends the statistics measured on the free core, when they are done (or waiting for them).
    fn collect_statistics(&mut self, wait: bool) {
        let Some((iteration, probing)) = self.probing.take_if(|(_, h)| wait || h.is_finished())
        else {
            return;
        };
        let started = Instant::now();
        let (layers, ws) = probing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.trainer.keep_stats_workspace(ws);
        self.wall.statistics += started.elapsed().as_secs_f64();
        self.send(Event::Layers { iteration, layers });
    }

    /// The time an epoch's end took the training thread since `started`: the epoch-end
    /// re-estimations (the trainer's count went up from `reestimated`), the rest evaluation.
    fn account_epoch_end(&mut self, started: Instant, reestimated: f64) {
        let reestimation = self.trainer.reestimate_outside_steps - reestimated;
        self.wall.reestimation += reestimation;
        self.wall.evaluation += (started.elapsed().as_secs_f64() - reestimation).max(0.0);
    }

    fn checkpoint_due_after(&self, epoch: usize) -> bool {
        let every = self.options.checkpoint_every;
        every > 0 && epoch.is_multiple_of(every)
    }

    /// Records an epoch that ended without overlap (the trainer is at its end); the reason to
    /// stop there, if any.
    fn epoch_ended(&mut self, metrics: EpochMetrics) -> Option<String> {
        if self.rollbacks_left > 0 {
            self.last_good = Some(self.trainer.snapshot());
        }
        let checkpoint = self.checkpoint_due_after(metrics.epoch);
        self.epoch_recorded(metrics, self.wall_time(), checkpoint, None)
    }

    /// Writes an epoch's metrics, with the time accounts `wall`, and its checkpoint when due
    /// (of `at`, when that is not the state now), and sends them; the reason to stop there.
    fn epoch_recorded(
        &mut self,
        mut metrics: EpochMetrics,
        wall: WallTime,
        checkpoint: bool,
        at: Option<(TrainerState<T>, f64)>,
    ) -> Option<String> {
        metrics.wall = Some(wall);
        self.record(&metrics, checkpoint, at);
        let stop = self.early_stop.after(&metrics);
        self.send(Event::Epoch(Box::new(metrics)));
        stop
    }

    /// Ends the epoch with its evaluation on the free core while the next epoch trains; true
    /// when the run must end.
    fn end_epoch_overlapped(&mut self) -> bool {
        let started = Instant::now();
        let reestimated = self.trainer.reestimate_outside_steps;
        let clock_seconds = self.clock.seconds();
        let ending = self.trainer.end_epoch_overlapped(clock_seconds);
        self.account_epoch_end(started, reestimated);
        match ending {
            EpochEnding::Pending(epoch) => {
                self.pending = Some(Overlapped {
                    epoch,
                    wall: self.wall_time(),
                    clock_seconds,
                    checkpoint: self.checkpoint_due_after(self.trainer.epoch),
                });
                false
            }
            EpochEnding::Done(ended) => match *ended {
                Ok(metrics) => match self.epoch_ended(metrics) {
                    Some(reason) => {
                        self.reason = Some(reason);
                        true
                    }
                    None => false,
                },
                Err(div) => !self.roll_back(div.to_string()),
            },
        }
    }

    /// Takes the overlapped evaluation of the last epoch's end, waiting for it, and records
    /// that epoch as if the run had waited for it there.
    fn settle(&mut self) -> Settled {
        let Some(pending) = self.pending.take() else {
            return Settled::Going;
        };
        let started = Instant::now();
        let reestimated = self.trainer.reestimate_outside_steps;
        let completed = self.trainer.complete_epoch(*pending.epoch);
        self.account_epoch_end(started, reestimated);
        let CompletedEpoch {
            metrics,
            state,
            went_back,
        } = match completed {
            Ok(c) => c,
            Err(div) if self.roll_back(div.to_string()) => return Settled::WentBack,
            Err(_) => return Settled::Ended,
        };
        if went_back {
            self.send(Event::Log(format!(
                "epoch {}: its validation error changed the paper rule's phase; the steps since are taken again",
                metrics.epoch
            )));
            self.send_position();
        }
        if self.rollbacks_left > 0 {
            self.last_good = Some(state.clone());
        }
        let at = pending
            .checkpoint
            .then(|| (state.clone(), pending.clock_seconds));
        match self.epoch_recorded(metrics, pending.wall, pending.checkpoint, at) {
            Some(reason) => {
                self.trainer.restore(state);
                self.reason = self.reason.take().or(Some(reason));
                Settled::Ended
            }
            None if went_back => Settled::WentBack,
            None => Settled::Going,
        }
    }

    /// Ends the run: final state, pending metrics, checkpoint, summary, and the Finished
    /// event. A write that fails is retried on `Resume` (the headless runner sends one every
    /// 30 s) until it succeeds, or until a signal or `Stop` says to leave as things are.
    fn finish(mut self) {
        // An overlapped evaluation is recorded first, as if the run had waited for it.
        self.settle();
        self.collect_statistics(true);
        let end = match self.state {
            RunState::Running | RunState::Paused => RunState::Finished,
            other => other,
        };
        if let Some(r) = &self.reason {
            self.send(Event::Log(r.clone()));
        }
        let summary = loop {
            match self.write_final_files(end) {
                (summary, Ok(())) => break summary,
                (summary, Err(message)) => {
                    self.send(Event::Failed(format!(
                        "{message}; the run waits to write its files (resume to retry)"
                    )));
                    self.set_state(RunState::Paused);
                    if !self.wait_for_retry() {
                        break summary;
                    }
                }
            }
        };
        self.state = end;
        self.send(Event::State(end));
        self.send(Event::Finished(Box::new(summary)));
    }

    /// The metrics not yet written, the last checkpoint (not after a divergence: the last
    /// good one stays) and `summary.json`.
    /// The summary, and whether every file was written.
    fn write_final_files(&mut self, end: RunState) -> (Summary, Result<(), String>) {
        let p = &self.exp.resolved.preset;
        let base = SummaryBase {
            preset: p.name.clone(),
            variant: self.exp.resolved.variant.clone(),
            monitor: p.data.monitor,
            state: end,
            reason: self.reason.clone(),
            iterations: self.trainer.iteration,
            wall_seconds: self.clock.seconds(),
            train_seconds: self.trainer.train_seconds,
            reestimate_seconds: self.trainer.reestimate_seconds,
            examples_per_second: self.trainer.examples_per_second(),
            steering_actions: self.actions.as_ref().map_or(0, |a| a.count),
            wall: Some(self.wall_time()),
        };
        let Some(rec) = self.recorder.as_mut() else {
            return (summarize(base, None, None, None), Ok(()));
        };
        while let Some(m) = self.unwritten.first() {
            if let Err(e) = rec.epoch(m) {
                return (rec.summary(base), Err(e.to_string()));
            }
            self.unwritten.remove(0);
        }
        if end != RunState::Diverged {
            match self.save_checkpoint() {
                Ok(Some(path)) => {
                    self.send(Event::Log(format!("checkpoint saved: {}", path.display())))
                }
                Ok(None) => {}
                Err(e) => {
                    let summary = self.recorder.as_ref().map(|r| r.summary(base.clone()));
                    return (
                        summary.unwrap_or_else(|| summarize(base, None, None, None)),
                        Err(e),
                    );
                }
            }
        }
        let Some(rec) = self.recorder.as_mut() else {
            return (summarize(base, None, None, None), Ok(()));
        };
        let summary = rec.summary(base);
        let written = rec.write_summary(&summary).map_err(|e| e.to_string());
        (summary, written)
    }

    /// Waits for `Resume` (true); a signal, `Stop` or a vanished front end give false.
    fn wait_for_retry(&mut self) -> bool {
        loop {
            if self.interrupted().is_some() {
                return false;
            }
            match self.commands.recv_timeout(PAUSED_POLL) {
                Ok(Command::Resume) => return true,
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// One log line for a curvature reading.
fn curvature_line(iteration: u64, reading: Result<QuickCurvature, Refusal>) -> String {
    // The readings are (μ, angle in degrees): the damping first, as the grid is searched.
    let angle = |a: Option<(f64, f64)>| {
        a.map_or_else(
            || "undefined".to_string(),
            |(mu, deg)| format!("{deg:.1}° (μ={mu:.0e})"),
        )
    };
    match reading {
        Ok(q) => format!(
            "curvature @ it {iteration}: ∠(g, Newton) {}, ∠(g, natural) {}, off-diagonal H {:.2} F {:.2}",
            angle(q.newton_angle),
            angle(q.natural_angle),
            q.hessian.off_diagonal_ratio,
            q.fisher.off_diagonal_ratio
        ),
        Err(refusal) => format!("curvature @ it {iteration}: {refusal}"),
    }
}

/// `SIGINT`-style name of a signal number.
pub fn signal_name(signal: usize) -> String {
    match signal as i32 {
        signal_hook::consts::SIGINT => "SIGINT".into(),
        signal_hook::consts::SIGTERM => "SIGTERM".into(),
        signal_hook::consts::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// Early stopping on the validation error (or loss, for autoencoders).
struct EarlyStop {
    patience: Option<usize>,
    best: f64,
    since_best: usize,
}

impl EarlyStop {
    fn new(patience: Option<usize>) -> Self {
        EarlyStop {
            patience,
            best: f64::INFINITY,
            since_best: 0,
        }
    }

    /// The reason to stop after this evaluation, if any.
    fn after(&mut self, m: &EpochMetrics) -> Option<String> {
        let patience = self.patience?;
        let value = m.validation_error.unwrap_or(m.validation_loss);
        if value < self.best {
            self.best = value;
            self.since_best = 0;
            return None;
        }
        self.since_best += 1;
        (self.since_best >= patience)
            .then(|| format!("early stop: no better validation result for {patience} epochs"))
    }
}

/// Wall time that excludes paused stretches.
struct Clock {
    total: Duration,
    since: Option<Instant>,
}

impl Clock {
    fn new(running: bool) -> Self {
        Clock {
            total: Duration::ZERO,
            since: running.then(Instant::now),
        }
    }

    fn set_running(&mut self, running: bool) {
        match (running, self.since) {
            (true, None) => self.since = Some(Instant::now()),
            (false, Some(t)) => {
                self.total += t.elapsed();
                self.since = None;
            }
            _ => {}
        }
    }

    fn seconds(&self) -> f64 {
        (self.total + self.since.map_or(Duration::ZERO, |t| t.elapsed())).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spectrum::SpectrumStats;

    #[test]
    fn curvature_line_gives_the_angle_then_the_damping() {
        let spectrum = SpectrumStats {
            size: 2,
            min: 0.1,
            max: 1.0,
            floor: 1e-8,
            above_floor: 2,
            condition: Some(10.0),
            negative_share: 0.0,
            negative_share_beyond_floor: 0.0,
            off_diagonal_ratio: 0.25,
            diagonal_mean: 0.5,
            diagonal_spread: Some(2.0),
        };
        let reading = QuickCurvature {
            weights: 10,
            examples: 5,
            hessian: spectrum.clone(),
            fisher: spectrum,
            newton_angle: Some((1e-4, 57.3)),
            natural_angle: None,
        };
        let line = curvature_line(7, Ok(reading));
        assert!(line.contains("∠(g, Newton) 57.3° (μ=1e-4)"), "{line}");
        assert!(line.contains("∠(g, natural) undefined"), "{line}");
    }
}
