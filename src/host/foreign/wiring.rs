//! The foreign host on today's pieces, behind one function: the folder claim, the metrics
//! recorder, the action log and the hub with its event and command channels, as a native run
//! wires them in `host::spawn`. Moving both onto one shared host API would leave the rest of
//! `ltmlp host` unchanged.

use std::path::Path;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::messages::Declaration;
use crate::preset::Task;
use crate::protocol::{Command, EpochMetrics, Event, RunInfo, Steer, Summary};
use crate::sink::actions::ActionLog;
use crate::sink::run_file::{self, RunHeader};
use crate::sink::{claim_existing, claim_new, Recorder, SummaryBase};

/// One hosted run's folder and endpoint.
pub struct Wiring {
    recorder: Recorder,
    actions: ActionLog,
    /// The run's events, to the hub (and from it to every viewer).
    pub events: Sender<Event>,
    /// The viewers' commands.
    pub commands: Receiver<Command>,
    /// The hub's copy of every event for an in-process front end; `ltmlp host` has none and
    /// drains it.
    pub local: Receiver<Event>,
    hub: Option<crate::remote::hub::Hub>,
}

/// Claims `dir` for the declared run (a new one, or the trainer's own resumed after
/// `declaration.resume_from` epochs), writes or keeps its files, and opens its endpoint.
/// Nothing is left in a new folder when this fails.
pub fn open(dir: &Path, declaration: &Declaration, force: bool) -> Result<Wiring, String> {
    let (recorder, actions) = match declaration.resume_from {
        Some(epochs) => {
            let lock = claim_existing(dir).map_err(|e| e.to_string())?;
            crate::sink::actions::check(dir)?;
            let recorder = Recorder::resume(lock, epochs, None).map_err(|e| e.to_string())?;
            let iteration = recorder.history().last().map_or(0, |m| m.iteration);
            let actions = ActionLog::resume(dir, iteration)?;
            (recorder, actions)
        }
        None => {
            let lock = claim_new(dir, force).map_err(|e| e.to_string())?;
            let recorder =
                Recorder::create(lock, &stand_in_config(declaration)).map_err(|e| e.to_string())?;
            match ActionLog::create(dir) {
                Ok(log) => (recorder, log),
                Err(e) => {
                    recorder.abandon_new();
                    return Err(format!(
                        "{}: {e}",
                        dir.join(crate::sink::actions::ACTIONS_FILE).display()
                    ));
                }
            }
        }
    };
    let (events, trainer_events) = unbounded();
    let (commands_tx, commands) = unbounded();
    let (local, hub) = crate::remote::hub::start(dir, trainer_events, commands_tx);
    Ok(Wiring {
        recorder,
        actions,
        events,
        commands,
        local,
        hub,
    })
}

impl Wiring {
    /// Evaluations kept from before a resume.
    pub fn history(&self) -> &[EpochMetrics] {
        self.recorder.history()
    }

    /// Appends one evaluation to the metrics files.
    pub fn record_epoch(&mut self, m: &EpochMetrics) -> Result<(), String> {
        self.recorder.epoch(m).map_err(|e| e.to_string())
    }

    /// Writes `run.json` for the declared run (kept and reopened on a resume); the producer is
    /// the trainer, not ltmlp.
    pub fn write_header(&mut self, declaration: &Declaration, info: RunInfo) -> Result<(), String> {
        let dir = self.recorder.dir().to_owned();
        let header = match run_file::read(&dir) {
            Ok(Some(mut kept)) if declaration.resume_from.is_some() => {
                kept.info = info;
                kept.restart();
                kept
            }
            _ => {
                let layers = declaration
                    .layers
                    .iter()
                    .map(|l| run_file::Layer {
                        name: l.name.clone(),
                        units: l.units,
                        kind: l.kind.clone(),
                    })
                    .collect();
                let mut header = RunHeader::new(info, layers, declaration.config.clone());
                header.producer = run_file::Producer {
                    name: declaration.producer.clone(),
                    version: declaration.version.clone(),
                };
                header
            }
        };
        self.recorder
            .write_header(header)
            .map_err(|e| e.to_string())
    }

    /// Records a command's outcome in `actions.jsonl`.
    pub fn record_steer(&mut self, steer: &Steer) -> Result<(), String> {
        self.actions.record(steer).map_err(|e| e.to_string())
    }

    pub fn steering_actions(&self) -> usize {
        self.actions.count
    }

    /// The summary of the run so far, and whether `summary.json` was written.
    pub fn write_summary(&mut self, base: SummaryBase) -> (Summary, Result<(), String>) {
        let summary = self.recorder.summary(base);
        let written = self
            .recorder
            .write_summary(&summary)
            .map_err(|e| e.to_string());
        (summary, written)
    }

    /// Sends the last events, waits until the hub has handed them out and closed the
    /// endpoint, and releases the folder.
    pub fn close(self) {
        let Wiring {
            recorder,
            events,
            local,
            hub,
            ..
        } = self;
        drop(events);
        // The hub forwards every event here too: keep it flowing until the hub ends.
        let drain = std::thread::spawn(move || for _ in local.iter() {});
        if let Some(hub) = hub {
            hub.join();
        }
        let _ = drain.join();
        drop(recorder);
    }
}

/// A TOML string literal.
fn toml_text(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// `config.toml` for a run ltmlp did not train: a preset that names the producer, the shape
/// and the length, so that `ls`, `watch` and `report` read the folder as any other; its data
/// source names no data, so that `run --replay`, `--resume`, `eval` and `export` refuse it.
pub fn stand_in_config(d: &Declaration) -> String {
    let hidden: Vec<String> = d.layers[1..d.layers.len() - 1]
        .iter()
        .map(|l| l.units.to_string())
        .collect();
    let task = match d.task {
        Task::Classify => "classify",
        Task::Autoencode => "autoencode",
        Task::Regress => "regress",
    };
    let rate = d
        .settings
        .iter()
        .find(|s| s.key == "train.learning_rate")
        .and_then(|s| s.value.trim().parse::<f64>().ok())
        .filter(|r| r.is_finite())
        .map_or("nan".to_string(), |r| format!("{r:?}"));
    let variant = if d.variant.is_empty() {
        "foreign"
    } else {
        &d.variant
    };
    format!(
        "# Written by `ltmlp host` for a run that {producer} {version} trained, not ltmlp: a\n\
         # stand-in, so that `ls`, `watch` and `report` read this folder. The trainer's own\n\
         # settings are in its `started` event (docs/protocol.md). `ltmlp run --replay`,\n\
         # `--resume`, `eval` and `export` cannot use it: its data source names no data.\n\
         name = {name}\n\
         description = {description}\n\
         variant = {variant}\n\n\
         [data]\n\
         source = {source}\n\
         monitor = {monitor}\n\n\
         [model]\n\
         task = \"{task}\"\n\
         hidden = [{hidden}]\n\n\
         [train]\n\
         epochs = {epochs}\n\
         batch_size = {batch}\n\
         learning_rate = {rate}\n",
        producer = d.producer.replace('\n', " "),
        version = d.version.replace('\n', " "),
        name = toml_text(&d.producer),
        description = toml_text(&format!(
            "{} trained by {} {}",
            d.topology(),
            d.producer,
            d.version
        )),
        variant = toml_text(variant),
        source = toml_text(&format!("(trained by {}) {}", d.producer, d.data)),
        monitor = match d.monitor {
            crate::preset::Monitor::Validation => "\"validation\"",
            crate::preset::Monitor::Test => "\"test\"",
        },
        hidden = hidden.join(", "),
        epochs = d.epochs,
        batch = d.batch_size.max(1),
    )
}
