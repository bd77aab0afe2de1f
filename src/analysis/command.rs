//! The `ltmlp diagnose` subcommand: its arguments and dispatch to the dense method, the
//! Krylov method while training, or the Krylov method on saved checkpoints.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, ValueEnum};

use super::krylov::KrylovOptions;
use super::{diagnose, scale};
use crate::cli::RunArgs;

/// How the curvature is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Dense matrices from finite differences and full eigendecompositions (≤ 5000 weights)
    Dense,
    /// Matrix-free: exact Hessian / Fisher-vector products, Lanczos, SLQ and CG (any size)
    Krylov,
}

/// `ltmlp diagnose` arguments.
#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Preset file (TOML) to train, e.g. presets/tiny.toml (not with --checkpoint)
    #[arg(required_unless_present_any = ["checkpoint", "from_json"])]
    pub preset: Option<PathBuf>,
    /// dense (the reference, small networks) or krylov (matrix-free, any size)
    #[arg(long, value_enum, default_value = "dense")]
    pub method: Method,
    /// Measure saved checkpoints instead of training: run folders or checkpoint.bin copies
    /// (repeatable; implies --method krylov)
    #[arg(long, value_name = "PATH", conflicts_with = "preset")]
    pub checkpoint: Vec<PathBuf>,
    /// Iterations at which to measure (comma-separated)
    #[arg(long, value_name = "LIST", default_value = "100,4000,8000")]
    pub at: String,
    /// Variants to compare (comma-separated: none, ab, abg)
    #[arg(long, value_name = "LIST", default_value = "none,ab,abg")]
    pub variants: String,
    /// Output folder (default: runs/diagnose-<preset>-<time>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Finite-difference step for the dense Hessian's columns
    #[arg(long, value_name = "H", default_value_t = super::DEFAULT_STEP)]
    pub step: f64,
    /// Krylov: training examples the curvature is measured on (the first ones)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub examples: usize,
    /// Krylov: most Lanczos/CG steps of the damped solves from g
    #[arg(long, value_name = "K", default_value_t = KrylovOptions::standard().solve_steps)]
    pub solve_steps: usize,
    /// Krylov: most Lanczos steps of the extreme-eigenvalue run
    #[arg(long, value_name = "K", default_value_t = KrylovOptions::standard().extreme_steps)]
    pub extreme_steps: usize,
    /// Krylov: spectral-density probes (including the extreme-eigenvalue run)
    #[arg(long, value_name = "P", default_value_t = KrylovOptions::standard().probes)]
    pub probes: usize,
    /// Krylov: Lanczos steps of each further probe
    #[arg(long, value_name = "K", default_value_t = KrylovOptions::standard().probe_steps)]
    pub probe_steps: usize,
    /// Do not compute: re-print the table and redraw the plots of an earlier
    /// curvature.json or curvature-krylov.json
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
    #[command(flatten)]
    pub args: RunArgs,
}

impl DiagnoseArgs {
    fn krylov_options(&self) -> anyhow::Result<KrylovOptions> {
        for (name, v) in [
            ("--solve-steps", self.solve_steps),
            ("--extreme-steps", self.extreme_steps),
            ("--probes", self.probes),
            ("--probe-steps", self.probe_steps),
            ("--examples", self.examples),
        ] {
            if v == 0 {
                bail!("{name}: must be at least 1");
            }
        }
        Ok(KrylovOptions {
            solve_steps: self.solve_steps,
            extreme_steps: self.extreme_steps,
            probes: self.probes,
            probe_steps: self.probe_steps,
            ..KrylovOptions::standard()
        })
    }
}

/// Runs `ltmlp diagnose`; exit status 3 when a training run diverged.
pub fn run(a: &DiagnoseArgs) -> anyhow::Result<ExitCode> {
    if let Some(json) = &a.from_json {
        let text = crate::bounded::read_text(json, crate::bounded::FileKind::CurvatureReport)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", json.display()))?;
        if value["method"] == "krylov" {
            crate::say_part!("{}", scale::table(&scale::replot(json, &text)?));
        } else {
            crate::say_part!("{}", diagnose::table(&diagnose::replot(json)?));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.checkpoint.is_empty() {
        if a.args.variant.is_some() || a.args.seed.is_some() || !a.args.set.is_empty() {
            bail!("--checkpoint measures the runs as saved: only --data may be given with it");
        }
        let options = a.krylov_options()?;
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| diagnose::default_out_dir("checkpoints"));
        let report = scale::run_checkpoints(
            &a.checkpoint,
            a.args.data.clone(),
            &out,
            &options,
            a.examples,
        )?;
        crate::say_part!("{}", scale::table(&report));
        crate::say!(
            "wrote {}/{}, densities.svg, angles-krylov.svg",
            out.display(),
            scale::KRYLOV_JSON
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(preset) = &a.preset else {
        bail!("give a preset to train, or --checkpoint PATH");
    };
    let at = diagnose::parse_iterations(&a.at)?;
    let variants = diagnose::parse_variants(&a.variants)?;
    let name = preset
        .file_stem()
        .map_or("preset".into(), |s| s.to_string_lossy().into_owned());
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| diagnose::default_out_dir(&name));
    match a.method {
        Method::Krylov => {
            let options = a.krylov_options()?;
            let report =
                scale::run_trained(preset, &a.args, &at, &variants, &out, &options, a.examples)?;
            crate::say_part!("{}", scale::table(&report));
            crate::say!(
                "wrote {}/{}, densities.svg, angles-krylov.svg",
                out.display(),
                scale::KRYLOV_JSON
            );
            let stopped = report.notes.iter().any(|n| n.contains("training stopped"));
            Ok(if stopped {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
        Method::Dense => {
            if !(a.step.is_finite() && a.step > 0.0) {
                bail!("--step: {} is not a positive number; use e.g. 1e-4", a.step);
            }
            let options = diagnose::Options {
                at,
                variants,
                out: out.clone(),
                step: a.step,
            };
            let report = diagnose::run(preset, &a.args, &options)?;
            crate::say_part!("{}", diagnose::table(&report));
            crate::say!(
                "wrote {}/curvature.json, spectra.svg, angles.svg",
                out.display()
            );
            Ok(if report.variants.iter().any(|v| v.stopped.is_some()) {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
