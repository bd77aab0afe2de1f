//! The training thread: it owns the network, the data and the run folder, applies `Command`s
//! between minibatches and sends `Event`s without ever waiting for the receiver.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};

use super::protocol::{Command, Event, Progress, RunInfo, RunState, Summary};
use super::trainer::Trainer;
use crate::data::{self, Dataset, RawData};
use crate::net::{Network, Topology};
use crate::preset::{Precision, PresetError, Resolved, Task};
use crate::real::Real;
use crate::sink::{Recorder, SummaryBase};

/// Least time between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

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

/// Why an experiment cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error(transparent)]
    Source(#[from] data::SourceError),
    #[error("{file}: {source}")]
    Data {
        file: PathBuf,
        source: data::PrepareError,
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
        let prep = resolved.preset.data.preprocess();
        let origin = resolved.origin.clone();
        let wrap = |source| PrepareError::Data {
            file: origin.clone(),
            source,
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
            AnyData::F32(d) => (d.input_dim(), d.classes, d.train.len()),
            AnyData::F64(d) => (d.input_dim(), d.classes, d.train.len()),
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
}

impl Session {
    /// Waits for the training thread to end.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a session starts.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Run folder; `None` writes no files.
    pub out_dir: Option<PathBuf>,
    pub start_paused: bool,
}

/// Starts the training thread. The run folder is created first, so an unwritable folder is
/// reported before any training.
pub fn spawn(exp: Experiment, options: SessionOptions) -> Result<Session, crate::sink::SinkError> {
    let classify = exp.resolved.preset.model.task == Task::Classify;
    let recorder = match &options.out_dir {
        Some(dir) => Some(Recorder::create(dir, &exp.resolved.to_toml(), classify)?),
        None => None,
    };
    let (command_tx, command_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let out_dir = options.out_dir.clone();
    let thread = std::thread::Builder::new()
        .name("ltmlp-train".into())
        .spawn(move || match exp.data.clone() {
            AnyData::F32(d) => drive::<f32>(exp, d, recorder, options, command_rx, event_tx),
            AnyData::F64(d) => drive::<f64>(exp, d, recorder, options, command_rx, event_tx),
        })
        .map_err(|source| crate::sink::SinkError {
            path: PathBuf::from("<training thread>"),
            source,
        })?;
    Ok(Session {
        commands: command_tx,
        events: event_rx,
        out_dir,
        thread: Some(thread),
    })
}

/// The training loop between commands and events.
fn drive<T: Real>(
    exp: Experiment,
    data: Arc<Dataset<T>>,
    mut recorder: Option<Recorder>,
    options: SessionOptions,
    commands: Receiver<Command>,
    events: Sender<Event>,
) {
    let p = &exp.resolved.preset;
    let net = Network::<T>::init(exp.topology.clone(), p.train.seed);
    let mut trainer = Trainer::new(&exp.resolved, data, net);
    // A closed receiver means the front end is gone; training still finishes and saves.
    let send = |e: Event| {
        let _ = events.send(e);
    };
    send(Event::Started(RunInfo {
        preset: p.name.clone(),
        variant: exp.resolved.variant.clone(),
        data: exp.data_description.clone(),
        topology: exp.topology.describe(),
        weights: exp.topology.weight_count(),
        epochs: p.train.epochs,
        iterations_per_epoch: trainer.iterations_per_epoch as usize,
        batch_size: p.train.batch_size,
        classify: p.model.task == Task::Classify,
        precision: T::NAME.to_string(),
        out_dir: options.out_dir.as_ref().map(|d| d.display().to_string()),
    }));
    send(Event::Layers {
        iteration: 0,
        layers: trainer.layer_stats(),
    });
    let mut state = if options.start_paused {
        RunState::Paused
    } else {
        RunState::Running
    };
    send(Event::State(state));
    let total_iterations = p.train.epochs as u64 * trainer.iterations_per_epoch;
    let stats_every = p.stats.every as u64;
    let mut clock = Clock::new(state == RunState::Running);
    let mut last_progress = Instant::now();
    let (mut loss_sum, mut loss_count) = (0.0, 0usize);
    let mut reason = None;
    let mut early_stop = EarlyStop::new(p.compare.patience);
    let budget = p.train.time_budget_seconds;
    'run: while trainer.iteration < total_iterations {
        // Apply every waiting command; block only while paused.
        let mut step_once = false;
        loop {
            let command = if state == RunState::Paused && !step_once {
                match commands.recv() {
                    Ok(c) => c,
                    // The front end is gone while paused: stop and save.
                    Err(_) => {
                        state = RunState::Stopped;
                        break 'run;
                    }
                }
            } else {
                match commands.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
                }
            };
            match command {
                Command::Pause | Command::Resume => {
                    let new = if command == Command::Pause {
                        RunState::Paused
                    } else {
                        RunState::Running
                    };
                    if new != state {
                        state = new;
                        clock.set_running(state == RunState::Running);
                        send(Event::State(state));
                    }
                }
                Command::Step => step_once = true,
                Command::Stop => {
                    state = RunState::Stopped;
                    break 'run;
                }
                Command::Toggle(which) => match trainer.toggle(which) {
                    Ok(event) => send(Event::Transform(event)),
                    Err(e) => send(Event::Log(format!("{} not switched: {e}", which.symbol()))),
                },
                Command::Reestimate => match trainer.reestimate_now() {
                    Ok(event) => send(Event::Transform(event)),
                    Err(e) => send(Event::Log(format!("re-estimation refused: {e}"))),
                },
                Command::ScaleLearningRate(f) => {
                    trainer.scale_learning_rate(f);
                    send(Event::Log(format!(
                        "learning rate → {:.4}",
                        trainer.learning_rate()
                    )));
                }
                Command::SetLearningRate(r) => {
                    trainer.set_learning_rate(r);
                    send(Event::Log(format!(
                        "learning rate → {:.4}",
                        trainer.learning_rate()
                    )));
                }
                Command::SetMomentum(m) => {
                    trainer.set_momentum(m);
                    send(Event::Log(format!("momentum → {:.3}", trainer.momentum())));
                }
            }
            if step_once && state == RunState::Paused {
                break;
            }
        }
        if state == RunState::Paused && !step_once {
            continue;
        }
        if step_once {
            clock.set_running(true);
        }
        match trainer.step() {
            Ok(loss) => {
                loss_sum += loss.mean();
                loss_count += 1;
            }
            Err(div) => {
                state = RunState::Diverged;
                reason = Some(div.to_string());
                break 'run;
            }
        }
        if step_once {
            clock.set_running(false);
        }
        if step_once || last_progress.elapsed() >= PROGRESS_INTERVAL {
            send(Event::Progress(Progress {
                epoch: trainer.epoch,
                iteration: trainer.iteration,
                learning_rate: trainer.learning_rate(),
                momentum: trainer.momentum(),
                examples_per_second: trainer.examples_per_second(),
                elapsed_seconds: clock.seconds(),
                batch_loss: loss_sum / loss_count.max(1) as f64,
            }));
            last_progress = Instant::now();
            (loss_sum, loss_count) = (0.0, 0);
        }
        if trainer.iteration.is_multiple_of(stats_every) {
            send(Event::Layers {
                iteration: trainer.iteration,
                layers: trainer.layer_stats(),
            });
        }
        let over_budget = budget.is_some_and(|b| trainer.train_seconds >= b);
        if over_budget {
            reason = Some(format!(
                "time budget of {:.0} s of training reached",
                budget.unwrap_or_default()
            ));
        }
        if trainer.at_epoch_boundary() || over_budget {
            match trainer.finish_epoch(clock.seconds()) {
                Ok(metrics) => {
                    if let Some(rec) = recorder.as_mut() {
                        if let Err(e) = rec.epoch(&metrics) {
                            send(Event::Failed(e.to_string()));
                            state = RunState::Stopped;
                            reason = Some(e.to_string());
                            break 'run;
                        }
                    }
                    let stop = early_stop.after(&metrics);
                    send(Event::Epoch(Box::new(metrics)));
                    if let Some(why) = stop {
                        reason = Some(why);
                        break 'run;
                    }
                    if over_budget {
                        break 'run;
                    }
                }
                Err(div) => {
                    state = RunState::Diverged;
                    reason = Some(div.to_string());
                    break 'run;
                }
            }
        }
    }
    if state == RunState::Running || state == RunState::Paused {
        state = RunState::Finished;
    }
    if let Some(r) = &reason {
        send(Event::Log(r.clone()));
    }
    send(Event::State(state));
    let base = SummaryBase {
        preset: p.name.clone(),
        variant: exp.resolved.variant.clone(),
        state,
        reason,
        iterations: trainer.iteration,
        wall_seconds: clock.seconds(),
        train_seconds: trainer.train_seconds,
        examples_per_second: trainer.examples_per_second(),
    };
    let summary = match recorder.as_mut() {
        Some(rec) => {
            let summary = rec.summary(base);
            if let Err(e) = rec.write_summary(&summary) {
                send(Event::Failed(e.to_string()));
            }
            summary
        }
        None => summary_without_files(base),
    };
    send(Event::Finished(Box::new(summary)));
}

fn summary_without_files(base: SummaryBase) -> Summary {
    Summary {
        preset: base.preset,
        variant: base.variant,
        state: base.state,
        reason: base.reason,
        epochs_completed: 0,
        iterations: base.iterations,
        wall_seconds: base.wall_seconds,
        train_seconds: base.train_seconds,
        examples_per_second: base.examples_per_second,
        final_train_loss: None,
        final_validation_loss: None,
        final_validation_error: None,
        final_test_loss: None,
        final_test_error: None,
        best_epoch: None,
        best_validation_loss: None,
        best_validation_error: None,
        test_loss_at_best: None,
        test_error_at_best: None,
        out_dir: None,
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
    fn after(&mut self, m: &crate::train::EpochMetrics) -> Option<String> {
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
