//! A foreign run's records and endpoint: its folder opened by `host::open_run` (the same
//! subscriber list as a native run's), the hub with its event and command channels, and the
//! summary at the end.

use std::path::{Path, PathBuf};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::messages::Declaration;
use crate::host::{open_run, Opening};
use crate::protocol::summary::{Standing, SummaryBase};
use crate::protocol::{Command, EpochMetrics, Event, RunInfo, RunRecords, Steer, Summary};
use crate::sink::run_file::{self, RunHeader};
use crate::sink::run_files::Continue;

/// One hosted run's records and endpoint.
pub struct Wiring {
    dir: PathBuf,
    records: RunRecords,
    /// The last and best evaluation so far, for the summary.
    standing: Standing,
    steering_actions: usize,
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
/// `declaration.resume_from` epochs) through the host's one way of opening a run, writes or
/// keeps its files (`run.json` names the trainer as the producer), and opens its endpoint.
/// Nothing is left in a new folder when this fails.
pub fn open(
    dir: &Path,
    declaration: &Declaration,
    info: &RunInfo,
    force: bool,
    tensorboard: bool,
) -> Result<Wiring, String> {
    let opening = match declaration.resume_from {
        Some(epochs) => Opening::Resume(Continue {
            lines: epochs,
            mark: None,
            iteration: None,
        }),
        // No config.toml: ltmlp cannot repeat a run it did not train; run.json describes it.
        None => Opening::New {
            force,
            config_toml: None,
        },
    };
    let records = open_run(
        dir,
        opening,
        |kept| header(declaration, info, kept),
        tensorboard,
    )
    .map_err(|e| e.to_string())?;
    let standing = Standing::of(&records.kept);
    let steering_actions = records.kept_actions.len();
    let (events, trainer_events) = unbounded();
    let (commands_tx, commands) = unbounded();
    let (local, hub) = crate::remote::hub::start(dir, trainer_events, commands_tx);
    Ok(Wiring {
        dir: dir.to_owned(),
        records,
        standing,
        steering_actions,
        events,
        commands,
        local,
        hub,
    })
}

/// `run.json` for the declared run: the kept one of a resume, reopened, or a new one whose
/// producer is the trainer, not ltmlp.
fn header(declaration: &Declaration, info: &RunInfo, kept: Option<RunHeader>) -> RunHeader {
    if let (Some(mut kept), Some(_)) = (kept, declaration.resume_from) {
        kept.info = info.clone();
        kept.restart();
        return kept;
    }
    let layers = declaration
        .layers
        .iter()
        .map(|l| run_file::Layer {
            name: l.name.clone(),
            units: l.units,
            kind: l.kind.clone(),
        })
        .collect();
    let mut header = RunHeader::new(info.clone(), layers, declaration.config.clone());
    header.producer = run_file::Producer {
        name: declaration.producer.clone(),
        version: declaration.version.clone(),
    };
    header
}

impl Wiring {
    /// The evaluations kept from before a resume (handed out once, to be replayed).
    pub fn take_kept(&mut self) -> Vec<EpochMetrics> {
        std::mem::take(&mut self.records.kept)
    }

    /// The last evaluation recorded (kept or new).
    pub fn last_evaluation(&self) -> Option<&EpochMetrics> {
        self.standing.last.as_ref()
    }

    /// Hands one evaluation to the subscribers; an error says it waits (with any later
    /// records) for the next write that gets through.
    pub fn record_epoch(&mut self, m: &EpochMetrics) -> Result<(), String> {
        self.standing.after(m);
        self.records
            .subscribers
            .publish(&Event::Epoch(Box::new(m.clone())))
            .map_err(|e| e.to_string())
    }

    /// Hands a command's outcome to the subscribers (`actions.jsonl`).
    pub fn record_steer(&mut self, steer: &Steer) -> Result<(), String> {
        self.steering_actions += 1;
        self.records
            .subscribers
            .publish(&Event::Steered(steer.clone()))
            .map_err(|e| e.to_string())
    }

    pub fn steering_actions(&self) -> usize {
        self.steering_actions
    }

    /// The run's summary, and whether every record and the summary were written.
    pub fn write_summary(&mut self, base: SummaryBase) -> (Summary, Result<(), String>) {
        let summary = self.standing.summary(base, Some(&self.dir));
        let written = self
            .records
            .subscribers
            .publish(&Event::Finished(Box::new(summary.clone())))
            .map_err(|e| e.to_string());
        (summary, written)
    }

    /// Sends the last events, waits until the hub has handed them out and closed the
    /// endpoint, and releases the folder.
    pub fn close(self) {
        let Wiring {
            records,
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
        drop(records);
    }
}
