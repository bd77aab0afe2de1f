//! The `ltmlp` binary: the TUI by default, headless runs and the lab's other commands.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use ltmlp::cli::{FolderArgs, RunArgs};
use ltmlp::headless;
use ltmlp::remote::background;
use ltmlp::train::{Experiment, RunState, Summary};
use ltmlp::tui::{Mode, Outcome};

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
        /// Preset file (TOML), e.g. presets/default.toml; default: the built-in default preset
        #[arg(conflicts_with = "replay")]
        preset: Option<PathBuf>,
        #[command(flatten)]
        folder: FolderArgs,
        #[command(flatten)]
        args: RunArgs,
        /// Train in a process of its own and return at once (attach with `ltmlp attach DIR`)
        #[arg(long)]
        background: bool,
        /// Run the experiment of the run in DIR again, applying its recorded steering actions
        /// at the same iterations (its metrics come out the same)
        #[arg(long, value_name = "DIR", conflicts_with_all = ["resume", "variant", "seed", "set"])]
        replay: Option<PathBuf>,
        /// Set by `--background` and the dashboard for the process they start
        #[arg(long, hide = true)]
        detached: bool,
        /// Write a line per minibatch (example indices, loss, α β γ) to FILE and the initial
        /// network to FILE.init.safetensors, for other implementations to retrace the run
        /// (docs/pytorch.md)
        #[arg(long, value_name = "FILE", conflicts_with_all = ["resume", "replay", "background"])]
        trace: Option<PathBuf>,
    },
    /// Open the dashboard on a run training in another process (every key; d detaches)
    Attach {
        /// Run folder
        dir: PathBuf,
    },
    /// Steer a running run from a script: prints the trainer's acknowledgement, exits 1 on refusal
    Ctl {
        /// Run folder
        dir: PathBuf,
        #[command(subcommand)]
        command: ltmlp::remote::ctl::CtlCommand,
    },
    /// List the runs under runs/ (or DIR): live or ended, state, epoch, best error, viewers
    Ls {
        /// Folder to look in
        #[arg(default_value = "runs")]
        dir: PathBuf,
    },
    /// Run every variant × seed of a preset and write a comparison report (a sweep without axes)
    Compare(ltmlp::sweep::CompareArgs),
    /// Run variants × settings × seeds (--grid KEY=V1,V2), here, on Slurm or from a plan
    Sweep(ltmlp::sweep::SweepArgs),
    /// Run one cell of a planned sweep (skips a finished cell, resumes an interrupted one)
    RunJob(ltmlp::sweep::RunJobArgs),
    /// Convert runs, comparisons and sweeps into TensorBoard event files (one sub-folder a run)
    ExportTb(ltmlp::tensorboard::ExportTbArgs),
    /// Rebuild report.md, report.json and the plots of a comparison folder (runs may be in progress)
    Report {
        /// Comparison folder
        dir: PathBuf,
        /// Target validation error % (default: the presets' compare.target_error)
        #[arg(long)]
        target: Option<f64>,
        /// Also write runs.csv (a row per run and evaluation) and settings.csv (per setting)
        #[arg(long)]
        csv: bool,
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
        /// Network (repeatable; default: all)
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
            ltmlp::bench::Net::ALL.map(ltmlp::bench::Net::name)))]
        net: Vec<String>,
        /// Examples trained per timed repetition
        #[arg(long, default_value_t = 20_000)]
        examples: usize,
        /// A sweep of network size instead of the standard networks: the plain and the paper
        /// network at hidden widths 256 … 4096 (two layers) or depths 1 … 6 (512 units), at
        /// the first --batch (default 1000)
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
            ltmlp::bench::Scale::ALL.map(ltmlp::bench::Scale::name)))]
        scale: Option<String>,
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
    /// Host a run that another program trains (any language): its folder, its files and its
    /// control endpoint; the trainer speaks JSON lines (docs/protocol.md)
    Host(ltmlp::host::foreign::HostArgs),
    /// Open the dashboard read-only on a run (live, or from its files when it has ended)
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
    detached: bool,
    trace: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let exp = args.experiment(preset)?;
    let out = folder.new_run_dir(&exp)?;
    if let Some(path) = &trace {
        ltmlp::train::trace::check_writable(path)?;
    }
    let start = headless::Start {
        force: folder.force,
        detached,
        trace,
        ..Default::default()
    };
    finish_headless(exp, &out, start)
}

