//! Experiment presets: the TOML schema, variants (`none`, `ab`, `abg`) with their own settings,
//! `--set key=value` overrides, and validation whose errors name the file, the key, the line
//! and what is accepted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounded::{self, FileKind};
use crate::data::csvfile::{ColumnRef, CsvOptions};
use crate::data::{ArrayNames, DataFormat, DataSource, Preprocess, ReadOptions, TargetKind};
use crate::net::{Flags, GammaForm, Norm, Shortcuts, Topology, UnitKind};

/// Largest layer the engine accepts; larger is almost certainly a typo.
const MAX_LAYER_UNITS: usize = 100_000;
/// Most hidden layers accepted: every layer feeds every later one, so the number of weight
/// blocks grows with the square of the depth (10,000 layers would need 50 million).
const MAX_HIDDEN_LAYERS: usize = 100;
/// Largest weight count accepted (about 4 GiB of f32 weights, gradients and momentum).
const MAX_WEIGHTS: usize = 300_000_000;
/// Every variant: the papers' three (no transformation, α β, α β γ) and the modern
/// baselines, batch and layer normalisation of the plain tanh network.
pub const VARIANTS: [&str; 5] = ["none", "ab", "abg", "bn", "ln"];
/// The variants the papers compare: what `compare` and `sweep` run when none are named.
pub const PAPER_VARIANTS: [&str; 3] = ["none", "ab", "abg"];

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The variant run when none is named on the command line.
    #[serde(default = "default_variant")]
    pub variant: String,
    #[serde(default)]
    pub data: DataSection,
    pub model: ModelSection,
    pub train: TrainSection,
    #[serde(default)]
    pub transforms: TransformSection,
    #[serde(default)]
    pub stats: StatsSection,
    /// What to do with units that collapse (`[guard]`, off by default).
    #[serde(default)]
    pub guard: crate::train::guard::GuardSection,
    #[serde(default)]
    pub compare: CompareSection,
    /// What `ltmlp sweep` runs: variants, seeds and axes (`[sweep.grid]`).
    #[serde(default, skip_serializing_if = "crate::sweep::SweepSection::is_empty")]
    pub sweep: crate::sweep::SweepSection,
    /// Per-variant settings, merged over the rest: `[variants.abg] train.learning_rate = 0.2`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, toml::Table>,
}

fn default_variant() -> String {
    "ab".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `"embedded"` or a directory with the four MNIST-format IDX files.
    pub source: String,
    /// Examples held out from the end of the training files (default: 1,000 for the embedded
    /// subset, 10,000 otherwise).
    pub validation_size: Option<usize>,
    /// Subtract the per-pixel training mean.
    pub zero_mean: bool,
    /// Reshuffle the training order every pass (seeded) instead of the papers' fixed order.
    pub shuffle: bool,
    /// Average-pool images by this factor (2: 28×28 → 14×14).
    pub downsample: usize,
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// Classification: the number of classes, labels 0 to `classes - 1` (default: the labels
    /// the training split uses, which must not leave a wide gap). Declares classes that the
    /// training examples may lack, or labels far from the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Which split early stopping, the paper rule and the "best epoch" look at.
    pub monitor: Monitor,
    /// How to read `source`: auto (from the path), idx, cifar10, npz, npy or csv.
    pub format: DataFormat,
    /// NumPy: the names of the four arrays.
    pub arrays: ArrayNames,
    /// CSV: the target column(s), by header name or 0-based index (default: the last column).
    pub target_columns: Vec<ColumnRef>,
    /// CSV: whether the first row is a header (default: detected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// CSV: a separate test table (default: the last fifth of `source`'s rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_source: Option<String>,
    /// Colour images: train on one luma channel.
    pub grayscale: bool,
    /// Divide every input feature by its training standard deviation (after centring).
    pub standardize: bool,
    /// Hold 8-bit inputs (IDX, CIFAR-10 pixels, the embedded subset) as bytes and decode them
    /// when read: a quarter of the memory, the same numbers. `false` decodes them once to floats.
    pub byte_storage: bool,
}

