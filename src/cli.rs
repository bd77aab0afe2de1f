//! Command-line arguments shared by the subcommands that start a run, and turning them into a
//! checked experiment.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::preset::{PresetFile, Resolved};
use crate::sink::CONFIG_FILE;
use crate::train::checkpoint::{self, AnyState, Checkpoint};
use crate::train::{AnyData, Experiment};

/// Which experiment to run and how to change it.
#[derive(Debug, Clone, Args, Default)]
pub struct RunArgs {
    /// Data directory with the four MNIST-format IDX files (overrides data.source)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Variant: none, ab (α β) or abg (α β γ); default: the preset's `variant`
    #[arg(long, value_parser = ["none", "ab", "abg"])]
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
}

impl FolderArgs {
    /// `args` with `--checkpoint-every` turned into its preset override.
    pub fn apply(&self, args: &RunArgs) -> RunArgs {
        let mut args = args.clone();
        if let Some(n) = self.checkpoint_every {
            args.set.push(format!("train.checkpoint_every={n}"));
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
        let config = dir.join(CONFIG_FILE);
        let file = PresetFile::read(&config)?;
        let checkpoint = checkpoint::load(dir)?;
        if checkpoint.config_toml != file.text {
            anyhow::bail!(
                "{}: changed since the checkpoint was written; restore it or start a new run",
                config.display()
            );
        }
        let overrides: Vec<String> = self
            .set
            .iter()
            .filter(|s| s.starts_with("train.checkpoint_every="))
            .cloned()
            .collect();
        let resolved = file.resolve(None, &overrides)?;
        set_matmul_threads(resolved.preset.train.threads);
        let exp = Experiment::prepare(resolved, self.data.clone())?;
        let matches = matches!(
            (&checkpoint.state, &exp.data),
            (AnyState::F32(_), AnyData::F32(_)) | (AnyState::F64(_), AnyData::F64(_))
        );
        if !matches {
            anyhow::bail!(
                "{}: its precision differs from config.toml's train.precision",
                dir.join(checkpoint::CHECKPOINT_FILE).display()
            );
        }
        Ok((exp, checkpoint))
    }
}

/// Sets the matrix-multiply thread count; it is read once, at the first product.
pub fn set_matmul_threads(threads: usize) {
    crate::net::kernels::set_threads(threads);
}
