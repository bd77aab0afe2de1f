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
    /// Open the dashboard read-only on a run another process is writing (e.g. under nohup)
    Watch {
        /// Run folder
        dir: PathBuf,
    },
    /// Train a small preset with plain SGD and measure the Hessian, the Fisher matrix and the
    /// angles between the gradient and the Newton / natural-gradient directions
    Diagnose {
        /// Preset file (TOML), e.g. presets/tiny.toml
        preset: PathBuf,
        /// Iterations at which to measure (comma-separated)
        #[arg(long, value_name = "LIST", default_value = "100,4000,8000")]
        at: String,
        /// Variants to compare (comma-separated: none, ab, abg)
        #[arg(long, value_name = "LIST", default_value = "none,ab,abg")]
        variants: String,
        /// Output folder (default: runs/diagnose-<preset>-<time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Finite-difference step for the Hessian columns
        #[arg(long, value_name = "H", default_value_t = ltmlp::analysis::DEFAULT_STEP)]
        step: f64,
        /// Do not train: re-print the table and redraw the plots of an earlier curvature.json
        #[arg(long, value_name = "FILE")]
        from_json: Option<PathBuf>,
        #[command(flatten)]
        args: RunArgs,
    },
}

fn run_diagnose(
    preset: &std::path::Path,
    at: &str,
    variants: &str,
    out: Option<PathBuf>,
    step: f64,
    from_json: Option<PathBuf>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    use ltmlp::analysis::diagnose;
    if let Some(json) = from_json {
        let report = diagnose::replot(&json)?;
        print!("{}", diagnose::table(&report));
        return Ok(ExitCode::SUCCESS);
    }
    let at = diagnose::parse_iterations(at)?;
    let variants = diagnose::parse_variants(variants)?;
    if !(step.is_finite() && step > 0.0) {
        anyhow::bail!("--step: {step} is not a positive number; use e.g. 1e-4");
    }
    let name = preset
        .file_stem()
        .map_or("preset".into(), |s| s.to_string_lossy().into_owned());
    let out = out.unwrap_or_else(|| diagnose::default_out_dir(&name));
    let options = diagnose::Options {
        at,
        variants,
        out: out.clone(),
        step,
    };
    let report = diagnose::run(preset, args, &options)?;
    print!("{}", diagnose::table(&report));
    println!(
        "wrote {}/curvature.json, spectra.svg, angles.svg",
        out.display()
    );
    Ok(if report.variants.iter().any(|v| v.stopped.is_some()) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
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
            let (exp, checkpoint) = args.resume_experiment(dir)?;
            (exp, dir.to_owned(), Some(checkpoint))
        }
        None => {
            let exp = args.experiment(preset)?;
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
        Some(Command::Diagnose {
            preset,
            at,
            variants,
            out,
            step,
            from_json,
            args,
        }) => run_diagnose(&preset, &at, &variants, out, step, from_json, &args),
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
