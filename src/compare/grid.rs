//! Running the variant × seed grid of a comparison, J runs at a time, each in its own folder;
//! a failed run is recorded and the others go on.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::unbounded;

use super::runs::FAILED_FILE;
use crate::data::{self, RawData};
use crate::preset::{PresetFile, Resolved};
use crate::train::{spawn, Event, Experiment, RunState, SessionOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct GridOptions {
    pub preset: PathBuf,
    pub variants: Vec<String>,
    pub seeds: usize,
    pub jobs: usize,
    pub out: PathBuf,
    pub data: Option<PathBuf>,
    pub overrides: Vec<String>,
}

/// One run of the grid.
struct Job {
    name: String,
    resolved: Resolved,
}

/// How one run ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub name: String,
    pub state: Option<RunState>,
    pub error: Option<String>,
}

/// Resolves every variant × seed and checks them all before anything runs.
fn plan(opts: &GridOptions) -> anyhow::Result<Vec<Job>> {
    let file = PresetFile::read(&opts.preset)?;
    let base_seed = file.preset.train.seed;
    let mut jobs = Vec::new();
    for variant in &opts.variants {
        for i in 0..opts.seeds {
            let seed = base_seed + i as u64;
            let mut overrides = opts.overrides.clone();
            overrides.push(format!("train.seed={seed}"));
            if opts.jobs > 1 {
                overrides.push("train.threads=1".to_string());
            }
            let resolved = file.resolve(Some(variant), &overrides)?;
            jobs.push(Job {
                name: format!("{variant}-seed{seed}"),
                resolved,
            });
        }
    }
    Ok(jobs)
}

/// Trains one job to its end; returns its end state.
fn run_job(
    job: Job,
    raw: &RawData,
    description: &str,
    out: &std::path::Path,
    log: &(dyn Fn(String) + Sync),
) -> JobOutcome {
    let dir = out.join(&job.name);
    let fail = |error: String| {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(FAILED_FILE), format!("{error}\n"));
        log(format!("[{}] failed: {error}", job.name));
        JobOutcome {
            name: job.name.clone(),
            state: None,
            error: Some(error),
        }
    };
    let exp = match Experiment::from_raw(job.resolved.clone(), raw, description.to_string()) {
        Ok(exp) => exp,
        Err(e) => return fail(e.to_string()),
    };
    let session = match spawn(
        exp,
        SessionOptions {
            out_dir: Some(dir.clone()),
            ..SessionOptions::default()
        },
    ) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let mut epochs = 0;
    let mut outcome = None;
    for event in session.events.iter() {
        match event {
            Event::Started(info) => epochs = info.epochs,
            Event::Epoch(m) => log(format!(
                "[{}] epoch {}/{}  valid {}  train loss {:.4}",
                job.name,
                m.epoch,
                epochs,
                m.validation_error.map_or_else(
                    || format!("loss {:.4}", m.validation_loss),
                    |e| format!("{e:.2}%")
                ),
                m.train_loss
            )),
            Event::Finished(s) => {
                log(format!(
                    "[{}] {}{}",
                    job.name,
                    s.state.label(),
                    s.reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(": {r}"))
                ));
                outcome = Some(s.state);
                break;
            }
            _ => {}
        }
    }
    session.join();
    match outcome {
        Some(state) => JobOutcome {
            name: job.name,
            state: Some(state),
            error: None,
        },
        // The training thread ended without a summary: it panicked.
        None => fail("the training thread stopped unexpectedly".to_string()),
    }
}

/// Runs the whole grid, `jobs` at a time; returns every run's outcome.
pub fn run_grid(opts: &GridOptions) -> anyhow::Result<Vec<JobOutcome>> {
    let jobs = plan(opts)?;
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|mut j| {
            if let Some(dir) = &opts.data {
                j.resolved.preset.data.source = dir.display().to_string();
            }
            j
        })
        .collect();
    let source = jobs
        .first()
        .map(|j| j.resolved.preset.data.source())
        .unwrap_or(data::DataSource::Embedded);
    let raw = Arc::new(data::load(&source)?);
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", opts.out.display()))?;
    let description = source.describe();
    let (tx, rx) = unbounded::<Job>();
    for job in jobs {
        let _ = tx.send(job);
    }
    drop(tx);
    let outcomes = Mutex::new(Vec::new());
    let log = |line: String| println!("{line}");
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            let rx = rx.clone();
            let raw = Arc::clone(&raw);
            let (outcomes, description, log) = (&outcomes, &description, &log);
            scope.spawn(move || {
                for job in rx.iter() {
                    let outcome = run_job(job, &raw, description, &opts.out, log);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push(outcome);
                    }
                }
            });
        }
    });
    Ok(outcomes.into_inner().unwrap_or_default())
}
