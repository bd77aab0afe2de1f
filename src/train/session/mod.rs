//! The training thread: it owns the network and the data, hands the run's records to the
//! subscribers `crate::host` opened for it (it knows no files but its checkpoint), applies `Command`s between minibatches and sends `Event`s
//! without ever waiting for the receiver. Its jobs are in files of their own: preparing the
//! experiment (`prepare`), steering (`steering`), the epoch's end and its overlapped evaluation
//! (`evaluation`), the statistics and curvature probes (`probes`) and the records (`files`);
//! here is the loop that ties them together, [`Driver::run`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::checkpoint::{AnyState, Checkpoint};
use super::trainer::{Trainer, TrainerState};
use crate::data::Dataset;
use crate::net::Network;
use crate::protocol::summary::Standing;
use crate::protocol::{
    best, Command, EpochMetrics, Event, Progress, RunRecords, RunState, Steer, Subscribers,
    Summary, WallTime,
};
use crate::real::Real;

mod evaluation;
mod files;
mod prepare;
mod probes;
mod steering;

use evaluation::{Overlapped, Settled};
pub use prepare::{AnyData, Experiment, PrepareError};
use probes::Probing;

/// Least time between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// How often a paused trainer looks at the interrupt flag.
const PAUSED_POLL: Duration = Duration::from_millis(200);

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
    /// `--trace FILE`: a line per step for other implementations (src/train/trace.rs).
    pub trace: Option<PathBuf>,
    /// Write TensorBoard events in the run folder too (an output option, not part of the
    /// experiment; a resumed run that wrote them goes on anyway).
    pub tensorboard: bool,
}

