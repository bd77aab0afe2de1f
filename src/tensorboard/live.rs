//! The live TensorBoard writer: one more subscriber of a run (`train.tensorboard`,
//! `--tensorboard`), native or foreign. It writes `events.out.tfevents.*` in the run folder
//! while the run trains, the same records `ltmlp export-tb` makes of the finished folder
//! (scalars and per-unit histograms of every evaluation, steering as text, HParams at the
//! end). Each record goes to the system when written and is fsynced with the checkpoints; a
//! resume cuts the file back to the checkpoint: the records of the kept evaluations and of
//! the steering up to its iteration stay, the rest is moved aside, so every step is there once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::export::{write_action, write_end, write_histograms, write_scalars, ACTIONS_TAG};
use super::proto::{self, What};
use super::writer::{self, EventWriter, EVENT_FILE_PREFIX};
use crate::protocol::{EpochMetrics, Event, Steer, Subscriber, WriteError};
use crate::sink::units::UnitsRecord;

/// Where a resume moves the records after the checkpoint (its name holds no `tfevents`, so
/// that TensorBoard does not read them).
pub const AFTER_CHECKPOINT_FILE: &str = "tensorboard.after-checkpoint";

/// A run's live event file.
pub struct LiveEvents {
    writer: EventWriter,
    /// The run's start (Unix seconds): the HParams session's start.
    start: f64,
    hparams: HashMap<String, prost_types::Value>,
    last_epoch: i64,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |e| {
        WriteError(format!(
            "{}: cannot write ({e}); free some space, or run without --tensorboard",
            path.display()
        ))
    }
}

/// The run folder's event file, if it has one (the newest by name).
pub fn event_file(dir: &Path) -> Option<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(EVENT_FILE_PREFIX)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files.pop()
}

impl LiveEvents {
    /// Starts the event file of a new run in `dir`, with the run's settings for the end.
    pub fn create(
        dir: &Path,
        hparams: HashMap<String, prost_types::Value>,
    ) -> Result<Self, WriteError> {
        let start = now();
        let writer = EventWriter::create(dir, start).map_err(io_error(dir))?;
        Ok(LiveEvents {
            writer,
            start,
            hparams,
            last_epoch: 0,
        })
    }

    /// Continues the run in `dir` after its kept evaluations `kept` and its steering up to
    /// `iteration`: the event file's records of those stay, the rest is moved aside. A folder
    /// without an event file (a run that wrote none before) gets one holding the kept records.
    pub fn resume(
        dir: &Path,
        hparams: HashMap<String, prost_types::Value>,
        kept: &[EpochMetrics],
        kept_actions: &[Steer],
        iteration: u64,
    ) -> Result<Self, WriteError> {
        let last_epoch = kept.last().map_or(0, |m| m.epoch as i64);
        let Some(path) = event_file(dir) else {
            let mut live = LiveEvents::create(dir, hparams)?;
            for m in kept {
                live.epoch(m)?;
            }
            for steer in kept_actions {
                live.steer(steer)?;
            }
            return Ok(live);
        };
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        let keep = kept_prefix(&bytes, last_epoch, iteration);
        let tail = &bytes[keep as usize..];
        if !tail.is_empty() {
            let aside = dir.join(AFTER_CHECKPOINT_FILE);
            crate::durable::append_aside(&aside, tail).map_err(io_error(&aside))?;
        }
        let writer = EventWriter::continue_after(&path, keep).map_err(io_error(&path))?;
        // The run's start stays the file's (its name holds it).
        let start = writer::records(&bytes)
            .first()
            .map_or_else(now, |(_, e)| e.wall_time);
        Ok(LiveEvents {
            writer,
            start,
            hparams,
            last_epoch,
        })
    }

    /// One evaluation: its scalars and its per-unit histograms, all or none.
    fn epoch(&mut self, m: &EpochMetrics) -> Result<(), WriteError> {
        let path = self.writer.path().to_owned();
        let before = self.writer.len();
        let wall = now();
        let epoch = m.epoch as i64;
        let written = serde_json::to_value(m)
            .and_then(|record| serde_json::to_value(UnitsRecord::of(m)).map(|u| (record, u)))
            .map_err(std::io::Error::other)
            .and_then(|(record, units)| {
                write_scalars(&mut self.writer, &record, epoch, wall)?;
                write_histograms(&mut self.writer, &units, epoch, wall)
            });
        if let Err(e) = written {
            self.writer.rewind(before);
            return Err(io_error(&path)(e));
        }
        self.last_epoch = epoch;
        Ok(())
    }

    fn steer(&mut self, steer: &Steer) -> Result<(), WriteError> {
        let path = self.writer.path().to_owned();
        write_action(&mut self.writer, steer, now()).map_err(io_error(&path))
    }
}

/// The bytes of an event file's records that a resume keeps: the leading records of
/// evaluations up to `last_epoch` and of steering up to `iteration` (and the version record);
/// the first other one (a later evaluation or action, or the HParams end of a run that then
/// went on) and everything after it go.
pub fn kept_prefix(bytes: &[u8], last_epoch: i64, iteration: u64) -> u64 {
    let mut keep = 0;
    for (end, event) in writer::records(bytes) {
        let kept = match &event.what {
            Some(What::FileVersion(_)) => true,
            Some(What::Summary(proto::Summary { value })) => value.iter().all(|v| {
                if v.tag == ACTIONS_TAG {
                    u64::try_from(event.step).is_ok_and(|s| s <= iteration)
                } else {
                    !v.tag.starts_with("_hparams_/")
                        && !v.tag.starts_with(super::export::HPARAMS_METRIC_GROUP)
                        && event.step <= last_epoch
                }
            }),
            _ => false,
        };
        if !kept {
            break;
        }
        keep = end;
    }
    keep
}

impl Subscriber for LiveEvents {
    fn wants(&self, event: &Event) -> bool {
        matches!(
            event,
            Event::Epoch(_) | Event::Steered(_) | Event::Finished(_)
        )
    }

    fn on_event(&mut self, event: &Event) -> Result<(), WriteError> {
        match event {
            Event::Epoch(m) => self.epoch(m),
            Event::Steered(steer) => self.steer(steer),
            Event::Finished(summary) => {
                let path = self.writer.path().to_owned();
                let before = self.writer.len();
                let written = serde_json::to_value(summary)
                    .map_err(std::io::Error::other)
                    .and_then(|summary| {
                        write_end(
                            &mut self.writer,
                            self.start,
                            &self.hparams,
                            &summary,
                            self.last_epoch,
                        )
                    });
                if let Err(e) = written {
                    self.writer.rewind(before);
                    return Err(io_error(&path)(e));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn sync(&mut self) -> Result<(), WriteError> {
        let path = self.writer.path().to_owned();
        self.writer.sync().map_err(io_error(&path))
    }
}
