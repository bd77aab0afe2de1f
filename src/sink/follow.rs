//! Following a run folder that another process is writing (`ltmlp watch`): its files are turned
//! back into protocol events, so the dashboard can show a headless run read-only.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::units::{UnitsRecord, UNITS_JSONL};
use super::{CONFIG_FILE, METRICS_JSONL, SUMMARY_FILE};
use crate::bounded::{self, FileKind};
use crate::preset::{PresetFile, Task};
use crate::stats::LayerStats;
use crate::train::{EpochMetrics, Event, Progress, RunInfo, RunState, Summary};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(500);

/// Starts a thread that follows `dir` and sends its events; it ends when the receiver is
/// dropped. Fails at once if `dir` holds no run.
pub fn follow(dir: &Path) -> anyhow::Result<Receiver<Event>> {
    let info = match super::run_file::read(dir).map_err(anyhow::Error::msg)? {
        Some(header) => RunInfo {
            out_dir: Some(dir.display().to_string()),
            ..header.info
        },
        None => info_from_config(dir)?,
    };
    let (tx, rx) = unbounded();
    let dir = dir.to_owned();
    std::thread::Builder::new()
        .name("ltmlp-follow".into())
        .spawn(move || run(dir, info, tx))?;
    Ok(rx)
}

/// A header rebuilt from `config.toml`, for a folder written before `run.json` existed: the
/// network's weights and the iterations of an epoch are not known (0).
fn info_from_config(dir: &Path) -> anyhow::Result<RunInfo> {
    let config = dir.join(CONFIG_FILE);
    let file = PresetFile::read_config(&config)
        .map_err(|e| anyhow::anyhow!("{e} (is {} a run folder?)", dir.display()))?;
    let p = &file.preset;
    Ok(RunInfo {
        preset: p.name.clone(),
        variant: p.variant.clone(),
        data: p.data.source.clone(),
        topology: format!(
            "hidden {}",
            p.model
                .hidden
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("-")
        ),
        weights: 0,
        epochs: p.train.epochs,
        iterations_per_epoch: 0,
        batch_size: p.train.batch_size,
        classify: p.model.task == Task::Classify,
        precision: format!("{:?}", p.train.precision).to_lowercase(),
        out_dir: Some(dir.display().to_string()),
        monitor: p.data.monitor,
        optimizer: p.train.optimizer,
        task: Some(p.model.task),
        trainer: None,
    })
}

fn run(dir: PathBuf, info: RunInfo, tx: Sender<Event>) {
    let send = |e: Event| tx.send(e).is_ok();
    if !send(Event::Started(info)) {
        return;
    }
    send(Event::Log(format!(
        "watching {} read-only: keys that steer training do nothing here",
        dir.display()
    )));
    send(Event::State(RunState::Running));
    let path = dir.join(METRICS_JSONL);
    let mut tail = Tail::new(path.clone());
    let mut units = Units::new(&dir);
    let mut last_iteration = 0;
    let mut refused = false;
    let mut last_epoch = 0;
    let mut line = 0;
    loop {
        let lines = match tail.new_lines() {
            Ok(lines) => lines,
            Err(reason) => {
                // Said once; the summary may still end the view.
                if !refused && !send(Event::Log(reason)) {
                    return;
                }
                refused = true;
                Vec::new()
            }
        };
        if std::mem::take(&mut tail.restarted) {
            line = 0;
            last_epoch = 0;
        }
        // Read after the metrics: an evaluation's units are written after its record.
        units.read();
        for text in lines {
            line += 1;
            // A damaged record is said once and skipped: the dashboard shows the others.
            let m = match serde_json::from_str::<EpochMetrics>(&text) {
                Ok(m) if m.epoch > last_epoch => m,
                Ok(m) => {
                    damaged(&tx, &path, line, &format!("epoch {} again", m.epoch));
                    continue;
                }
                Err(e) => {
                    damaged(&tx, &path, line, &format!("not a metrics record: {e}"));
                    continue;
                }
            };
            last_epoch = m.epoch;
            last_iteration = m.iteration;
            // As a live run sends them: the units with the evaluation and its statistics.
            let mut m = m;
            units.fill(m.epoch, &mut m.layers);
            let ok = send(Event::Progress(progress_of(&m)))
                && send(Event::Layers {
                    iteration: m.iteration,
                    layers: m.layers.clone(),
                })
                && send(Event::Epoch(Box::new(m)));
            if !ok {
                return;
            }
        }
        if let Some(summary) = finished(&dir, last_iteration) {
            send(Event::State(summary.state));
            send(Event::Finished(Box::new(summary)));
            return;
        }
        // When the dashboard quits, the process ends and this thread with it.
        std::thread::sleep(POLL);
    }
}

