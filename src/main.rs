//! The `ltmlp` binary: the TUI by default, headless runs and the lab's other commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use ltmlp::cli::RunArgs;
use ltmlp::headless;
use ltmlp::train::RunState;

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run { preset, out, args }) => run_headless(Some(&preset), out, &args),
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
            }
            run_headless(None, None, &RunArgs::default())
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
