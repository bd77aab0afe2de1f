//! The protocol between a front end (TUI or headless printer) and the training thread:
//! `Command`s flow to the trainer and take effect between minibatches; `Event`s flow back.
//! The trainer never waits on the front end. The types live apart from `train`, `sink`,
//! `remote` and `tui`, which all import them; `wording` says events in log lines.

use serde::{Deserialize, Serialize};

pub mod best;
pub mod records;
pub mod summary;
pub mod wording;

pub use records::{MetricsMark, RunRecords, Subscriber, Subscribers, WriteError};

use crate::net::{Flags, Param};
use crate::preset::Monitor;
use crate::stats::LayerStats;

/// What a front end can ask of the trainer. Every command is also a wire message of the
/// control endpoint (docs/protocol.md), hence the serde names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    /// Run exactly one minibatch, then stay paused.
    Step,
    /// Switch α, β or γ on or off (function-preserving).
    Toggle(Param),
    /// Re-estimate the active transformations now.
    Reestimate,
    /// Multiply the learning rate by this factor.
    ScaleLearningRate(f64),
    SetLearningRate(f64),
    SetMomentum(f64),
    /// Stop after the current minibatch and write the final files.
    Stop,
    /// Save a checkpoint now.
    Checkpoint,
    /// Measure the current curvature (gradient-to-Newton angle, off-diagonal ratios) in the
    /// background, for networks small enough; the answer arrives as a log line.
    Curvature,
    /// Change a live setting (`train.momentum`, …; `crate::train::tunables`), validated by
    /// the preset's own rules.
    Set {
        key: String,
        value: String,
    },
}

impl Command {
    /// Whether the command changes what the network computes or learns from here on, so that
    /// a replay must apply it at the same iteration (pauses, steps, saves and curvature
    /// readings do not).
    pub fn changes_training(&self) -> bool {
        !matches!(
            self,
            Command::Pause
                | Command::Resume
                | Command::Step
                | Command::Checkpoint
                | Command::Curvature
        )
    }
}

/// One command as the trainer carried it out: at which iteration (before that minibatch),
/// and with what outcome. Recorded in the run folder's `actions.jsonl` for `--replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steer {
    pub iteration: u64,
    pub command: Command,
    /// False when the trainer refused it (an invalid value, a switch it cannot make).
    pub ok: bool,
    /// What the trainer did, in words ("momentum → 0.950", "α switched off", the refusal).
    pub message: String,
}

/// How many of the last log lines before a `Steered` event are looked at for its line.
pub const STEERING_LINE_LOOKBACK: usize = 8;

impl Steer {
    /// Whether `text` is the log line the trainer sent for this command (just before the
    /// `Steered` event): its message, or a refusal of it.
    pub fn is_its_log_line(&self, text: &str) -> bool {
        text == self.message || text.strip_prefix("refused: ") == Some(self.message.as_str())
    }
}

/// One live setting and its current value, as TOML text (`crate::train::tunables`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunable {
    pub key: String,
    pub value: String,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
    Finished,
    Stopped,
    Diverged,
}

impl RunState {
    pub fn is_over(self) -> bool {
        matches!(
            self,
            RunState::Finished | RunState::Stopped | RunState::Diverged
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Diverged => "diverged",
        }
    }
}

/// Fixed facts about a run, sent once at the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub preset: String,
    pub variant: String,
    pub data: String,
    pub topology: String,
    pub weights: usize,
    pub epochs: usize,
    pub iterations_per_epoch: usize,
    pub batch_size: usize,
    pub classify: bool,
    pub precision: String,
    pub out_dir: Option<String>,
    /// The split behind the `validation_*` figures.
    #[serde(default)]
    pub monitor: Monitor,
    #[serde(default)]
    pub optimizer: crate::preset::OptimizerKind,
    /// What the network learns (absent from older peers: then `classify` tells the
    /// classifiers apart, and the rest count as autoencoders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<crate::preset::Task>,
    /// A trainer in another process (`ltmlp host`): what it declared; absent for ltmlp's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainer: Option<Box<ForeignTrainer>>,
}

/// What a trainer in another process declared to `ltmlp host` (docs/protocol.md, "The
/// trainer side of `ltmlp host`"): viewers and `ctl` offer exactly these commands and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignTrainer {
    pub producer: String,
    pub version: String,
    /// The network, input first: any architecture, as named layers.
    pub layers: Vec<DeclaredLayer>,
    /// The commands it carries out, by their wire names (`pause`, `set`, …).
    pub commands: Vec<String>,
    /// The live settings it accepts.
    pub settings: Vec<SettingSpec>,
    /// Its settings as a flat map (shown, never interpreted).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub config: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One layer of a foreign trainer's network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredLayer {
    pub name: String,
    pub units: usize,
    /// What its units compute, in the trainer's words (`tanh`, `relu`, `softmax`, …).
    #[serde(default)]
    pub kind: String,
}

/// One live setting a foreign trainer accepts, and the values the host lets through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: SettingKind,
    /// Inclusive bounds of a `float` or `int` setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The values of a `choice` setting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The value at the start, as text.
    pub value: String,
    #[serde(default)]
    pub about: String,
}

/// The type of a foreign trainer's live setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    Float,
    Int,
    Bool,
    Choice,
}

impl RunInfo {
    /// The run's task, also from an older peer that did not send it.
    pub fn task(&self) -> crate::preset::Task {
        use crate::preset::Task;
        self.task.unwrap_or(if self.classify {
            Task::Classify
        } else {
            Task::Autoencode
        })
    }
}

