//! Reading a preset file and resolving it: one variant's settings and the `--set` overrides
//! applied, every section checked, and errors that name the file, the line and the key.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{find_line, line_of, locate_key, sets_gamma_control};
use super::table::{apply_override, deserialize, merge, sets_key};
use super::variant::{UnknownVariant, Variant, VARIANTS};
use super::{Invalid, Preset, Resolved};
use crate::bounded::{self, FileKind};
use crate::net::GammaControl;

/// A preset error: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for PresetError {}

/// A preset as read, with its text (to locate keys) and path.
#[derive(Debug, Clone)]
pub struct PresetFile {
    pub path: PathBuf,
    pub text: String,
    pub preset: Preset,
}

/// The name of the built-in default preset, compiled into the binary.
pub const DEFAULT_PRESET_NAME: &str = "presets/default.toml";
/// `presets/default.toml`, so that `ltmlp` runs with no files at all.
pub const DEFAULT_PRESET: &str = include_str!("../../presets/default.toml");

impl PresetFile {
    /// Reads and parses a preset file.
    pub fn read(path: &Path) -> Result<Self, PresetError> {
        Self::read_as(path, FileKind::Preset)
    }

    /// Reads and parses a run folder's `config.toml`.
    pub fn read_config(path: &Path) -> Result<Self, PresetError> {
        let mut file = Self::read_as(path, FileKind::Config)?;
        // A run configuration written before `transforms.gamma_control` existed was trained
        // under the papers' rule: resumed, replayed or read back, it stays that experiment.
        if !sets_gamma_control(&file.text) {
            file.preset.transforms.gamma_control = GammaControl::Off;
        }
        Ok(file)
    }

    fn read_as(path: &Path, kind: FileKind) -> Result<Self, PresetError> {
        let text = bounded::read_text(path, kind).map_err(|e| PresetError {
            file: path.to_owned(),
            line: None,
            message: e.reason(),
        })?;
        Self::parse(path, text)
    }

    /// The built-in default preset.
    pub fn builtin_default() -> Result<Self, PresetError> {
        Self::parse(Path::new(DEFAULT_PRESET_NAME), DEFAULT_PRESET.to_string())
    }

    /// Parses preset text; `path` is used in messages.
    pub fn parse(path: &Path, text: String) -> Result<Self, PresetError> {
        let preset: Preset = toml::from_str(&text).map_err(|e| PresetError {
            file: path.to_owned(),
            line: e.span().map(|s| line_of(&text, s.start)),
            message: e.message().trim().replace('\n', "; "),
        })?;
        let mut variants = Vec::new();
        for name in preset.variants.keys() {
            let Some(variant) = Variant::from_name(name) else {
                return Err(PresetError {
                    file: path.to_owned(),
                    line: find_line(&text, &format!("[variants.{name}]")),
                    message: format!(
                        "unknown variant `{name}` in [variants.{name}]; variants are {}",
                        VARIANTS.join(", ")
                    ),
                });
            };
            variants.push(variant);
        }
        let file = PresetFile {
            path: path.to_owned(),
            text,
            preset,
        };
        // Check every variant's settings now, not only when that variant is run.
        for variant in variants {
            file.variant_table(variant)?;
        }
        Ok(file)
    }

    /// The preset as a TOML table with one variant's settings merged in; the merged settings
    /// must deserialize and pass validation.
    fn variant_table(&self, variant: Variant) -> Result<toml::Table, PresetError> {
        let mut table =
            toml::Table::try_from(&self.preset).map_err(|e| self.error("", e.to_string()))?;
        table.remove("variants");
        if let Some(extra) = self.preset.variants.get(variant.name()) {
            merge(&mut table, extra);
            let in_table = |message: String| PresetError {
                file: self.path.clone(),
                line: find_line(&self.text, &format!("[variants.{variant}]")),
                message: format!("in [variants.{variant}]: {message}"),
            };
            let merged: Preset = deserialize(&table).map_err(in_table)?;
            merged
                .check(variant.flags())
                .map_err(|Invalid { key, message }| {
                    // A value the variant does not set is the preset's own: blame its line.
                    if sets_key(extra, key) {
                        in_table(format!("{key}: {message}"))
                    } else {
                        self.error(key, format!("{key}: {message}"))
                    }
                })?;
        }
        Ok(table)
    }

    fn error(&self, key: &str, message: String) -> PresetError {
        PresetError {
            file: self.path.clone(),
            line: locate_key(&self.text, key),
            message,
        }
    }

    /// Applies a variant (default: the preset's own) and `key=value` overrides, then validates.
    pub fn resolve(
        &self,
        variant: Option<&str>,
        overrides: &[String],
    ) -> Result<Resolved, PresetError> {
        let variant: Variant = variant
            .unwrap_or(&self.preset.variant)
            .parse()
            .map_err(|unknown: UnknownVariant| self.error("variant", unknown.to_string()))?;
        let flags = variant.flags();
        let mut table = self.variant_table(variant)?;
        for item in overrides {
            apply_override(&mut table, item).map_err(|message| PresetError {
                file: self.path.clone(),
                line: None,
                message: format!("--set {item}: {message}"),
            })?;
            let _: Preset = deserialize(&table).map_err(|message| PresetError {
                file: self.path.clone(),
                line: None,
                message: format!("--set {item}: {message}"),
            })?;
        }
        table.insert("variant".into(), toml::Value::String(variant.name().into()));
        let preset: Preset = deserialize(&table).map_err(|message| self.error("", message))?;
        let checked = preset.check(flags).map_err(|Invalid { key, message }| {
            // A value given with --set is blamed on the --set, not on a line of the file.
            match overrides
                .iter()
                .rev()
                .find(|item| item.split_once('=').is_some_and(|(k, _)| k.trim() == key))
            {
                Some(item) => PresetError {
                    file: self.path.clone(),
                    line: None,
                    message: format!("--set {item}: {key}: {message}"),
                },
                None => self.error(key, format!("{key}: {message}")),
            }
        })?;
        Ok(Resolved {
            preset: checked.into_inner(),
            variant,
            flags,
            origin: self.path.clone(),
        })
    }
}