/// The split a run monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Monitor {
    /// A held-out slice of the training files (`validation_size` examples from their end).
    #[default]
    Validation,
    /// The authors' protocol: train on every training example and monitor the test set, so
    /// that runs compare epoch by epoch with their figures. Selection then happens on test
    /// data, and every output says so.
    Test,
}

impl Monitor {
    /// The monitored split's name in every output.
    pub fn label(self) -> &'static str {
        match self {
            Monitor::Validation => "validation",
            Monitor::Test => "test (monitored)",
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            source: "embedded".to_string(),
            validation_size: None,
            zero_mean: true,
            shuffle: false,
            downsample: 1,
            train_limit: None,
            test_limit: None,
            classes: None,
            monitor: Monitor::Validation,
            format: DataFormat::Auto,
            arrays: ArrayNames::default(),
            target_columns: Vec::new(),
            header: None,
            test_source: None,
            grayscale: false,
            standardize: false,
            byte_storage: true,
        }
    }
}

impl DataSection {
    pub fn source(&self) -> DataSource {
        DataSource::parse(
            &self.source,
            ReadOptions {
                format: self.format,
                arrays: self.arrays.clone(),
                csv: CsvOptions {
                    header: self.header,
                    targets: self.target_columns.clone(),
                },
                test_source: self.test_source.as_ref().map(PathBuf::from),
            },
        )
    }

    /// The held-out examples: as set, or 1,000 for the embedded subset and otherwise 10,000
    /// or a sixth of the training examples if fewer (decided once the data is read); none
    /// when the test set is monitored.
    pub fn validation_size(&self) -> Option<usize> {
        match (self.monitor, self.validation_size) {
            (Monitor::Test, _) => Some(0),
            (Monitor::Validation, Some(n)) => Some(n),
            (Monitor::Validation, None) => match self.source() {
                DataSource::Embedded => Some(1_000),
                DataSource::Path(..) => None,
            },
        }
    }