/// The per-unit statistics of the evaluations just read (`units.jsonl`; absent in folders
/// written before it existed), so that the unit view shows them: only the records of the
/// evaluations read in the same poll are kept.
struct Units {
    tail: Tail,
    records: Vec<UnitsRecord>,
}

impl Units {
    fn new(dir: &Path) -> Self {
        Units {
            tail: Tail::new(dir.join(UNITS_JSONL)),
            records: Vec::new(),
        }
    }

    /// Takes the records added since the last poll (a damaged one is left out: the unit view
    /// then shows that evaluation's layers without their units, as before the file existed).
    fn read(&mut self) {
        let lines = self.tail.new_lines().unwrap_or_default();
        self.records = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
    }

    /// Puts the units of evaluation `epoch` into its layers, if they were read.
    fn fill(&self, epoch: usize, layers: &mut [LayerStats]) {
        if let Some(record) = self.records.iter().find(|r| r.epoch == epoch) {
            record.fill(layers);
        }
    }
}

/// Tells the dashboard that a line of the metrics log is damaged, instead of leaving it
/// waiting for statistics that will not come.
fn damaged(tx: &Sender<Event>, path: &Path, line: usize, what: &str) {
    let _ = tx.send(Event::Failed(format!(
        "{}: line {line}: {what}; the file was edited or damaged, the record is not shown \
         (`ltmlp report` leaves this run out)",
        path.display()
    )));
}

fn progress_of(m: &EpochMetrics) -> Progress {
    Progress {
        epoch: m.epoch,
        iteration: m.iteration,
        learning_rate: m.learning_rate,
        momentum: m.momentum,
        examples_per_second: m.examples_per_second,
        elapsed_seconds: m.elapsed_seconds,
        batch_loss: m.train_loss,
    }
}

/// The run's summary once it has ended after the last line read (a summary left by an
/// earlier, resumed part of the run does not count).
fn finished(dir: &Path, last_iteration: u64) -> Option<Summary> {
    let text = bounded::read_text(&dir.join(SUMMARY_FILE), FileKind::Summary).ok()?;
    let summary: Summary = serde_json::from_str(&text).ok()?;
    (summary.iterations >= last_iteration && summary.state.is_over()).then_some(summary)
}

/// Reads whole lines appended to a file since the last call; a torn last line waits. The
/// file is read through the bounded reader, and never past the metrics log's limit.
struct Tail {
    path: PathBuf,
    offset: u64,
    pending: String,
    /// The file was rewritten since the last call: its lines come again from the first.
    restarted: bool,
}

impl Tail {
    fn new(path: PathBuf) -> Self {
        Tail {
            path,
            offset: 0,
            pending: String::new(),
            restarted: false,
        }
    }

    /// The whole lines added since the last call, or why the file cannot be followed (a missing
    /// file is a run that has not written yet: no lines, no error).
    fn new_lines(&mut self) -> Result<Vec<String>, String> {
        let mut checked = match bounded::open(&self.path, FileKind::Metrics) {
            Ok(checked) => checked,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        if checked.size < self.offset {
            // The file was rewritten (a resumed run): start over.
            self.offset = 0;
            self.pending.clear();
            self.restarted = true;
        }
        let limit = FileKind::Metrics.limit();
        let mut chunk = Vec::new();
        let read = checked
            .file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| {
                bounded::read_at_most(&mut checked.file, limit - self.offset, &mut chunk)
            });
        match read {
            Ok(true) => {}
            Ok(false) => {
                return Err(bounded::ReadError::new(
                    &self.path,
                    FileKind::Metrics,
                    bounded::Problem::TooLarge,
                )
                .to_string())
            }
            Err(_) => return Ok(Vec::new()),
        }
        // Only whole characters are taken: a read may end inside one that is being written.
        let whole = match std::str::from_utf8(&chunk) {
            Ok(_) => chunk.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => {
                return Err(format!(
                    "{}: not UTF-8 text after byte {}; the file was edited or damaged,                      the records after that point are not shown",
                    self.path.display(),
                    self.offset
                ))
            }
        };
        chunk.truncate(whole);
        let chunk = String::from_utf8(chunk).unwrap_or_default();
        self.offset += chunk.len() as u64;
        self.pending.push_str(&chunk);
        let Some(end) = self.pending.rfind('\n') else {
            return Ok(Vec::new());
        };
        let complete: String = self.pending.drain(..=end).collect();
        Ok(complete.lines().map(str::to_string).collect())
    }
}