fn resume_headless(dir: &Path, args: &RunArgs, detached: bool) -> anyhow::Result<ExitCode> {
    let (exp, checkpoint) = args.resume_experiment(dir)?;
    let start = headless::Start {
        resume: Some(checkpoint),
        detached,
        ..Default::default()
    };
    finish_headless(exp, dir, start)
}

/// `run --replay DIR`: the experiment of DIR's `config.toml` with DIR's recorded actions.
fn replay_headless(dir: &Path, folder: &FolderArgs, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = dir.join(ltmlp::sink::CONFIG_FILE);
    let resolved = ltmlp::preset::PresetFile::read_config(&config)?.resolve(None, &[])?;
    ltmlp::cli::set_matmul_threads(resolved.preset.train.threads);
    let actions = ltmlp::sink::actions::read(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let exp = Experiment::prepare(resolved, args.data.clone())?;
    let out = folder.new_run_dir(&exp)?;
    headless::say(&format!(
        "replaying {} with its {} recorded actions into {}",
        dir.display(),
        actions.len(),
        out.display()
    ));
    let start = headless::Start {
        force: folder.force,
        replay: actions,
        ..Default::default()
    };
    finish_headless(exp, &out, start)
}

fn finish_headless(
    exp: Experiment,
    out: &Path,
    mut start: headless::Start,
) -> anyhow::Result<ExitCode> {
    let interrupt = headless::interrupt_flag();
    start.interrupt = Some(Arc::clone(&interrupt));
    let summary = headless::run(exp, out, start)?;
    headless::say(&headless::summary_text(&summary));
    let signal = interrupt.load(Ordering::SeqCst);
    Ok(match summary.state {
        // A stop asked for with `ctl stop` (or replayed) ends the run as asked.
        RunState::Finished => ExitCode::SUCCESS,
        RunState::Stopped if signal == 0 => ExitCode::SUCCESS,
        // The reason was already printed on stderr as the run's last log line.
        RunState::Diverged => ExitCode::from(3),
        RunState::Stopped => ExitCode::from(128 + signal as u8),
        _ => ExitCode::from(1),
    })
}

/// The arguments of this invocation for the detached `ltmlp run` child: without the
/// subcommand's name and `--background`, and with the run folder made explicit.
fn child_args(out: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "run" || a == "tui") {
        args.remove(0);
    }
    args.retain(|a| a != "--background");
    let named = |a: &OsString| {
        let a = a.to_string_lossy();
        a == "--out" || a.starts_with("--out=") || a == "--resume" || a.starts_with("--resume=")
    };
    if !args.iter().any(named) {
        args.push("--out".into());
        args.push(out.as_os_str().to_owned());
    }
    args
}

/// The folder a new detached run will train into: `--out`, or a fresh one under `runs/`
/// (the preset is read to name it; its data is loaded by the child).
fn detached_dir(
    preset: Option<&PathBuf>,
    folder: &FolderArgs,
    args: &RunArgs,
) -> anyhow::Result<PathBuf> {
    if let Some(dir) = folder.resume.as_ref().or(folder.out.as_ref()) {
        return Ok(dir.clone());
    }
    let resolved = args.resolve(preset)?;
    headless::default_out_dir(&resolved.preset.name, resolved.variant.name())
}

/// `run --background`: starts the run in its own process and says how to reach it.
fn run_background(
    preset: Option<&PathBuf>,
    folder: &FolderArgs,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let dir = detached_dir(preset, folder, args)?;
    let run = background::start(child_args(&dir), &dir)?;
    ltmlp::say!("{}", background::started_text(&run));
    Ok(ExitCode::SUCCESS)
}

