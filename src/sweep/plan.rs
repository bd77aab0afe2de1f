//! The plan of a sweep: every cell (seed × variant × setting) with its fully resolved config and
//! its folder, built deterministically and written to `plan.json` before anything runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::axes::{axes_of, settings, Axis};
use super::SweepError;
use crate::bounded::{self, FileKind};
use crate::preset::{Preset, PresetFile, Resolved};
use crate::sink::CONFIG_FILE;

pub const PLAN_FILE: &str = "plan.json";
/// Bumped when the layout of `plan.json` changes.
const PLAN_FORMAT: u32 = 1;

/// What to sweep, as given on the command line or in the preset's `[sweep]` table.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub preset: PathBuf,
    pub variants: Vec<String>,
    pub seeds: usize,
    pub axes: Vec<Axis>,
    /// `--set` overrides for every cell (axes and the seed win over them).
    pub overrides: Vec<String>,
    /// `--data DIR`: every cell reads this directory.
    pub data: Option<PathBuf>,
    /// `--tensorboard`: every cell writes TensorBoard events.
    pub tensorboard: bool,
}

/// One value of one axis in a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub index: usize,
    /// Folder below the sweep folder.
    pub folder: String,
    pub variant: String,
    pub seed: u64,
    pub setting: Vec<Setting>,
    /// The fully resolved preset (what the cell's `config.toml` holds).
    pub config: Preset,
}

/// Everything a sweep runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub preset: String,
    pub name: String,
    pub variants: Vec<String>,
    pub seeds: Vec<u64>,
    pub axes: Vec<Axis>,
    pub overrides: Vec<String>,
    pub cells: Vec<Cell>,
    /// Every cell writes TensorBoard events (`--tensorboard`, or `train.tensorboard` in the
    /// preset): an output option, not compared when a sweep is run again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tensorboard: bool,
}

/// A value as a folder-name fragment: `[256, 256]` → `256x256`, `"all"` → `all`.
fn slug(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '"' | '\'' | ' ' | '{' | '}'))
        .map(|c| match c {
            ',' => 'x',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_') => c,
            _ => '_',
        })
        .collect()
}

/// The short name of each axis key in folder names: its last part, or the whole key when two
/// axes share a last part.
fn short_names(axes: &[Axis]) -> Vec<(String, String)> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let mut keys: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
    keys.dedup();
    keys.iter()
        .map(|k| {
            let clash = keys.iter().any(|o| o != k && last(o) == last(k));
            (k.to_string(), if clash { k.to_string() } else { last(k) })
        })
        .collect()
}

impl Cell {
    /// The cell's config, checked again as a preset; `dir` is the sweep folder.
    pub fn resolve(&self, dir: &Path) -> Result<Resolved, SweepError> {
        let path = dir.join(&self.folder).join(CONFIG_FILE);
        let text = toml::to_string_pretty(&self.config).map_err(|e| SweepError::Plan {
            path: dir.join(PLAN_FILE),
            message: format!("cell {}: {e}", self.index),
        })?;
        Ok(PresetFile::parse(&path, text)?.resolve(None, &[])?)
    }

    /// `ab learning_rate=0.1 seed 2`.
    pub fn describe(&self) -> String {
        let mut s = self.variant.clone();
        for Setting { key, value } in &self.setting {
            s.push_str(&format!(" {key}={value}"));
        }
        format!("{s} seed {}", self.seed)
    }
}

