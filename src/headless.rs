//! Headless runs: drive a training session without a terminal UI, print one line per epoch on
//! stdout and a progress bar on stderr when stderr is a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::train::{spawn, EpochMetrics, Event, Experiment, RunInfo, SessionOptions, Summary};

/// A fresh run folder name under `runs/`: `runs/<preset>-<variant>-<UTC time>`.
pub fn default_out_dir(preset: &str, variant: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    PathBuf::from("runs").join(format!("{preset}-{variant}-{stamp}"))
}

/// One human line per evaluation.
pub fn epoch_line(info: &RunInfo, m: &EpochMetrics) -> String {
    let pct = |e: Option<f64>| e.map_or(String::new(), |e| format!(" ({e:.2}%)"));
    let collapsed =
        m.layers.iter().map(|l| l.collapsed_fraction).sum::<f64>() / m.layers.len().max(1) as f64;
    format!(
        "epoch {:>3}/{}  train {:.4}{}  valid {:.4}{}  test {:.4}{}  lr {:.4}  {} {:>7.0} ex/s  collapsed {:.1}%  {:.1}s",
        m.epoch,
        info.epochs,
        m.train_loss,
        pct(m.train_error),
        m.validation_loss,
        pct(m.validation_error),
        m.test_loss,
        pct(m.test_error),
        m.learning_rate,
        m.flags.label(),
        m.examples_per_second,
        100.0 * collapsed,
        m.elapsed_seconds,
    )
}

/// A one-paragraph summary for the end of a run.
pub fn summary_text(s: &Summary) -> String {
    let pct = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{e:.2}%"));
    let mut text = format!(
        "{} [{}] {} after {} epochs ({} iterations) in {:.1}s, {:.0} examples/s\n\
         final: validation {} (loss {}), test {}\n\
         best:  epoch {}, validation {}, test at best {}",
        s.preset,
        s.variant,
        s.state.label(),
        s.epochs_completed,
        s.iterations,
        s.wall_seconds,
        s.examples_per_second,
        pct(s.final_validation_error),
        s.final_validation_loss
            .map_or("-".into(), |l| format!("{l:.4}")),
        pct(s.final_test_error),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        pct(s.best_validation_error),
        pct(s.test_error_at_best),
    );
    if let Some(reason) = &s.reason {
        text.push_str(&format!("\nreason: {reason}"));
    }
    if let Some(dir) = &s.out_dir {
        text.push_str(&format!("\nfiles: {dir}"));
    }
    text
}

/// Trains to the end, printing as it goes; returns the summary.
pub fn run(exp: Experiment, out_dir: &Path) -> anyhow::Result<Summary> {
    let session = spawn(
        exp,
        SessionOptions {
            out_dir: Some(out_dir.to_owned()),
            start_paused: false,
        },
    )?;
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
    let mut summary = None;
    for event in session.events.iter() {
        match event {
            Event::Started(i) => {
                println!(
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
                );
                bar.set_length((i.epochs * i.iterations_per_epoch) as u64);
                info = Some(i);
            }
            Event::Progress(p) => {
                bar.set_position(p.iteration);
                bar.set_message(format!(
                    "loss {:.4}  {:.0} ex/s",
                    p.batch_loss, p.examples_per_second
                ));
            }
            Event::Epoch(m) => {
                if let Some(i) = &info {
                    bar.suspend(|| println!("{}", epoch_line(i, &m)));
                }
            }
            Event::Log(line) => bar.suspend(|| eprintln!("{line}")),
            Event::Failed(reason) => bar.suspend(|| eprintln!("error: {reason}")),
            Event::Finished(s) => {
                summary = Some(*s);
                break;
            }
            Event::Layers { .. } | Event::Transform(_) | Event::State(_) => {}
        }
    }
    bar.finish_and_clear();
    session.join();
    summary.ok_or_else(|| anyhow::anyhow!("the training thread ended without a summary"))
}