/// A live update, sent at most every few hundred milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub epoch: usize,
    pub iteration: u64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub learning_rate: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub momentum: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub examples_per_second: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub elapsed_seconds: f64,
    /// Mean training loss of the minibatches since the last progress report.
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub batch_loss: f64,
}

/// What caused a change of α, β, γ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransformCause {
    /// Scheduled re-estimation by the update policy.
    Scheduled,
    /// Re-estimation asked for by the user.
    Manual,
    /// A parameter switched on or off.
    Switch { param: Param, on: bool },
    /// The γ guard acted on a collapsed unit (`action` says how).
    Guard {
        layer: usize,
        unit: usize,
        action: crate::train::guard::GuardMode,
    },
    /// The training loss jumped under `gamma_control = "rollback"`: the network and momentum
    /// of iteration `to` came back and the rate was halved (the function changes: Δout is NaN).
    Rollback { to: u64 },
}

/// One change of the transformations and how much it moved the network output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransformEvent {
    pub iteration: u64,
    pub cause: TransformCause,
    pub flags: Flags,
    /// Largest absolute change of any network output on the probe batch (NaN if not measured).
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub max_output_change: f64,
}

/// One evaluation (at the end of an epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub iteration: u64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub elapsed_seconds: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub train_loss: f64,
    pub train_error: Option<f64>,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub validation_loss: f64,
    pub validation_error: Option<f64>,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub test_loss: f64,
    pub test_error: Option<f64>,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub learning_rate: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub momentum: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub examples_per_second: f64,
    pub flags: Flags,
    pub layers: Vec<LayerStats>,
    /// Transformation changes since the previous evaluation.
    pub transform_events: Vec<TransformEvent>,
    /// Regression (`model.task = "regress"`): the losses above are mean squared errors, and
    /// these are the coefficients of determination R² of the three splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2: Option<SplitR2>,
    /// Where the run's wall time went up to this evaluation (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<WallTime>,
    /// Classifiers (up to `confusion::MAX_TRAINING_CLASSES` classes): the confusion matrices
    /// of the monitored and the test split at this evaluation, for the dashboard's `x` view,
    /// the per-class errors of `summary.json` and the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Box<crate::confusion::EpochConfusion>>,
}

/// Where a run's wall time went, cumulative seconds (pauses excluded): training steps (which
/// include the re-estimations within them, `reestimate_seconds`), the epoch-end
/// re-estimations of the paper policy, epoch evaluations (the training thread's share: with
/// an evaluation overlapped with the next epoch, only the time it waited for one), statistics
/// snapshots, and writing files. The rest of the wall time is the run's own bookkeeping, steps
/// taken again after an overlapped evaluation contradicted the paper rule's assumption, and
/// the trainer waiting for commands.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WallTime {
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub steps: f64,
    /// Absent from files written before it was counted (then inside `evaluation`).
    #[serde(default, deserialize_with = "crate::nan_json::f64")]
    pub reestimation: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub evaluation: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub statistics: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub files: f64,
}

/// R² = 1 − SSE / Σ(y − ȳ)² per split, pooled over the target columns (ȳ: the split's mean).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitR2 {
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub train: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub validation: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub test: f64,
}

/// Final and best figures of a run (written as `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub preset: String,
    pub variant: String,
    /// The split behind the `validation` figures: with `test`, they are the test set's, and
    /// "best" was selected on test data.
    #[serde(default)]
    pub monitor: Monitor,
    pub state: RunState,
    pub reason: Option<String>,
    pub epochs_completed: usize,
    pub iterations: u64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub wall_seconds: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub train_seconds: f64,
    /// The part of `train_seconds` spent re-estimating α, β, γ within minibatch steps.
    #[serde(default)]
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub reestimate_seconds: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub examples_per_second: f64,
    pub final_train_loss: Option<f64>,
    pub final_validation_loss: Option<f64>,
    pub final_validation_error: Option<f64>,
    pub final_test_loss: Option<f64>,
    pub final_test_error: Option<f64>,
    pub best_epoch: Option<usize>,
    pub best_validation_loss: Option<f64>,
    pub best_validation_error: Option<f64>,
    /// Test figures at the epoch with the best validation result.
    pub test_loss_at_best: Option<f64>,
    pub test_error_at_best: Option<f64>,
    pub out_dir: Option<String>,
    /// Commands that steered the run (`actions.jsonl`; `ltmlp run --replay` repeats them).
    #[serde(default)]
    pub steering_actions: usize,
    /// Where the wall time went.
    #[serde(default)]
    pub wall: Option<WallTime>,
    /// Classifiers: the error of each class at the last evaluation (monitored and test split)
    /// and on the test split at the best one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class_error: Option<crate::confusion::PerClassError>,
}

/// What the trainer tells the front end (and, as wire messages, every attached viewer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Started(RunInfo),
    Progress(Progress),
    /// An evaluation, recorded in the run folder before it was sent.
    Epoch(Box<EpochMetrics>),
    /// An evaluation recorded before this process took the run over: a resumed run first
    /// sends the history it kept, marked so that nobody records or counts it again.
    Replayed(Box<EpochMetrics>),
    /// A fresh statistics snapshot (a newer one supersedes it).
    Layers {
        iteration: u64,
        layers: Vec<LayerStats>,
    },
    Transform(TransformEvent),
    State(RunState),
    Log(String),
    /// The run ended (finished, stopped or diverged); files are written.
    Finished(Box<Summary>),
    /// The run could not go on (e.g. the output folder became unwritable).
    Failed(String),
    /// A command was carried out (or refused).
    Steered(Steer),
    /// The live settings and their values (at the start and after every change).
    Tunables(Vec<Tunable>),
}
