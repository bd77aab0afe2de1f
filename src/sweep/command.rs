//! The `sweep`, `compare` and `run-job` commands: arguments, and turning them into a plan that
//! runs here (J local workers), on a Slurm cluster (`--emit slurm`) or anywhere (`--emit plan`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};

use super::axes::{self, Axis};
use super::cell::{run_cell, CellOutcome};
use super::data_cache::DataCache;
use super::local::run_all;
use super::plan::{self, Plan, SweepSpec, PLAN_FILE};
use super::slurm::{self, SBATCH_FILE};
use super::SweepError;
use crate::compare::runs::LOG_FOLDER;
use crate::preset::{PresetError, PresetFile, PAPER_VARIANTS, VARIANTS};
use crate::train::RunState;

/// Seeds per setting when neither the command line nor the preset says.
const DEFAULT_SEEDS: usize = 3;
/// `run-job` exit status when another process holds the cell.
pub const EXIT_HELD: u8 = 4;

/// What the sweep-like commands share.
#[derive(Debug, Clone, Args)]
pub struct GridArgs {
    /// Variants, comma-separated (default: the preset's [sweep] variants, else none,ab,abg)
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(VARIANTS))]
    pub variants: Option<Vec<String>>,
    /// Seeds per setting: train.seed, train.seed + 1, … (default: [sweep] seeds, else 3)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub seeds: Option<u16>,
    /// Cells trained at a time on this machine
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Early stopping: epochs without a better validation result (compare.patience)
    #[arg(long)]
    pub patience: Option<usize>,
    /// Sweep folder (default: runs/<command>-<preset>-<time>); running again with the same
    /// folder continues the sweep
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Data directory for every cell (overrides data.source)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Override any preset value in every cell (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Every cell writes TensorBoard events in its folder while it trains (not part of the
    /// sweep: running it again with or without is the same sweep)
    #[arg(long)]
    pub tensorboard: bool,
}

/// `ltmlp compare`: every variant × seed at the preset's settings.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Preset file (TOML)
    pub preset: PathBuf,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// What `--emit` writes instead of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// DIR/sweep.sbatch, a Slurm job array (submit it with sbatch)
    Slurm,
    /// Only DIR/plan.json (run the cells with run-job, e.g. under xargs or GNU parallel)
    Plan,
}

/// `ltmlp sweep`: variants × settings × seeds.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Preset file (TOML)
    pub preset: PathBuf,
    /// An axis: KEY=V1,V2,… for every variant, VARIANT:KEY=V1,… for one (repeatable)
    #[arg(long = "grid", value_name = "[VARIANT:]KEY=V1,V2")]
    pub grid: Vec<String>,
    #[command(flatten)]
    pub common: GridArgs,
    /// Write the plan (and the Slurm script) instead of running
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// An extra #SBATCH option for --emit slurm, e.g. --sbatch=--partition=short (repeatable)
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
}

/// `ltmlp run-job`: one cell of a planned sweep.
#[derive(Debug, Clone, Args)]
pub struct RunJobArgs {
    /// Sweep folder (holding plan.json)
    pub dir: PathBuf,
    /// Cell index (0-based, as in plan.json; $SLURM_ARRAY_TASK_ID on Slurm)
    #[arg(long)]
    pub index: usize,
}

fn preset_name(path: &Path) -> String {
    path.file_stem()
        .map_or("preset".into(), |s| s.to_string_lossy().into_owned())
}

/// The spec of a sweep from its arguments and the preset's `[sweep]` table.
fn spec(
    preset: &Path,
    grid: &[String],
    a: &GridArgs,
    use_table: bool,
) -> Result<SweepSpec, SweepError> {
    let file = PresetFile::read(preset)?;
    let table = if use_table {
        file.preset.sweep.clone()
    } else {
        Default::default()
    };
    let table_error = |key: &str, message: String| PresetError {
        file: preset.to_owned(),
        line: None,
        message: format!("sweep.{key}: {message}"),
    };
    if let Some(bad) = table
        .variants
        .iter()
        .flatten()
        .find(|v| !VARIANTS.contains(&v.as_str()))
    {
        return Err(table_error(
            "variants",
            format!(
                "unknown variant `{bad}`; variants are {}",
                VARIANTS.join(", ")
            ),
        )
        .into());
    }
    if table.seeds == Some(0) {
        return Err(table_error("seeds", "must be at least 1".into()).into());
    }
    let variants: Vec<String> = a
        .variants
        .clone()
        .or(table.variants.clone())
        .unwrap_or_else(|| PAPER_VARIANTS.iter().map(|v| v.to_string()).collect());
    let cli: Vec<Axis> = grid
        .iter()
        .map(|g| axes::parse_grid(g, &variants))
        .collect::<Result<_, _>>()?;
    let axes = axes::merge(axes::from_table(&table, &variants)?, cli)?;
    let mut overrides = a.set.clone();
    if let Some(p) = a.patience {
        overrides.push(format!("compare.patience={p}"));
    }
    Ok(SweepSpec {
        preset: preset.to_owned(),
        variants,
        seeds: a
            .seeds
            .map_or(table.seeds.unwrap_or(DEFAULT_SEEDS), usize::from),
        axes,
        overrides,
        data: a.data.clone(),
        tensorboard: a.tensorboard,
    })
}

