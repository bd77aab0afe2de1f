//! The `ltmlp` binary: the TUI by default, headless runs and the lab's other commands.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use ltmlp::cli::{FolderArgs, RunArgs};
use ltmlp::headless;
use ltmlp::train::checkpoint::Checkpoint;
use ltmlp::train::{Experiment, RunState, Summary};

#[derive(Debug, Parser)]
#[command(
    name = "ltmlp",
    version,
    about = "A terminal lab for MLPs with transformed nonlinearities (α, β, γ)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a preset without a user interface and write the run's files
    Run {
        /// Preset file (TOML), e.g. presets/default.toml
        #[arg(required_unless_present = "resume")]
        preset: Option<PathBuf>,
        #[command(flatten)]
        folder: FolderArgs,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run every variant × seed of a preset and write a comparison report (a sweep without axes)
    Compare(ltmlp::sweep::CompareArgs),
    /// Run variants × settings × seeds (--grid KEY=V1,V2), here, on Slurm or from a plan
    Sweep(ltmlp::sweep::SweepArgs),
    /// Run one cell of a planned sweep (skips a finished cell, resumes an interrupted one)
    RunJob(ltmlp::sweep::RunJobArgs),
    /// Rebuild report.md, report.json and the plots of a comparison folder (runs may be in progress)
    Report {
        /// Comparison folder
        dir: PathBuf,
        /// Target validation error % (default: the presets' compare.target_error)
        #[arg(long)]
        target: Option<f64>,
    },
    /// Train a preset under the full-screen dashboard (the default with no arguments)
    Tui {
        /// Preset file (TOML); default: the built-in presets/default.toml
        preset: Option<PathBuf>,
        /// Instead of training: overlay the variants of a comparison folder, live
        #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "out", "resume"])]
        compare: Option<PathBuf>,
        #[command(flatten)]
        folder: FolderArgs,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Measure training throughput of the standard networks on synthetic MNIST-shaped data
    Bench {
        /// Threads for the matrix products
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Minibatch size (repeatable; default: 100 and 1000)
        #[arg(long)]
        batch: Vec<usize>,
        /// Network: plain, paper, paper-never, autoencoder (repeatable; default: all)
        #[arg(long, value_parser = ["plain", "paper", "paper-never", "autoencoder"])]
        net: Vec<String>,
        /// Examples trained per timed repetition
        #[arg(long, default_value_t = 20_000)]
        examples: usize,
        /// Timed repetitions (the median is reported)
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Rows of the output-change check run with each re-estimation (the preset default
        /// is 100; 0 matches the PyTorch reference, which has no such check)
        #[arg(long, default_value_t = 0)]
        check_samples: usize,
    },
    /// Evaluate a saved run on its own or other data: loss, error, per-class error, confusion
    Eval(ltmlp::eval::EvalArgs),
    /// Write a run's network (weights, biases, α, β, γ, preprocessing) as safetensors or .npz
    Export(ltmlp::export::ExportArgs),
    /// Open the dashboard read-only on a run another process is writing (e.g. under nohup)
    Watch {
        /// Run folder
        dir: PathBuf,
    },
    /// Measure the Hessian, the Fisher matrix, their spectra and the angles between the
    /// gradient and the Newton / natural-gradient directions (dense for small networks,
    /// Krylov at any size, while training a preset or on saved checkpoints)
    Diagnose(ltmlp::analysis::command::DiagnoseArgs),
}

fn run_headless(
    preset: Option<&PathBuf>,
    folder: &FolderArgs,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let exp = args.experiment(preset)?;
    let out = folder.new_run_dir(&exp)?;
    finish_headless(exp, &out, None, folder.force)
}

fn resume_headless(dir: &Path, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (exp, checkpoint) = args.resume_experiment(dir)?;
    finish_headless(exp, dir, Some(checkpoint), false)
}

fn finish_headless(
    exp: Experiment,
    out: &Path,
    resume: Option<Checkpoint>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let interrupt = headless::interrupt_flag();
    let summary = headless::run(exp, out, resume, Some(Arc::clone(&interrupt)), force)?;
    headless::say(&headless::summary_text(&summary));
    let signal = interrupt.load(Ordering::SeqCst);
    Ok(match summary.state {
        RunState::Finished => ExitCode::SUCCESS,
        // The reason was already printed on stderr as the run's last log line.
        RunState::Diverged => ExitCode::from(3),
        RunState::Stopped if signal != 0 => ExitCode::from(128 + signal as u8),
        _ => ExitCode::from(1),
    })
}

/// The dashboard when stdout is a terminal, else a headless run with a one-line notice.
fn run_tui(
    preset: Option<&PathBuf>,
    folder: &FolderArgs,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        eprintln!("ltmlp: stdout is not a terminal; running headless");
        return match &folder.resume {
            Some(dir) => resume_headless(dir, args),
            None => run_headless(preset, folder, args),
        };
    }
    let (exp, out, checkpoint) = match &folder.resume {
        Some(dir) => {
            let what = format!("{} and its data", dir.display());
            let (exp, checkpoint) = ltmlp::tui::loading(&what, || args.resume_experiment(dir))?;
            (exp, dir.to_owned(), Some(checkpoint))
        }
        None => {
            let what = preset.map_or("the default preset".into(), |p| p.display().to_string());
            let what = format!("{what} and its data");
            let exp = ltmlp::tui::loading(&what, || args.experiment(preset))?;
            let out = folder.new_run_dir(&exp)?;
            (exp, out, None)
        }
    };
    let summary = ltmlp::tui::run(exp, out, checkpoint, folder.force)?;
    headless::say(&headless::summary_text(&summary));
    // A signal (SIGTERM, SIGHUP) ends the dashboard with the shell's code for it.
    let signal = headless::interrupt_flag().load(Ordering::SeqCst);
    if signal != 0 && summary.state == RunState::Stopped {
        return Ok(ExitCode::from(128 + signal as u8));
    }
    Ok(exit_code(&summary))
}

fn watch(dir: &Path) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "watch draws the dashboard and needs a terminal; read {} directly instead",
            dir.join("metrics.jsonl").display()
        );
    }
    if let Some(summary) = ltmlp::tui::watch(dir)? {
        println!("{}", headless::summary_text(&summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_code(summary: &Summary) -> ExitCode {
    match summary.state {
        RunState::Finished | RunState::Stopped => ExitCode::SUCCESS,
        RunState::Diverged => {
            eprintln!(
                "error: {}",
                summary.reason.as_deref().unwrap_or("training diverged")
            );
            ExitCode::from(3)
        }
        _ => ExitCode::from(1),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run {
            preset,
            folder,
            args,
        }) => {
            let args = folder.apply(&args);
            match &folder.resume {
                Some(dir) => resume_headless(dir, &args),
                None => run_headless(preset.as_ref(), &folder, &args),
            }
        }
        Some(Command::Compare(args)) => ltmlp::sweep::compare(args),
        Some(Command::Sweep(args)) => ltmlp::sweep::sweep(args),
        Some(Command::RunJob(args)) => ltmlp::sweep::run_job(args),
        Some(Command::Report { dir, target }) => ltmlp::compare::report_command(&dir, target),
        Some(Command::Tui {
            compare: Some(dir), ..
        }) => {
            if !std::io::stdout().is_terminal() {
                Err(anyhow::anyhow!(
                    "tui --compare needs a terminal; `ltmlp report {}` writes the same as files",
                    dir.display()
                ))
            } else {
                ltmlp::tui::compare::run(&dir).map(|_| ExitCode::SUCCESS)
            }
        }
        Some(Command::Tui {
            preset,
            folder,
            args,
            ..
        }) => run_tui(preset.as_ref(), &folder, &folder.apply(&args)),
        Some(Command::Bench {
            threads,
            batch,
            net,
            examples,
            repeats,
            check_samples,
        }) => {
            let opts = ltmlp::bench::Options {
                nets: if net.is_empty() {
                    ltmlp::bench::Net::ALL.to_vec()
                } else {
                    net.iter()
                        .filter_map(|n| ltmlp::bench::Net::parse(n))
                        .collect()
                },
                batches: if batch.is_empty() {
                    vec![100, 1000]
                } else {
                    batch
                },
                threads: threads.max(1),
                examples,
                repeats,
                check_samples,
            };
            ltmlp::bench::run(&opts).map(|_| ExitCode::SUCCESS)
        }
        Some(Command::Watch { dir }) => watch(&dir),
        Some(Command::Diagnose(args)) => ltmlp::analysis::command::run(&args),
        Some(Command::Eval(args)) => ltmlp::eval::run(&args),
        Some(Command::Export(args)) => ltmlp::export::run(&args),
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("ltmlp: stdout is not a terminal; running the default preset headless");
                run_headless(None, &FolderArgs::default(), &RunArgs::default())
            } else {
                run_tui(None, &FolderArgs::default(), &RunArgs::default())
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
