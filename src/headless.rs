//! Headless runs: drive a training session without a terminal UI, print one line per epoch on
//! stdout and a progress bar on stderr when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::host::{spawn, RetryPolicy};
use crate::protocol::{wording, Event, Steer, Summary, TransformCause};
use crate::train::checkpoint::Checkpoint;
use crate::train::{Experiment, SessionOptions};

/// A fresh run folder under `runs/`, created here: `runs/<preset>-<variant>-<UTC time>`, with
/// `-2`, `-3`, … when runs start in the same second.
pub fn default_out_dir(preset: &str, variant: &str) -> anyhow::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    let parent = Path::new("runs");
    crate::sink::create_unique(parent, &format!("{preset}-{variant}-{stamp}"))
        .map_err(|e| anyhow::anyhow!("{}: cannot create a run folder: {e}", parent.display()))
}

/// A one-paragraph summary for the end of a run.
pub fn summary_text(s: &Summary) -> String {
    let pct = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{e:.2}%"));
    let mut text = format!(
        "{} [{}] {} after {} epochs ({} iterations) in {:.1}s, {:.0} examples/s\n\
         final: {} {} (loss {}), test {}\n\
         best:  epoch {}, {} {}, test at best {}",
        s.preset,
        s.variant,
        s.state.label(),
        s.epochs_completed,
        s.iterations,
        s.wall_seconds,
        s.examples_per_second,
        s.monitor.label(),
        pct(s.final_validation_error),
        s.final_validation_loss
            .map_or("-".into(), |l| format!("{l:.4}")),
        pct(s.final_test_error),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        s.monitor.label(),
        pct(s.best_validation_error),
        pct(s.test_error_at_best),
    );
    if s.reestimate_seconds > 0.0 && s.train_seconds > s.reestimate_seconds {
        text.push_str(&format!(
            "\nre-estimating the transformations took {:.1}s of {:.1}s training: +{:.1}% over training without it",
            s.reestimate_seconds,
            s.train_seconds,
            100.0 * s.reestimate_seconds / (s.train_seconds - s.reestimate_seconds),
        ));
    }
    if let Some(w) = &s.wall {
        let other =
            s.wall_seconds - w.steps - w.reestimation - w.evaluation - w.statistics - w.files;
        text.push_str(&format!(
            "\nwall time {:.1}s: steps {:.1}s, epoch-end re-estimation {:.1}s, evaluation {:.1}s, statistics {:.1}s, files {:.1}s, other {:.1}s",
            s.wall_seconds,
            w.steps,
            w.reestimation,
            w.evaluation,
            w.statistics,
            w.files,
            other.max(0.0)
        ));
    }
    if let Some(reason) = &s.reason {
        text.push_str(&format!("\nreason: {reason}"));
    }
    if let Some(dir) = &s.out_dir {
        text.push_str(&format!("\nfiles: {dir}"));
    }
    text
}

/// The process's stop flag: the first call installs handlers so that SIGINT, SIGTERM and
/// SIGHUP stop a run cleanly (finish the minibatch, save a checkpoint, flush the metrics); the
/// flag then holds the signal's number. A signal the process was started ignoring (SIGHUP
/// under `nohup`) stays ignored.
pub fn interrupt_flag() -> Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    Arc::clone(FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            if is_ignored(signal) {
                continue;
            }
            // Without a handler the default action still ends the process; the last
            // checkpoint then remains the place to resume from.
            let _ = signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize);
        }
        flag
    }))
}

/// Whether `signal`'s disposition is "ignore" (inherited from `nohup` or `trap '' HUP`).
fn is_ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current disposition into a
    // zeroed struct that we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Prints a line on stdout (and so does [`crate::say!`]); a closed stdout (`ltmlp run … | head -1`) must not stop a run
/// that is still writing its files, so failures are ignored.
pub fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Prints a line on stderr, ignoring a closed stderr.
pub fn warn(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// How a headless run starts, besides its experiment and folder.
#[derive(Debug, Default)]
pub struct Start {
    pub resume: Option<Checkpoint>,
    pub interrupt: Option<Arc<AtomicUsize>>,
    pub force: bool,
    /// `--replay`: another run's recorded actions.
    pub replay: Vec<Steer>,
    /// The detached child of `--background` or the dashboard: once the run can be attached
    /// to, its output goes to the folder's `output.log`.
    pub detached: bool,
    /// `--trace FILE` (src/train/trace.rs).
    pub trace: Option<PathBuf>,
}

/// Trains to the end (or a signal), printing as it goes; returns the summary.
pub fn run(exp: Experiment, out_dir: &Path, start: Start) -> anyhow::Result<Summary> {
    let checkpoint_every = exp.resolved.preset.train.checkpoint_every;
    let tensorboard = exp.resolved.preset.train.tensorboard;
    let session = spawn(
        exp,
        SessionOptions {
            out_dir: Some(out_dir.to_owned()),
            resume: start.resume,
            checkpoint_every,
            interrupt: start.interrupt,
            start_paused: false,
            force: start.force,
            replay: start.replay,
            trace: start.trace,
            tensorboard,
        },
    )?;
    if start.detached {
        crate::remote::background::redirect_output(out_dir)?;
    }
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} it  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut info = None;
    let summary = session.drain(RetryPolicy::INTERACTIVE, |event| match event {
        Event::Started(i) => {
            say(&format!(
                "{} [{}] {} on {} ({} weights, {}), {} epochs × {} iterations, batch {}",
                i.preset,
                i.variant,
                i.topology,
                i.data,
                i.weights,
                i.precision,
                i.epochs,
                i.iterations_per_epoch,
                i.batch_size
            ));
            bar.set_length((i.epochs * i.iterations_per_epoch) as u64);
            info = Some(i.clone());
        }
        Event::Progress(p) => {
            bar.set_position(p.iteration);
            bar.set_message(format!(
                "loss {:.4}  {:.0} ex/s",
                p.batch_loss, p.examples_per_second
            ));
        }
        // The kept history of a resumed run is printed again, as the run's whole record.
        Event::Epoch(m) | Event::Replayed(m) => {
            if let Some(i) = &info {
                bar.suspend(|| say(&wording::epoch_line(i, m)));
            }
            // Rollbacks happen within steps, so they arrive with the epoch's record.
            for t in &m.transform_events {
                if matches!(t.cause, TransformCause::Rollback { .. }) {
                    let text = crate::protocol::wording::transform_text(t);
                    bar.suspend(|| warn(&format!("iteration {}: {text}", t.iteration)));
                }
            }
        }
        Event::Log(line) => bar.suspend(|| warn(line)),
        // Training paused so that nothing is lost; the drain asks it to retry.
        Event::Failed(reason) => bar.suspend(|| warn(&format!("error: {reason}"))),
        Event::Finished(_)
        | Event::Layers { .. }
        | Event::Transform(_)
        | Event::State(_)
        | Event::Steered(_)
        | Event::Tunables(_) => {}
    });
    bar.finish_and_clear();
    summary.ok_or_else(|| anyhow::anyhow!("the training thread ended without a summary"))
}