/// `ltmlp sweep`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let spec = spec(&args.preset, &args.grid, &args.common, true)?;
    let out = match args.common.out.clone() {
        Some(out) => out,
        None => crate::headless::default_out_dir(
            &format!("sweep-{}", preset_name(&args.preset)),
            "grid",
        )?,
    };
    execute(
        &spec,
        &out,
        usize::from(args.common.jobs),
        args.emit,
        &args.sbatch,
    )
}

/// `ltmlp compare`: the sweep without axes.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let spec = spec(&args.preset, &[], &args.grid, false)?;
    let out = match args.grid.out.clone() {
        Some(out) => out,
        None => crate::headless::default_out_dir(
            &format!("compare-{}", preset_name(&args.preset)),
            "all",
        )?,
    };
    execute(&spec, &out, usize::from(args.grid.jobs), None, &[])
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

fn execute(
    spec: &SweepSpec,
    out: &Path,
    jobs: usize,
    emit: Option<Emit>,
    sbatch: &[String],
) -> anyhow::Result<ExitCode> {
    let plan = plan::build(spec)?;
    if !plan.axes.is_empty()
        && plan
            .cells
            .iter()
            .any(|c| c.config.data.monitor == crate::preset::Monitor::Test)
    {
        eprintln!(
            "warning: data.monitor = \"test\": the best settings will be chosen on the test set; \
             monitor the validation set for a fair choice"
        );
    }
    let existed = plan.write_or_check(out)?;
    let n = plan.cells.len();
    let settings = n / (plan.seeds.len().max(1));
    crate::say!(
        "{} {}: {n} cells ({} seeds × {settings} variant settings){}",
        if existed { "continuing" } else { "plan" },
        out.join(PLAN_FILE).display(),
        plan.seeds.len(),
        if existed {
            "; finished cells are skipped"
        } else {
            ""
        }
    );
    let dir = absolute(out);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ltmlp"));
    match emit {
        Some(Emit::Plan) => {
            let d = dir.display();
            let e = exe.display();
            crate::say!(
                "run the cells anywhere that sees this folder, then write the report:\n  \
                 seq 0 {last} | xargs -P {jobs} -I{{}} {e} run-job {d} --index {{}}\n  \
                 parallel -j {jobs} -S host1,host2 {e} run-job {d} --index {{}} ::: $(seq 0 {last})\n  \
                 {e} report {d}",
                last = n.saturating_sub(1)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Emit::Slurm) => {
            let logs = dir.join(LOG_FOLDER);
            std::fs::create_dir_all(&logs).map_err(|error| SweepError::Io {
                path: logs.clone(),
                error,
            })?;
            let path = dir.join(SBATCH_FILE);
            std::fs::write(&path, slurm::script(&plan, &dir, &exe, jobs, sbatch)).map_err(
                |error| SweepError::Io {
                    path: path.clone(),
                    error,
                },
            )?;
            crate::say!(
                "wrote {}: {n} array tasks, {jobs} at a time\nsubmit with: sbatch {}",
                path.display(),
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let threads = plan.threads();
    crate::cli::set_matmul_threads(threads);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if jobs * threads > cores {
        eprintln!(
            "note: {jobs} jobs × {threads} threads is more than the {cores} cores here; runs will be slower"
        );
    }
    let interrupt = crate::headless::interrupt_flag();
    let cache = DataCache::default();
    let log = |line: String| crate::say!("{line}");
    let outcomes = run_all(out, &plan, jobs, &cache, Some(Arc::clone(&interrupt)), &log);
    let files = crate::compare::write_report(out, None, &[]).map_err(anyhow::Error::msg)?;
    crate::say!("\n{}", files.text);
    crate::say!("report: {}", files.markdown.display());
    let signal = interrupt.load(Ordering::SeqCst);
    if signal != 0 {
        eprintln!("interrupted: run the same command again (same --out) to finish the sweep");
        return Ok(ExitCode::from(128 + signal as u8));
    }
    let missing = n - outcomes.iter().filter(|(_, o)| o.is_done()).count();
    if missing > 0 {
        for (i, o) in outcomes.iter().filter(|(_, o)| !o.is_done()) {
            eprintln!("cell {i} ({}): {}", plan.cells[*i].folder, o.describe());
        }
        eprintln!(
            "error: {missing} of {n} runs did not finish; see {}",
            files.markdown.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `ltmlp run-job DIR --index N`.
pub fn run_job(args: RunJobArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::read(&args.dir)?;
    if let Some(cell) = plan.cells.get(args.index) {
        crate::cli::set_matmul_threads(cell.config.train.threads);
        crate::say!(
            "cell {} of {}: {}",
            args.index,
            plan.cells.len(),
            cell.describe()
        );
    }
    let interrupt = crate::headless::interrupt_flag();
    let cache = DataCache::default();
    let log = |line: String| crate::say!("{line}");
    let outcome = run_cell(
        &args.dir,
        &plan,
        args.index,
        &cache,
        Some(Arc::clone(&interrupt)),
        &log,
    );
    Ok(match outcome {
        CellOutcome::Finished | CellOutcome::Skipped(RunState::Finished) => ExitCode::SUCCESS,
        CellOutcome::Diverged(_) | CellOutcome::Skipped(_) => ExitCode::from(3),
        CellOutcome::Interrupted(signal) => ExitCode::from(128 + signal as u8),
        CellOutcome::Held(reason) => {
            eprintln!("error: {reason}");
            ExitCode::from(EXIT_HELD)
        }
        CellOutcome::Failed(reason) => {
            eprintln!("error: {reason}");
            ExitCode::from(1)
        }
    })
}
