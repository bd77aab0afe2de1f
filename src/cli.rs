//! Command-line arguments shared by the subcommands that start a run, and turning them into a
//! checked experiment.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::preset::{PresetFile, Resolved};
use crate::sink::CONFIG_FILE;
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::Experiment;

/// Which experiment to run and how to change it.
#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    /// Data directory with the four MNIST-format IDX files (overrides data.source)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Variant: none, ab (α β), abg (α β γ), bn (batch norm) or ln (layer norm); default: the
    /// preset's `variant`
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::preset::VARIANTS))]
    pub variant: Option<String>,
    /// Seed for initialisation, noise and order (overrides train.seed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override any preset value, e.g. --set train.learning_rate=0.1 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Where a run's files go, or which run folder to continue.
#[derive(Debug, Clone, Args, Default)]
pub struct FolderArgs {
    /// Run folder (default: runs/<preset>-<variant>-<time>)
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "variant", "seed", "set"])]
    pub resume: Option<PathBuf>,
    /// Save a checkpoint every N epochs (0: only at the end, on request and on signals)
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// With --out onto a folder that holds a run: move that run aside (to DIR.old-N) first
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Write TensorBoard events (events.out.tfevents.*) in the run folder while it trains
    /// (train.tensorboard; a resumed run that wrote them goes on anyway)
    #[arg(long)]
    pub tensorboard: bool,
}

impl FolderArgs {
    /// The folder of a new run: `--out`, or a fresh one under `runs/`.
    pub fn new_run_dir(&self, exp: &Experiment) -> anyhow::Result<PathBuf> {
        match &self.out {
            Some(dir) => Ok(dir.clone()),
            None => crate::headless::default_out_dir(
                &exp.resolved.preset.name,
                exp.resolved.variant.name(),
            ),
        }
    }

    /// `args` with `--checkpoint-every` turned into its preset override.
    pub fn apply(&self, args: &RunArgs) -> RunArgs {
        let mut args = args.clone();
        if let Some(n) = self.checkpoint_every {
            args.set.push(format!("train.checkpoint_every={n}"));
        }
        if self.tensorboard {
            args.set.push("train.tensorboard=true".into());
        }
        args
    }
}

impl RunArgs {
    /// Reads the preset (the built-in default when `preset` is None) and resolves it.
    pub fn resolve(&self, preset: Option<&PathBuf>) -> anyhow::Result<Resolved> {
        let file = match preset {
            Some(path) => PresetFile::read(path)?,
            None => PresetFile::builtin_default()?,
        };
        let mut overrides = self.set.clone();
        if let Some(seed) = self.seed {
            // TOML integers are signed 64-bit.
            if i64::try_from(seed).is_err() {
                anyhow::bail!("--seed {seed}: seeds go from 0 to {}", i64::MAX);
            }
            overrides.push(format!("train.seed={seed}"));
        }
        Ok(file.resolve(self.variant.as_deref(), &overrides)?)
    }

    /// Resolves the preset and loads its data.
    pub fn experiment(&self, preset: Option<&PathBuf>) -> anyhow::Result<Experiment> {
        let resolved = self.resolve(preset)?;
        set_matmul_threads(resolved.preset.train.threads);
        Ok(Experiment::prepare(resolved, self.data.clone())?)
    }
}

impl RunArgs {
    /// The experiment and checkpoint of the run folder `dir`, for `--resume`. Only `--data`
    /// may change; `--checkpoint-every` (`train.checkpoint_every`) applies to the rest of the run.
    pub fn resume_experiment(&self, dir: &Path) -> anyhow::Result<(Experiment, Checkpoint)> {
        // A run still training there is the likeliest reason to be here: say so first.
        drop(crate::sink::claim_existing(dir)?);
        let config = dir.join(CONFIG_FILE);
        let file = PresetFile::read_config(&config)?;
        let checkpoint = match checkpoint::load(dir) {
            Err(checkpoint::CheckpointError::Read(e)) if e.is_not_found() => anyhow::bail!(
                "{}: no checkpoint yet: the run ended before its first one was saved, so there \
                 is nothing to resume; start it afresh with `ltmlp run {} --force --out {}` \
                 (its files are moved aside, not deleted)",
                e.path.display(),
                config.display(),
                dir.display()
            ),
            other => other?,
        };
        checkpoint::ensure_config_unchanged(&config, &file.text, &checkpoint.config_toml)?;
        let overrides: Vec<String> = self
            .set
            .iter()
            .filter(|s| s.starts_with("train.checkpoint_every="))
            .cloned()
            .collect();
        let resolved = file.resolve(None, &overrides)?;
        set_matmul_threads(resolved.preset.train.threads);
        let exp = Experiment::prepare(resolved, self.data.clone())?;
        let data_origin = self
            .data
            .as_ref()
            .map_or_else(|| config.display().to_string(), |d| d.display().to_string());
        exp.check_resume(
            &dir.join(checkpoint::CHECKPOINT_FILE),
            &checkpoint,
            &config.display().to_string(),
            &data_origin,
        )
        .map_err(anyhow::Error::msg)?;
        Ok((exp, checkpoint))
    }
}

/// Sets the matrix-multiply thread count; it is read once, at the first product.
pub fn set_matmul_threads(threads: usize) {
    crate::net::kernels::set_threads(threads);
}
