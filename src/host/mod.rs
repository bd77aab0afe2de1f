//! The run host: everything one training run needs besides the trainer. It checks a resume
//! (`Experiment::check_resume`), claims and locks the run folder, opens its files (`config.toml`,
//! `run.json`, `metrics.jsonl`/`.csv`, `units.jsonl`, `actions.jsonl`; `summary.json` and the
//! completed `run.json` at the end), starts the control
//! endpoint's hub, and runs the trainer on a thread of its own. A front end (the headless
//! printer, a sweep cell; the dashboard is a client of the hub) then calls [`Session::drain`],
//! the one loop that hands it every event until the run ends and asks the trainer to retry a
//! failed write under one [`RetryPolicy`].
//!
//! The host's API for any trainer: [`spawn`] opens the run (new, or resumed from a checkpoint
//! whose later records are moved aside), [`Session::commands`] is where commands go,
//! [`Session::events`] where the trainer's events come out, and the run ends with the
//! `Finished` event's summary (state and reason) that [`Session::drain`] returns.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};

use crate::protocol::{Command, Event, Summary};
use crate::protocol::{RunRecords, Subscribers};
use crate::sink::run_file::{self, RunHeader};
use crate::sink::run_files::Continue;
use crate::sink::{RunFiles, SinkError};
use crate::tensorboard::live::{self, LiveEvents};
use crate::train::checkpoint::CHECKPOINT_FILE;
use crate::train::{Experiment, SessionOptions};

pub mod foreign;
pub mod retry;

pub use retry::{Retries, RetryPolicy};

/// How long the drain waits for an event when no retry is due (it wakes on every event).
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The folder is busy, unwritable, or its records cannot be continued.
    #[error(transparent)]
    Files(#[from] SinkError),
    /// The checkpoint cannot continue this experiment (another precision, other data).
    #[error("{0}")]
    Refused(String),
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

    /// Hands every event to `on_event` until the run ends; after a failed write (the trainer
    /// pauses, nothing is lost) asks it to retry under `policy`, reading events meanwhile so
    /// that a signal still ends the run at once. Joins the trainer and the hub, and returns
    /// the run's summary (`None`: the training thread ended without one, it panicked).
    pub fn drain(self, policy: RetryPolicy, mut on_event: impl FnMut(&Event)) -> Option<Summary> {
        let mut retries = Retries::new(policy);
        let mut summary = None;
        loop {
            let now = Instant::now();
            if retries.take_due(now) {
                let _ = self.commands.send(Command::Resume);
            }
            let wait = retries.time_left(now).unwrap_or(IDLE_WAIT);
            let event = match self.events.recv_timeout(wait) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match &event {
                Event::Epoch(_) => retries.written(),
                Event::Failed(_) => retries.failed(Instant::now()),
                _ => {}
            }
            on_event(&event);
            if let Event::Finished(s) = event {
                summary = Some(*s);
                break;
            }
        }
        self.join();
        summary
    }
}

/// Starts the training thread. A resumed checkpoint is checked against the experiment, and
/// the run folder locked and its files created (or, on resume, checked) first, so that a
/// wrong checkpoint or an unwritable, busy or occupied folder is reported before any training.
pub fn spawn(exp: Experiment, options: SessionOptions) -> Result<Session, StartError> {
    if let Some(cp) = &options.resume {
        let path = options.out_dir.as_ref().map_or_else(
            || PathBuf::from(CHECKPOINT_FILE),
            |d| d.join(CHECKPOINT_FILE),
        );
        exp.check_resume(&path, cp, "the run's settings", "the run's data source")
            .map_err(StartError::Refused)?;
    }
    let records = match &options.out_dir {
        Some(dir) => Some(open_records(dir, &exp, &options)?),
        None => None,
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
        .spawn(move || crate::train::session::train(exp, records, options, command_rx, event_tx))
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

/// How a run folder is opened.
pub enum Opening<'a> {
    /// A new run (an old one moved aside with `force`); a run ltmlp trains has a `config.toml`.
    New {
        force: bool,
        config_toml: Option<&'a str>,
    },
    /// A run continued where a checkpoint (or the trainer's own resume) left it.
    Resume(Continue),
}

/// Opens the run folder `dir`, native or foreign, and the subscriber list that records the
/// run: its files (cut back to the resume's mark). `header` makes `run.json` (of the kept one
/// on a resume, when the folder has a readable one).
pub fn open_run(
    dir: &std::path::Path,
    opening: Opening,
    header: impl FnOnce(Option<RunHeader>) -> RunHeader,
    tensorboard: bool,
) -> Result<RunRecords, SinkError> {
    let (files, resumed_at) = match opening {
        Opening::New { force, config_toml } => (
            RunFiles::create(dir, force, config_toml, header(None))?,
            None,
        ),
        Opening::Resume(at) => (RunFiles::resume(dir, at, header)?, Some(at)),
    };
    let kept = files.history().to_vec();
    let kept_actions = match resumed_at {
        Some(_) => files.actions(),
        None => Vec::new(),
    };
    let mut subscribers = Subscribers::new();
    subscribers.push(Box::new(files));
    // A run that wrote events goes on writing them when it is resumed.
    let has_events = resumed_at.is_some() && live::event_file(dir).is_some();
    if tensorboard || has_events {
        // The settings as `export-tb` reads them, so that both write the same.
        let hparams = crate::tensorboard::export::run_settings(dir)
            .map(|(hparams, _)| hparams)
            .unwrap_or_default();
        let events = match resumed_at {
            Some(at) => {
                let iteration = at
                    .iteration
                    .unwrap_or_else(|| kept.last().map_or(0, |m| m.iteration));
                LiveEvents::resume(dir, hparams, &kept, &kept_actions, iteration)
            }
            None => LiveEvents::create(dir, hparams),
        };
        let events = events.map_err(|e| SinkError::Write {
            path: dir.to_owned(),
            error: std::io::Error::other(e.0),
        })?;
        subscribers.push(Box::new(events));
    }
    Ok(RunRecords {
        dir: dir.to_owned(),
        subscribers,
        kept,
        kept_actions,
    })
}

/// Opens the run folder `dir` for a native run: a new one (`config.toml` so that it can be
/// repeated, `run.json`, empty logs), or the resumed checkpoint's, cut back to its mark.
fn open_records(
    dir: &std::path::Path,
    exp: &Experiment,
    options: &SessionOptions,
) -> Result<RunRecords, SinkError> {
    let config_toml = exp.resolved.to_toml();
    let opening = match &options.resume {
        Some(cp) => Opening::Resume(Continue {
            lines: cp.metrics_lines,
            mark: cp.metrics_mark,
            iteration: Some(cp.state.iteration()),
        }),
        None => Opening::New {
            force: options.force,
            config_toml: Some(&config_toml),
        },
    };
    let header = |kept: Option<RunHeader>| match kept {
        Some(mut kept) => {
            kept.restart();
            kept
        }
        // A new run, or a folder written before run.json existed, or a damaged one.
        None => {
            // The settings as config.toml holds them (the preset completed), so that a
            // report reads the same from either file.
            let config: crate::preset::Preset =
                toml::from_str(&config_toml).unwrap_or_else(|_| exp.resolved.preset.clone());
            RunHeader::new(
                exp.run_info(Some(dir)),
                run_file::layers_of(&exp.topology),
                run_file::flat_settings(&config),
            )
        }
    };
    open_run(dir, opening, header, options.tensorboard)
}