/// The dashboard when stdout is a terminal, else a headless run with a one-line notice. The
/// run trains in a process of its own, so that it outlives the terminal; the dashboard
/// attaches to it.
fn run_tui(
    preset: Option<&PathBuf>,
    folder: &FolderArgs,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        eprintln!("ltmlp: stdout is not a terminal; running headless");
        return match &folder.resume {
            Some(dir) => resume_headless(dir, args, false),
            None => run_headless(preset, folder, args, false, None),
        };
    }
    let dir = detached_dir(preset, folder, args)?;
    let what = preset.map_or("the default preset".into(), |p| p.display().to_string());
    let what = format!("{what} and its data");
    ltmlp::tui::loading(&what, || background::start(child_args(&dir), &dir))?;
    attached(&dir, Mode::Steer)
}

/// The dashboard on a run in another process, and what to say when it closes.
fn attached(dir: &Path, mode: Mode) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the dashboard needs a terminal; `ltmlp ctl {} status` answers without one",
            dir.display()
        );
    }
    match ltmlp::tui::attach(dir, mode)? {
        Outcome::Ended(summary) => {
            headless::say(&headless::summary_text(&summary));
            Ok(exit_code(&summary))
        }
        Outcome::Detached { signal } => {
            if mode == Mode::Steer {
                headless::warn(&format!(
                    "detached: the run trains on. ltmlp attach {0}  ·  ltmlp ctl {0} stop",
                    dir.display()
                ));
            }
            Ok(signal.map_or(ExitCode::SUCCESS, |s| ExitCode::from(128 + s as u8)))
        }
    }
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
            background,
            replay,
            detached,
            trace,
        }) => {
            let args = folder.apply(&args);
            match (&folder.resume, &replay) {
                _ if background => run_background(preset.as_ref(), &folder, &args),
                (_, Some(dir)) => replay_headless(dir, &folder, &args),
                (Some(dir), None) => resume_headless(dir, &args, detached),
                (None, None) => run_headless(preset.as_ref(), &folder, &args, detached, trace),
            }
        }
        Some(Command::Attach { dir }) => attached(&dir, Mode::Steer),
        Some(Command::Ctl { dir, command }) => ltmlp::remote::ctl::run(&dir, command),
        Some(Command::Ls { dir }) => {
            ltmlp::say_part!(
                "{}",
                ltmlp::remote::ls::table(&ltmlp::remote::ls::scan(&dir))
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Compare(args)) => ltmlp::sweep::compare(args),
        Some(Command::Sweep(args)) => ltmlp::sweep::sweep(args),
        Some(Command::RunJob(args)) => ltmlp::sweep::run_job(args),
        Some(Command::ExportTb(args)) => ltmlp::tensorboard::export_tb_command(&args),
        Some(Command::Report { dir, target, csv }) => {
            ltmlp::compare::csv_tables::report_command(&dir, target, csv)
        }
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
            scale,
            repeats,
            check_samples,
        }) => {
            let scale = scale.as_deref().and_then(ltmlp::bench::Scale::parse);
            let opts = ltmlp::bench::Options {
                nets: if net.is_empty() {
                    ltmlp::bench::Net::ALL.to_vec()
                } else {
                    net.iter()
                        .filter_map(|n| ltmlp::bench::Net::parse(n))
                        .collect()
                },
                batches: match (batch.is_empty(), scale) {
                    (false, _) => batch,
                    (true, Some(_)) => vec![1000],
                    (true, None) => vec![100, 1000],
                },
                threads: threads.max(1),
                examples,
                repeats,
                check_samples,
                scale,
            };
            ltmlp::bench::run(&opts).map(|_| ExitCode::SUCCESS)
        }
        Some(Command::Watch { dir }) => attached(&dir, Mode::ReadOnly),
        Some(Command::Host(args)) => ltmlp::host::foreign::run(&args),
        Some(Command::Diagnose(args)) => ltmlp::analysis::command::run(&args),
        Some(Command::Eval(args)) => ltmlp::eval::run(&args),
        Some(Command::Export(args)) => ltmlp::export::run(&args),
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("ltmlp: stdout is not a terminal; running the default preset headless");
                run_headless(
                    None,
                    &FolderArgs::default(),
                    &RunArgs::default(),
                    false,
                    None,
                )
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
