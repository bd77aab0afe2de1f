//! Following a run folder that another process is writing (`ltmlp watch`): its files are turned
//! back into protocol events, so the dashboard can show a headless run read-only.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::{CONFIG_FILE, METRICS_JSONL, SUMMARY_FILE};
use crate::preset::{PresetFile, Task};
use crate::train::{EpochMetrics, Event, Progress, RunInfo, RunState, Summary};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(500);

/// Starts a thread that follows `dir` and sends its events; it ends when the receiver is
/// dropped. Fails at once if `dir` holds no run.
pub fn follow(dir: &Path) -> anyhow::Result<Receiver<Event>> {
    let config = dir.join(CONFIG_FILE);
    let file = PresetFile::read(&config)
        .map_err(|e| anyhow::anyhow!("{e} (is {} a run folder?)", dir.display()))?;
    let p = &file.preset;
    let info = RunInfo {
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
    };
    let (tx, rx) = unbounded();
    let dir = dir.to_owned();
    std::thread::Builder::new()
        .name("ltmlp-follow".into())
        .spawn(move || run(dir, info, tx))?;
    Ok(rx)
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
    let mut last_iteration = 0;
    let mut last_epoch = 0;
    let mut line = 0;
    loop {
        let lines = tail.new_lines();
        if std::mem::take(&mut tail.restarted) {
            line = 0;
            last_epoch = 0;
        }
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
    let text = fs::read_to_string(dir.join(SUMMARY_FILE)).ok()?;
    let summary: Summary = serde_json::from_str(&text).ok()?;
    (summary.iterations >= last_iteration && summary.state.is_over()).then_some(summary)
}

/// Reads whole lines appended to a file since the last call; a torn last line waits.
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

    fn new_lines(&mut self) -> Vec<String> {
        let Ok(mut file) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // The file was rewritten (a resumed run): start over.
            self.offset = 0;
            self.pending.clear();
            self.restarted = true;
        }
        let mut chunk = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut chunk).is_err()
        {
            return Vec::new();
        }
        self.offset += chunk.len() as u64;
        self.pending.push_str(&chunk);
        let Some(end) = self.pending.rfind('\n') else {
            return Vec::new();
        };
        let complete: String = self.pending.drain(..=end).collect();
        complete.lines().map(str::to_string).collect()
    }
}
