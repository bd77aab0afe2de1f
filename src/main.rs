//! The `ltmlp` binary: the TUI by default, headless runs and the lab's other commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ltmlp::cli::RunArgs;
use ltmlp::headless;
use ltmlp::train::{RunState, Summary};

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
        preset: PathBuf,
        /// Run folder (default: runs/<preset>-<variant>-<time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Train a preset under the full-screen dashboard (the default with no arguments)
    Tui {
        /// Preset file (TOML); default: the built-in presets/default.toml
        preset: Option<PathBuf>,
        /// Run folder (default: runs/<preset>-<variant>-<time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        args: RunArgs,
    },
}

fn run_headless(
    preset: Option<&PathBuf>,
    out: Option<PathBuf>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let exp = args.experiment(preset)?;
    let out = out.unwrap_or_else(|| {
        headless::default_out_dir(&exp.resolved.preset.name, &exp.resolved.variant)
    });
    let summary = headless::run(exp, &out)?;
    println!("{}", headless::summary_text(&summary));
    Ok(match summary.state {
        RunState::Finished => ExitCode::SUCCESS,
        RunState::Diverged => {
            eprintln!(
                "error: {}",
                summary.reason.as_deref().unwrap_or("training diverged")
            );
            ExitCode::from(3)
        }
        _ => ExitCode::from(1),
    })
}

/// The dashboard when stdout is a terminal, else a headless run with a one-line notice.
fn run_tui(
    preset: Option<&PathBuf>,
    out: Option<PathBuf>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        eprintln!("ltmlp: stdout is not a terminal; running headless");
        return run_headless(preset, out, args);
    }
    let exp = args.experiment(preset)?;
    let out = out.unwrap_or_else(|| {
        headless::default_out_dir(&exp.resolved.preset.name, &exp.resolved.variant)
    });
    let summary = ltmlp::tui::run(exp, out)?;
    println!("{}", headless::summary_text(&summary));
    Ok(exit_code(&summary))
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
        Some(Command::Run { preset, out, args }) => run_headless(Some(&preset), out, &args),
        Some(Command::Tui { preset, out, args }) => run_tui(preset.as_ref(), out, &args),
        None => {
            if !std::io::stdout().is_terminal() {
                eprintln!("ltmlp: stdout is not a terminal; running the default preset headless");
                run_headless(None, None, &RunArgs::default())
            } else {
                run_tui(None, None, &RunArgs::default())
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
