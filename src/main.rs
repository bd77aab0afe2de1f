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