    /// The preprocessing for a model of `task`.
    pub fn preprocess(&self, task: Task) -> Preprocess {
        Preprocess {
            downsample: self.downsample,
            grayscale: self.grayscale,
            train_limit: self.train_limit,
            validation_size: self.validation_size(),
            test_limit: self.test_limit,
            classes: self.classes,
            zero_mean: self.zero_mean,
            standardize: self.standardize,
            monitor_test: self.monitor == Monitor::Test,
            byte_storage: self.byte_storage,
            targets: match task {
                Task::Classify => TargetKind::Classes,
                Task::Regress => TargetKind::Values,
                Task::Autoencode => TargetKind::AsRead,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Softmax output, cross-entropy, error %.
    Classify,
    /// Linear output reconstructing the input, squared error.
    Autoencode,
    /// Linear output predicting the file's target values, squared error (reported as MSE and R²).
    Regress,
}

impl Task {
    /// Whether the output is a linear layer trained on squared error.
    pub fn squared_error(self) -> bool {
        self != Task::Classify
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub task: Task,
    /// Hidden layer sizes, input side first.
    pub hidden: Vec<usize>,
    #[serde(default = "default_shortcuts")]
    pub shortcuts: Shortcuts,
    /// Hidden layers (1-based) whose units are linear instead of transformed tanh.
    #[serde(default)]
    pub linear: Vec<usize>,
    /// Hidden layer (1-based) that no connection may skip (autoencoders).
    pub bottleneck: Option<usize>,
}

fn default_shortcuts() -> Shortcuts {
    Shortcuts::All
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Learning rate and momentum stay as set.
    Constant,
    /// The paper demo's: momentum ramps over the burn-in, then the rate decays every epoch.
    Paper,
    /// The authors' time-budget trainer: the rate is constant for the first half of the budget
    /// (`time_budget_seconds` of training, or else all epochs), then falls linearly to zero;
    /// with `warmup_fraction`, it first grows exponentially from rate/100.
    Budget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_schedule")]
    pub schedule: ScheduleKind,
    #[serde(default = "default_momentum_initial")]
    pub momentum_initial: f64,
    #[serde(default = "default_burn_in")]
    pub burn_in_epochs: usize,
    #[serde(default = "default_rate_decay")]
    pub rate_decay: f64,
    /// Reproduce the authors' code, which drops momentum back to `momentum_initial` after burn-in.
    #[serde(default)]
    pub momentum_reset_after_burn_in: bool,
    /// Constant momentum of the biases (the authors' demo keeps them at the final momentum
    /// while the weights follow the ramp); unset: the same as the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_momentum: Option<f64>,
    /// Budget schedule: the fraction of the budget over which the rate grows from rate/100
    /// (the authors' autoencoder warm-up used 0.01).
    #[serde(default)]
    pub warmup_fraction: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// Standard deviation of the Gaussian noise added to each minibatch's inputs.
    #[serde(default)]
    pub input_noise: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// Threads for the matrix products.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Clean training examples evaluated each epoch for the reported training loss.
    #[serde(default = "default_train_eval")]
    pub train_eval_size: usize,
    /// While the matrix products use one thread and the machine has two cores per run trained
    /// at once (a sweep's `--jobs`): evaluate each epoch on a copy of the network on the free
    /// core while the next epoch trains (the last epoch's chunks shared among the free cores),
    /// and measure the statistics probes there too when no γ guard acts on them. The numbers
    /// are the same either way.
    #[serde(default = "default_parallel_evaluation")]
    pub parallel_evaluation: bool,
    /// Stop after this many seconds of training steps (evaluation not counted), with a final
    /// evaluation; for comparisons at a fixed time budget.
    pub time_budget_seconds: Option<f64>,
    /// Save a checkpoint every N epochs (0: only at the end, on request and on signals).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// On divergence, go back to the state at the end of the last epoch and halve the
    /// learning rate, at most this many times (0: stop at the first divergence).
    #[serde(default)]
    pub divergence_rollbacks: usize,
    /// Early stopping: stop after this many epochs without a better validation result
    /// (error for classifiers, loss otherwise). Unset: train all epochs.
    #[serde(default)]
    pub patience: Option<usize>,
    /// `sgd` (heavy-ball momentum, the papers') or `adam`.
    #[serde(default, skip_serializing_if = "OptimizerKind::is_sgd")]
    pub optimizer: OptimizerKind,
    /// Adam's β1, β2 and ε (defaults 0.9, 0.999, 1e-8); Adam ignores the momentum keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_beta1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_beta2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_epsilon: Option<f64>,
    /// Adam: apply `weight_decay` to the weights directly (AdamW) instead of to the gradient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoupled_weight_decay: bool,
}

/// Which optimizer trains the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
}

impl OptimizerKind {
    fn is_sgd(&self) -> bool {
        *self == OptimizerKind::Sgd
    }
}

impl TrainSection {
    /// Adam's constants, the defaults filled in.
    pub fn adam_settings(&self) -> crate::train::adam::AdamSettings {
        crate::train::adam::AdamSettings {
            beta1: self.adam_beta1.unwrap_or(0.9),
            beta2: self.adam_beta2.unwrap_or(0.999),
            epsilon: self.adam_epsilon.unwrap_or(1e-8),
            decay: self.weight_decay,
            decoupled: self.decoupled_weight_decay,
        }
    }
}

fn default_checkpoint_every() -> usize {
    1
}

fn default_momentum() -> f64 {
    0.9
}
fn default_schedule() -> ScheduleKind {
    ScheduleKind::Constant
}
fn default_momentum_initial() -> f64 {
    0.5
}
fn default_burn_in() -> usize {
    50
}
fn default_rate_decay() -> f64 {
    0.9
}
fn default_seed() -> u64 {
    1
}
fn default_precision() -> Precision {
    Precision::F32
}
fn default_parallel_evaluation() -> bool {
    true
}

fn default_threads() -> usize {
    1
}
fn default_train_eval() -> usize {
    10_000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Every `every` minibatches, on the current minibatch.
    Every,
    /// Every `every` minibatches, on a fixed sample of `sample_size` training examples.
    Sample,
    /// The paper demo's rule (docs/method.md).
    Paper,
    /// Never (the transforms stay as initialised or toggled).
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformSection {
    pub gamma_form: GammaForm,
    /// ε in γ's formula (default 1e-4 for the product form, 1e-2 for the RMS form).
    pub gamma_epsilon: Option<f64>,
    /// What keeps γ from blowing up into saturation: "rollback" by default, "off" is the
    /// papers' rule.
    pub gamma_control: crate::net::GammaControl,
    /// The bound on γ under `gamma_control = "bound"`.
    pub gamma_bound: f64,
    /// p under `gamma_control = "step"`: each unit's outgoing steps are divided by γ^p.
    pub gamma_step_power: f64,
    pub policy: PolicyKind,
    pub every: usize,
    pub sample_size: usize,
    /// Paper rule: validation error (%) above which the update runs every minibatch.
    pub paper_threshold: f64,
    /// Examples on which each re-estimation's output change is measured: the first rows of the
    /// minibatch for re-estimations within a step (one extra forward pass of these rows), the
    /// first validation rows otherwise (switches, on-demand and epoch-end re-estimations).
    pub check_samples: usize,
}

impl Default for TransformSection {
    fn default() -> Self {
        TransformSection {
            gamma_form: GammaForm::Product,
            gamma_epsilon: None,
            gamma_control: crate::net::GammaControl::Rollback,
            gamma_bound: 4.0,
            gamma_step_power: 1.0,
            policy: PolicyKind::Every,
            every: 1,
            sample_size: 10_000,
            paper_threshold: 1.0,
            check_samples: 20,
        }
    }
}

impl TransformSection {
    pub fn gamma_epsilon(&self) -> f64 {
        self.gamma_epsilon.unwrap_or(match self.gamma_form {
            GammaForm::Product => 1e-4,
            GammaForm::Rms => 1e-2,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsSection {
    /// Minibatches between two statistics snapshots.
    pub every: usize,
    /// Validation examples in the probe batch.
    pub probe_size: usize,
    /// A unit is saturated when its mean tanh′ is below this.
    pub saturated_slope: f64,
    /// A unit is collapsed when both its pre-activation std and its output std are below this.
    pub collapsed_std: f64,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection {
            every: 50,
            probe_size: 500,
            saturated_slope: 0.1,
            collapsed_std: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct CompareSection {
    /// Validation error (%) whose first crossing is reported ("epochs to target").
    pub target_error: Option<f64>,
    /// Early stopping: epochs without a better validation error before a run stops.
    pub patience: Option<usize>,
    /// Epochs at which the training loss is tabulated.
    pub loss_at_epochs: Vec<usize>,
}

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

/// A fully resolved, validated experiment: one variant, every override applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub preset: Preset,
    pub variant: String,
    pub flags: Flags,
    /// Where the preset came from (for messages and reports).
    pub origin: PathBuf,
}

/// The name of the built-in default preset, compiled into the binary.
pub const DEFAULT_PRESET_NAME: &str = "presets/default.toml";
/// `presets/default.toml`, so that `ltmlp` runs with no files at all.
pub const DEFAULT_PRESET: &str = include_str!("../presets/default.toml");

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
            file.preset.transforms.gamma_control = crate::net::GammaControl::Off;
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
        for name in preset.variants.keys() {
            if !VARIANTS.contains(&name.as_str()) {
                return Err(PresetError {
                    file: path.to_owned(),
                    line: find_line(&text, &format!("[variants.{name}]")),
                    message: format!(
                        "unknown variant `{name}` in [variants.{name}]; variants are {}",
                        VARIANTS.join(", ")
                    ),
                });
            }
        }
        let file = PresetFile {
            path: path.to_owned(),
            text,
            preset,
        };
        // Check every variant's settings now, not only when that variant is run.
        for variant in file.preset.variants.keys() {
            file.variant_table(variant)?;
        }
        Ok(file)
    }

    /// The preset as a TOML table with one variant's settings merged in; the merged settings
    /// must deserialize and pass validation.
    fn variant_table(&self, variant: &str) -> Result<toml::Table, PresetError> {
        let mut table =
            toml::Table::try_from(&self.preset).map_err(|e| self.error("", e.to_string()))?;
        table.remove("variants");
        if let Some(extra) = self.preset.variants.get(variant) {
            merge(&mut table, extra);
            let in_table = |message: String| PresetError {
                file: self.path.clone(),
                line: find_line(&self.text, &format!("[variants.{variant}]")),
                message: format!("in [variants.{variant}]: {message}"),
            };
            let merged: Preset = deserialize(&table).map_err(in_table)?;
            if let Some(flags) = flags_of(variant) {
                validate(&merged, flags).map_err(|(key, message)| {
                    // A value the variant does not set is the preset's own: blame its line.
                    if sets_key(extra, &key) {
                        in_table(format!("{key}: {message}"))
                    } else {
                        self.error(&key, format!("{key}: {message}"))
                    }
                })?;
            }
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
        let variant = variant.unwrap_or(&self.preset.variant).to_string();
        let flags = flags_of(&variant).ok_or_else(|| {
            self.error(
                "variant",
                format!(
                    "unknown variant `{variant}`; choose one of {}",
                    VARIANTS.join(", ")
                ),
            )
        })?;
        let mut table = self.variant_table(&variant)?;
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
        table.insert("variant".into(), toml::Value::String(variant.clone()));
        let preset: Preset = deserialize(&table).map_err(|message| self.error("", message))?;
        validate(&preset, flags).map_err(|(key, message)| {
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
                None => self.error(&key, format!("{key}: {message}")),
            }
        })?;
        Ok(Resolved {
            preset,
            variant,
            flags,
            origin: self.path.clone(),
        })
    }
}

/// α/β/γ switches of a variant name.
pub fn flags_of(variant: &str) -> Option<Flags> {
    match variant {
        "none" => Some(Flags::NONE),
        "ab" => Some(Flags {
            alpha: true,
            beta: true,
            gamma: false,
        }),
        "abg" => Some(Flags {
            alpha: true,
            beta: true,
            gamma: true,
        }),
        "bn" | "ln" => Some(Flags::NONE),
        _ => None,
    }
}

/// The normalisation of a variant's hidden layers.
pub fn norm_of(variant: &str) -> Norm {
    match variant {
        "bn" => Norm::Batch,
        "ln" => Norm::Layer,
        _ => Norm::None,
    }
}

fn deserialize(table: &toml::Table) -> Result<Preset, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// Recursively merges `extra` into `base`; tables merge, other values replace.
fn merge(base: &mut toml::Table, extra: &toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies `a.b.c=value`; the value is read as TOML, or as a string if it is not valid TOML.
pub fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), String> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, e.g. train.learning_rate=0.1".to_string())?;
    let key = key.trim();
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "`{key}` is not a key; write section.key, e.g. train.epochs"
        ));
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{part}` is a value, not a section")),
        };
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Semantic checks that do not need the data. Returns (key, message).
fn validate(p: &Preset, flags: Flags) -> Result<(), (String, String)> {
    let err = |key: &str, msg: String| Err((key.to_string(), msg));
    let t = &p.train;
    if t.epochs == 0 {
        return err("train.epochs", "must be at least 1".into());
    }
    if t.batch_size == 0 {
        return err("train.batch_size", "must be at least 1, e.g. 100".into());
    }
    if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
        return err(
            "train.learning_rate",
            format!("{} is not a positive number; use e.g. 0.1", t.learning_rate),
        );
    }
    for (key, value) in [
        ("train.momentum", Some(t.momentum)),
        ("train.momentum_initial", Some(t.momentum_initial)),
        ("train.bias_momentum", t.bias_momentum),
    ] {
        match value {
            Some(value) if !(value.is_finite() && (0.0..1.0).contains(&value)) => {
                return err(key, format!("{value} must be in [0, 1), e.g. 0.9"));
            }
            _ => {}
        }
    }
    let cap = p.guard.gamma_cap;
    if !(cap.is_finite() && cap >= 1.0) {
        return err(
            "guard.gamma_cap",
            format!("{cap} must be a number ≥ 1 (γ's bound for a collapsed unit), e.g. 4"),
        );
    }
    if t.optimizer == OptimizerKind::Adam && flags.any() {
        return err(
            "train.optimizer",
            format!(
                "\"adam\" with α/β/γ ({}): the re-estimation's compensation mixes weights \
                 across layers and Adam's per-weight second moments cannot follow it; use \
                 optimizer = \"sgd\" with ab/abg, or adam with none, bn or ln",
                flags.label()
            ),
        );
    }
    for (key, value) in [
        ("train.adam_beta1", t.adam_beta1),
        ("train.adam_beta2", t.adam_beta2),
    ] {
        match value {
            Some(value) if !(value.is_finite() && (0.0..1.0).contains(&value)) => {
                return err(key, format!("{value} must be in [0, 1), e.g. 0.9 or 0.999"));
            }
            _ => {}
        }
    }
    if let Some(eps) = t.adam_epsilon {
        if !(eps.is_finite() && eps > 0.0) {
            return err(
                "train.adam_epsilon",
                format!("{eps} is not a positive number; use e.g. 1e-8"),
            );
        }
    }
    if !(t.warmup_fraction.is_finite() && (0.0..0.5).contains(&t.warmup_fraction)) {
        return err(
            "train.warmup_fraction",
            format!(
                "{} must be in [0, 0.5), e.g. 0.01 (the first 1% of the budget)",
                t.warmup_fraction
            ),
        );
    }
    if t.warmup_fraction > 0.0 && t.schedule != ScheduleKind::Budget {
        return err(
            "train.warmup_fraction",
            "applies only to schedule = \"budget\"; set the schedule or remove the warm-up".into(),
        );
    }
    if t.train_eval_size == 0 {
        return err(
            "train.train_eval_size",
            "must be at least 1: it is the number of clean training examples evaluated each \
             epoch for the reported training loss, e.g. 10000"
                .into(),
        );
    }
    if !(t.rate_decay.is_finite() && t.rate_decay > 0.0 && t.rate_decay <= 1.0) {
        return err(
            "train.rate_decay",
            format!("{} must be in (0, 1], e.g. 0.9", t.rate_decay),
        );
    }
    for (key, value) in [
        ("train.weight_decay", t.weight_decay),
        ("train.input_noise", t.input_noise),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return err(key, format!("{value} must be zero or positive"));
        }
    }
    if let Some(budget) = t.time_budget_seconds {
        if !(budget.is_finite() && budget > 0.0) {
            return err(
                "train.time_budget_seconds",
                format!("{budget} must be a positive number of seconds"),
            );
        }
    }
    if t.patience == Some(0) {
        return err(
            "train.patience",
            "must be at least 1 epoch, e.g. 5 (leave it out to train every epoch)".into(),
        );
    }
    if t.threads == 0 || t.threads > 256 {
        return err(
            "train.threads",
            format!("{} must be between 1 and 256", t.threads),
        );
    }
    let m = &p.model;
    if m.hidden.len() > MAX_HIDDEN_LAYERS {
        return err(
            "model.hidden",
            format!(
                "{} hidden layers; at most {MAX_HIDDEN_LAYERS} are accepted",
                m.hidden.len()
            ),
        );
    }
    if let Some(i) = m.hidden.iter().position(|&n| n == 0 || n > MAX_LAYER_UNITS) {
        return err(
            "model.hidden",
            format!(
                "hidden layer {} has {} units; each must have 1 to {MAX_LAYER_UNITS}",
                i + 1,
                m.hidden[i]
            ),
        );
    }
    if let Some(&l) = m.linear.iter().find(|&&l| l == 0 || l > m.hidden.len()) {
        return err(
            "model.linear",
            format!(
                "{l} is not a hidden layer; hidden layers are numbered 1 to {}",
                m.hidden.len()
            ),
        );
    }
    if let Some(b) = m.bottleneck {
        if b == 0 || b > m.hidden.len() {
            return err(
                "model.bottleneck",
                format!(
                    "{b} is not a hidden layer; hidden layers are numbered 1 to {}",
                    m.hidden.len()
                ),
            );
        }
    }
    if flags.alpha && m.shortcuts == Shortcuts::Adjacent && !m.hidden.is_empty() {
        return err(
            "model.shortcuts",
            "\"adjacent\" cannot carry α: its compensation needs shortcut connections; \
             use shortcuts = \"all\" or variant none"
                .into(),
        );
    }
    let x = &p.transforms;
    if x.every == 0 {
        return err("transforms.every", "must be at least 1".into());
    }
    if x.sample_size == 0 {
        return err("transforms.sample_size", "must be at least 1".into());
    }
    if !(x.gamma_epsilon().is_finite() && x.gamma_epsilon() >= 0.0) {
        return err(
            "transforms.gamma_epsilon",
            "must be zero or positive".into(),
        );
    }
    if !(x.gamma_bound.is_finite() && x.gamma_bound >= 1.0) {
        return err(
            "transforms.gamma_bound",
            format!(
                "{} is not a bound on γ: use a number ≥ 1, e.g. 4",
                x.gamma_bound
            ),
        );
    }
    if !(x.gamma_step_power.is_finite() && (0.0..=2.0).contains(&x.gamma_step_power)) {
        return err(
            "transforms.gamma_step_power",
            format!(
                "{} is out of range: use a power from 0 (the papers' steps) to 2 (α β's steps)",
                x.gamma_step_power
            ),
        );
    }
    if !(x.paper_threshold.is_finite() && x.paper_threshold >= 0.0) {
        return err(
            "transforms.paper_threshold",
            "must be a percentage ≥ 0".into(),
        );
    }
    let s = &p.stats;
    if s.every == 0 || s.probe_size == 0 {
        return err(
            "stats.every",
            "stats.every and stats.probe_size must be at least 1".into(),
        );
    }
    let d = &p.data;
    match (d.monitor, d.validation_size) {
        (Monitor::Validation, Some(0)) => {
            return err(
                "data.validation_size",
                "0 leaves nothing to validate on; hold out some examples (e.g. 10000), or set \
                 data.monitor = \"test\" to train on every example and monitor the test set \
                 (the authors' protocol)"
                    .into(),
            )
        }
        (Monitor::Test, Some(n)) if n > 0 => {
            return err(
                "data.validation_size",
                format!(
                    "{n} examples held out, but data.monitor = \"test\" trains on every \
                     training example; remove validation_size or monitor the validation set"
                ),
            )
        }
        _ => {}
    }
    for (key, value) in [
        ("data.train_limit", d.train_limit),
        ("data.test_limit", d.test_limit),
    ] {
        if value == Some(0) {
            return err(
                key,
                "0 keeps no examples; remove the key to keep them all, or give a positive count"
                    .into(),
            );
        }
    }
    if let Some(classes) = d.classes {
        if p.model.task != Task::Classify {
            return err(
                "data.classes",
                "applies to classification (model.task = \"classify\") only; remove it".into(),
            );
        }
        if !(2..=MAX_LAYER_UNITS).contains(&classes) {
            return err(
                "data.classes",
                format!(
                    "{classes} classes; give 2 to {MAX_LAYER_UNITS} (labels are 0 to classes - 1)"
                ),
            );
        }
    }
    if p.data.downsample == 0 {
        return err(
            "data.downsample",
            "must be at least 1 (1 keeps the images as they are)".into(),
        );
    }
    if let Some(target) = p.compare.target_error {
        if !(target.is_finite() && target > 0.0) {
            return err(
                "compare.target_error",
                format!("{target} must be a positive percentage"),
            );
        }
    }
    Ok(())
}

impl Resolved {
    /// The network shape for data with `input_dim` inputs and `outputs` classes (or regression
    /// targets), checked against the data's sizes.
    pub fn topology(
        &self,
        input_dim: usize,
        outputs: usize,
        train: usize,
    ) -> Result<Topology, PresetError> {
        let p = &self.preset;
        let error = |key: &str, message: String| PresetError {
            file: self.origin.clone(),
            line: None,
            message: format!("{key}: {message}"),
        };
        if p.train.batch_size > train {
            return Err(error(
                "train.batch_size",
                format!(
                    "{} is larger than the {train} training examples; use at most {train}",
                    p.train.batch_size
                ),
            ));
        }
        let (output, output_kind) = match p.model.task {
            Task::Classify => (outputs, UnitKind::Softmax),
            Task::Autoencode => (input_dim, UnitKind::Linear),
            Task::Regress => (outputs, UnitKind::Linear),
        };
        let mut sizes = vec![input_dim];
        sizes.extend(&p.model.hidden);
        sizes.push(output);
        let weights: usize = (1..sizes.len())
            .map(|l| {
                (0..l)
                    .map(|k| sizes[l].saturating_mul(sizes[k]))
                    .sum::<usize>()
            })
            .sum();
        if weights > MAX_WEIGHTS {
            return Err(error(
                "model.hidden",
                format!(
                    "{:?} with {input_dim} inputs gives {weights} weights, more than the \
                     {MAX_WEIGHTS} ltmlp accepts; use smaller layers",
                    p.model.hidden
                ),
            ));
        }
        let mut kinds = vec![UnitKind::Input];
        kinds.extend((1..=p.model.hidden.len()).map(|l| {
            if p.model.linear.contains(&l) {
                UnitKind::Linear
            } else {
                UnitKind::Tanh
            }
        }));
        kinds.push(output_kind);
        Topology::new(sizes, kinds, p.model.shortcuts, p.model.bottleneck)
            .map(|t| t.with_norm(norm_of(&self.variant)))
            .map_err(|e| error("model", e.to_string()))
    }

    /// This experiment with one more `key=value` applied and everything validated again, with
    /// the messages a preset or `--set` would get (for settings changed while a run trains).
    pub fn with_override(&self, item: &str) -> Result<Resolved, String> {
        let mut table = toml::Table::try_from(&self.preset).map_err(|e| e.to_string())?;
        apply_override(&mut table, item)?;
        let preset = deserialize(&table)?;
        validate(&preset, self.flags).map_err(|(key, message)| format!("{key}: {message}"))?;
        Ok(Resolved {
            preset,
            ..self.clone()
        })
    }

    /// The resolved preset as TOML (written as `config.toml`; it runs the same experiment).
    /// Values whose default depends on other settings are written out, so that the file
    /// means the same whatever data a resume is pointed at.
    pub fn to_toml(&self) -> String {
        let mut complete = self.preset.clone();
        complete.data.validation_size = complete.data.validation_size();
        toml::to_string_pretty(&complete).unwrap_or_default()
    }
}

/// Whether a variant's table sets the dotted `key` (`model.hidden`).
fn sets_key(table: &toml::Table, key: &str) -> bool {
    match key.split_once('.') {
        _ if table.contains_key(key) => true,
        Some((section, rest)) => match table.get(section) {
            Some(toml::Value::Table(inner)) => sets_key(inner, rest),
            _ => false,
        },
        None => false,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map(|i| i + 1)
}

/// The line of `section.key = …` in preset text, if it is written there.
fn locate_key(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    if key.is_empty() {
        return None;
    }
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = header.trim().to_string();
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// Whether a preset or run configuration's text sets `transforms.gamma_control` itself.
fn sets_gamma_control(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| {
        table
            .get("transforms")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("gamma_control"))
    })
}
