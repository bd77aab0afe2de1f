//! Command-line arguments shared by the subcommands that start a run, and turning them into a
//! checked experiment.

use std::path::PathBuf;

use clap::Args;

use crate::preset::{PresetFile, Resolved};
use crate::train::Experiment;

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

/// Sets the matrix-multiply thread count; it is read once, at the first product.
pub fn set_matmul_threads(threads: usize) {
    crate::net::kernels::set_threads(threads);
}