/// Trains `exp` on the calling thread, its records handed to `records` (none without a run
/// folder), until the run ends; `crate::host::spawn` starts it on a thread of its own, with
/// the folder claimed and the checkpoint checked (`Experiment::check_resume`).
pub fn train(
    exp: Experiment,
    records: Option<RunRecords>,
    options: SessionOptions,
    commands: Receiver<Command>,
    events: Sender<Event>,
) {
    crate::net::kernels::on_own_pool(move || match exp.data.clone() {
        AnyData::F32(d) => Driver::<f32>::new(exp, d, records, options, commands, events).run(),
        AnyData::F64(d) => Driver::<f64>::new(exp, d, records, options, commands, events).run(),
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
    /// The run folder (`None`: a run without files, and without checkpoints).
    dir: Option<PathBuf>,
    /// Where the run's records go (the host's list; empty without a run folder).
    subscribers: Subscribers,
    /// The evaluations a resume kept, until they are announced.
    kept: Vec<EpochMetrics>,
    /// The last and best evaluation so far, for the summary.
    standing: Standing,
    /// The end's summary once made: a retry of the final files writes the same.
    final_summary: Option<Summary>,
    /// Whether the end's summary went to the subscribers.
    finished_published: bool,
    options: SessionOptions,
    commands: Receiver<Command>,
    events: Sender<Event>,
    state: RunState,
    reason: Option<String>,
    clock: Clock,
    early_stop: EarlyStop,
    /// A scheduled checkpoint that could not be written yet; retried with the metrics.
    checkpoint_due: bool,
    /// Stored in checkpoints: a resume on other data is refused.
    data_fingerprint: u32,
    config_toml: String,
    /// The state at the end of the last epoch, for rollbacks after a divergence.
    last_good: Option<TrainerState<T>>,
    rollbacks_left: usize,
    /// Commands that steered the run, over every segment of it.
    steering_actions: usize,
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

impl<T: StateKind> Driver<T> {
    fn new(
        mut exp: Experiment,
        data: Arc<Dataset<T>>,
        records: Option<RunRecords>,
        mut options: SessionOptions,
        commands: Receiver<Command>,
        events: Sender<Event>,
    ) -> Self {
        // `config.toml` (and the checkpoint's copy) is the run's start: the settings changed
        // live since then are taken from the action log again.
        let mut config_toml = exp.resolved.to_toml();
        let (dir, subscribers, kept, kept_actions) = match records {
            Some(r) => (Some(r.dir), r.subscribers, r.kept, r.kept_actions),
            None => (None, Subscribers::new(), Vec::new(), Vec::new()),
        };
        for action in &kept_actions {
            if let (true, Command::Set { key, value }) = (action.ok, &action.command) {
                if let Ok(next) = crate::train::tunables::retune(&exp.resolved, key, value) {
                    exp.resolved = next;
                }
            }
        }
        // A resumed run continues its time accounts from its last kept evaluation.
        let wall = kept.last().and_then(|m| m.wall).unwrap_or_default();
        let p = &exp.resolved.preset;
        let net = Network::<T>::init(exp.topology.clone(), p.train.seed);
        let mut trainer = Trainer::new(&exp.resolved, data, net);
        if let Some(path) = &options.trace {
            // Logged after the first step, once the run has announced itself.
            match crate::train::trace::Trace::start_for(path, &exp.resolved, &trainer) {
                Ok(trace) => trainer.trace = Some(trace),
                Err(e) => trainer.trace_failure = Some(format!("{e}; no trace is written")),
            }
        }
        let mut early_stop = EarlyStop::new(p.train.patience.or(p.compare.patience));
        let mut clock_seconds = 0.0;
        let replay = std::mem::take(&mut options.replay);
        if let Some(cp) = options.resume.take() {
            clock_seconds = cp.clock_seconds;
            config_toml = cp.config_toml;
            // `Experiment::check_resume` refused a checkpoint of the other precision.
            if let Some(state) = T::unwrap(cp.state) {
                trainer.restore(state);
            }
            for m in &kept {
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
            dir,
            subscribers,
            standing: Standing::of(&kept),
            kept,
            final_summary: None,
            finished_published: false,
            options,
            commands,
            events,
            state,
            reason: None,
            clock,
            early_stop,
            checkpoint_due: false,
            data_fingerprint: exp.data.fingerprint(),
            config_toml,
            last_good: None,
            rollbacks_left: exp.resolved.preset.train.divergence_rollbacks,
            steering_actions: kept_actions.len(),
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

    /// The signal that asked us to stop, if any.
    fn interrupted(&self) -> Option<usize> {
        let flag = self.options.interrupt.as_ref()?;
        let signal = flag.load(Ordering::SeqCst);
        (signal != 0).then_some(signal)
    }

    /// The time accounts now.
    fn wall_time(&self) -> WallTime {
        WallTime {
            steps: self.trainer.train_seconds,
            ..self.wall
        }
    }

    /// The run: its start, then turns (commands, a minibatch, an epoch's end when due) until
    /// it has trained its length or something ends it, then its final files.
    fn run(mut self) {
        self.announce();
        // Read once: a budget set live does not move the end of the run.
        let budget = self.exp.resolved.preset.train.time_budget_seconds;
        let mut report = ProgressReport::new();
        // The run's length is a live setting: read it afresh.
        while self.trainer.iteration < self.total_iterations() {
            if let Turn::End = self.turn(budget, &mut report) {
                break;
            }
        }
        self.finish();
    }

    /// Iterations the run trains for, as its settings say now.
    fn total_iterations(&self) -> u64 {
        self.exp.resolved.preset.train.epochs as u64 * self.trainer.iterations_per_epoch
    }

    /// Tells the front end what the run is and where it stands: its facts, the history a
    /// resumed run kept (replayed), the statistics, the state and the live settings.
    fn announce(&mut self) {
        self.send(Event::Started(
            self.exp.run_info(self.options.out_dir.as_deref()),
        ));
        for m in std::mem::take(&mut self.kept) {
            self.send(Event::Replayed(Box::new(m)));
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
        self.send(Event::Tunables(crate::train::tunables::current(
            &self.exp.resolved.preset,
        )));
    }

    /// One turn: the commands due, one minibatch unless paused, the statistics when due, and
    /// the epoch's end when reached.
    fn turn(&mut self, budget: Option<f64>, report: &mut ProgressReport) -> Turn {
        if self.apply_replay() {
            return Turn::End;
        }
        let (end, step_once) = self.handle_commands();
        if end {
            return Turn::End;
        }
        if self.state == RunState::Paused && !step_once {
            return Turn::Next;
        }
        if let Some(turn) = self.step(step_once, report) {
            return turn;
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
            if let Some(turn) = self.settled() {
                return turn;
            }
        }
        if !at_boundary {
            return Turn::Next;
        }
        self.end_epoch(over_budget, budget)
    }

    /// One minibatch and, when due, its progress report; `Some` when a divergence decided
    /// the turn (rolled back, or the end).
    fn step(&mut self, step_once: bool, report: &mut ProgressReport) -> Option<Turn> {
        if step_once {
            self.clock.set_running(true);
        }
        match self.trainer.step() {
            Ok(loss) => {
                report.add(loss.mean());
                if let Some(failure) = self.trainer.trace_failure.take() {
                    self.send(Event::Log(failure));
                }
            }
            Err(div) => {
                // The last epoch's record comes first (and may send the run back).
                if let Some(turn) = self.settled() {
                    return Some(turn);
                }
                let rolled_back = self.roll_back(div.to_string());
                return Some(if rolled_back { Turn::Next } else { Turn::End });
            }
        }
        if step_once {
            self.clock.set_running(false);
        }
        if step_once || report.due() {
            self.send(Event::Progress(Progress {
                epoch: self.trainer.epoch,
                iteration: self.trainer.iteration,
                learning_rate: self.trainer.learning_rate(),
                momentum: self.trainer.momentum(),
                examples_per_second: self.trainer.examples_per_second(),
                elapsed_seconds: self.clock.seconds(),
                batch_loss: report.take_mean(),
            }));
        }
        None
    }

    /// Takes the overlapped evaluation if there is one: `Some` when it ended the run or sent
    /// it back to that epoch's end.
    fn settled(&mut self) -> Option<Turn> {
        match self.settle() {
            Settled::Ended => Some(Turn::End),
            Settled::WentBack => Some(Turn::Next),
            Settled::Going => None,
        }
    }

    /// At an epoch's end (or the time budget): its evaluation, overlapped with the next
    /// epoch unless this is the last, then whether to stop there.
    fn end_epoch(&mut self, over_budget: bool, budget: Option<f64>) -> Turn {
        let last = over_budget || self.trainer.iteration >= self.total_iterations();
        if self.trainer.overlaps_evaluation() && !last {
            let ended = self.end_epoch_overlapped();
            return if ended { Turn::End } else { Turn::Next };
        }
        let started = Instant::now();
        let reestimated = self.trainer.reestimate_outside_steps;
        let evaluated = self.trainer.finish_epoch(self.clock.seconds());
        self.account_epoch_end(started, reestimated);
        let metrics = match evaluated {
            Ok(m) => m,
            Err(div) if self.roll_back(div.to_string()) => return Turn::Next,
            Err(_) => return Turn::End,
        };
        let stop = self.epoch_ended(metrics);
        if stop.is_none() && !over_budget {
            return Turn::Next;
        }
        self.reason = stop.or_else(|| {
            Some(format!(
                "time budget of {:.0} s of training reached",
                budget.unwrap_or_default()
            ))
        });
        Turn::End
    }
}

/// What a turn of the run's loop left it to do.
enum Turn {
    Next,
    End,
}

/// The training loss since the last progress report, and when that was.
struct ProgressReport {
    last: Instant,
    loss_sum: f64,
    losses: usize,
}

impl ProgressReport {
    fn new() -> Self {
        ProgressReport {
            last: Instant::now(),
            loss_sum: 0.0,
            losses: 0,
        }
    }

    fn add(&mut self, loss: f64) {
        self.loss_sum += loss;
        self.losses += 1;
    }

    /// Whether a report is due (they are rate-limited).
    fn due(&self) -> bool {
        self.last.elapsed() >= PROGRESS_INTERVAL
    }

    /// The mean loss since the last report; a new one starts now.
    fn take_mean(&mut self) -> f64 {
        let mean = self.loss_sum / self.losses.max(1) as f64;
        *self = ProgressReport::new();
        mean
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

/// Early stopping: patience counts the evaluations since the best one (`protocol::best`).
struct EarlyStop {
    patience: Option<usize>,
    best: Option<EpochMetrics>,
    since_best: usize,
}

impl EarlyStop {
    fn new(patience: Option<usize>) -> Self {
        EarlyStop {
            patience,
            best: None,
            since_best: 0,
        }
    }

    /// The reason to stop after this evaluation, if any.
    fn after(&mut self, m: &EpochMetrics) -> Option<String> {
        let patience = self.patience?;
        if self.best.as_ref().is_none_or(|b| best::improves_on(m, b)) {
            self.best = Some(m.clone());
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