/// Resolves every cell and checks them all; nothing is written.
pub fn build(spec: &SweepSpec) -> Result<Plan, SweepError> {
    let file = PresetFile::read(&spec.preset)?;
    let mut common = spec.overrides.clone();
    if let Some(dir) = &spec.data {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        common.push(format!(
            "data.source={}",
            toml::Value::String(dir.display().to_string())
        ));
    }
    let first = spec.variants.first().ok_or_else(|| SweepError::Plan {
        path: spec.preset.clone(),
        message: "no variants to sweep; give --variants".into(),
    })?;
    let base_seed = file.resolve(Some(first), &common)?.preset.train.seed;
    let seeds: Vec<u64> = (0..spec.seeds as u64).map(|i| base_seed + i).collect();
    let names = short_names(&spec.axes);
    let short = |key: &str| {
        names
            .iter()
            .find(|(k, _)| k == key)
            .map_or(key.to_string(), |(_, s)| s.clone())
    };
    let mut cells: Vec<Cell> = Vec::new();
    for &seed in &seeds {
        for variant in &spec.variants {
            for setting in settings(&axes_of(&spec.axes, variant)) {
                let index = cells.len();
                let mut overrides = common.clone();
                overrides.extend(setting.iter().map(|(k, v)| format!("{k}={v}")));
                overrides.push(format!("train.seed={seed}"));
                let mut folder = variant.clone();
                for (k, v) in &setting {
                    folder.push_str(&format!("-{}={}", short(k), slug(v)));
                }
                folder.push_str(&format!("-seed{seed}"));
                let mut resolved =
                    file.resolve(Some(variant), &overrides)
                        .map_err(|e| SweepError::Cell {
                            index,
                            cell: folder.clone(),
                            message: e.to_string(),
                        })?;
                // The cell runs one experiment; the sweep table is not part of it.
                resolved.preset.sweep = Default::default();
                let data = &mut resolved.preset.data.source;
                if data != "embedded" {
                    if let Ok(abs) = Path::new(data.as_str()).canonicalize() {
                        // Absolute, so that run-job finds it from any working directory.
                        *data = abs.display().to_string();
                    }
                }
                if let Some(other) = cells.iter().find(|c| c.folder == folder) {
                    return Err(SweepError::Cell {
                        index,
                        cell: folder,
                        message: format!(
                            "same folder name as cell {}; values that differ only in \
                             punctuation cannot be told apart, change one",
                            other.index
                        ),
                    });
                }
                cells.push(Cell {
                    index,
                    folder,
                    variant: variant.clone(),
                    seed,
                    setting: setting
                        .into_iter()
                        .map(|(key, value)| Setting { key, value })
                        .collect(),
                    config: resolved.preset,
                });
            }
        }
    }
    // An output option: kept by the plan, not by its cells (whose settings are the sweep's
    // identity).
    let mut tensorboard = spec.tensorboard;
    for cell in &mut cells {
        tensorboard |= std::mem::take(&mut cell.config.train.tensorboard);
    }
    Ok(Plan {
        tensorboard,
        format: PLAN_FORMAT,
        preset: spec.preset.display().to_string(),
        name: file.preset.name.clone(),
        variants: spec.variants.clone(),
        seeds,
        axes: spec.axes.clone(),
        overrides: spec.overrides.clone(),
        cells,
    })
}

/// Whether `folder` names one folder directly inside the sweep folder: a cell never trains
/// outside it, whatever its plan says.
fn is_folder_name(folder: &str) -> bool {
    let mut parts = Path::new(folder).components();
    matches!(parts.next(), Some(std::path::Component::Normal(name)) if name == folder)
        && parts.next().is_none()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |error| SweepError::Io {
        path: path.to_owned(),
        error,
    }
}

impl Plan {
    /// Reads `DIR/plan.json`.
    pub fn read(dir: &Path) -> Result<Plan, SweepError> {
        let path = dir.join(PLAN_FILE);
        Self::parse(path.clone(), &bounded::read_text(&path, FileKind::Plan)?)
    }

    /// Parses the text of a `plan.json` (`path` is for messages).
    pub fn parse(path: PathBuf, text: &str) -> Result<Plan, SweepError> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| SweepError::Plan {
            path: path.clone(),
            message: format!("not a sweep plan: {e}"),
        })?;
        if let Some(cell) = plan.cells.iter().find(|c| !is_folder_name(&c.folder)) {
            return Err(SweepError::Plan {
                path,
                message: format!(
                    "cell {}: folder {:?} is not one folder name inside the sweep folder (no \
                     `/`, `..` or absolute path); the plan was edited: restore it, or plan the \
                     sweep again into a new --out",
                    cell.index, cell.folder
                ),
            });
        }
        if plan.format != PLAN_FORMAT {
            return Err(SweepError::Plan {
                path,
                message: format!(
                    "plan format {}, this ltmlp reads format {PLAN_FORMAT}; use the ltmlp that wrote it",
                    plan.format
                ),
            });
        }
        Ok(plan)
    }

    /// The plan as written to `plan.json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Writes `DIR/plan.json`, or, when the folder already holds one, checks that it is this
    /// plan (so that re-running a sweep continues it). Returns whether it was already there.
    pub fn write_or_check(&self, dir: &Path) -> Result<bool, SweepError> {
        let path = dir.join(PLAN_FILE);
        if path.exists() {
            let old = Plan::read(dir)?;
            let differs = |message: String| SweepError::Plan {
                path: path.clone(),
                message: format!(
                    "{message}: this folder holds another sweep; choose another --out, or \
                     delete the folder to start again"
                ),
            };
            if old.cells.len() != self.cells.len() {
                return Err(differs(format!(
                    "{} cells there, {} now",
                    old.cells.len(),
                    self.cells.len()
                )));
            }
            if let Some((a, _)) = old
                .cells
                .iter()
                .zip(&self.cells)
                .find(|(a, b)| a.folder != b.folder || a.config != b.config)
            {
                return Err(differs(format!("cell {} ({}) differs", a.index, a.folder)));
            }
            return Ok(true);
        }
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let tmp = dir.join(format!("{PLAN_FILE}.tmp"));
        std::fs::write(&tmp, self.to_json()).map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_error(&path))?;
        Ok(false)
    }

    /// The largest matrix-multiply thread count of any cell.
    pub fn threads(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.config.train.threads)
            .max()
            .unwrap_or(1)
    }
}
