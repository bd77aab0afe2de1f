//! What a foreign trainer writes to `ltmlp host` and reads from it: the trainer's events, the
//! host's commands, and the checks that turn a trainer's line into a run's event or a clear
//! refusal (docs/protocol.md, "The trainer side of `ltmlp host`").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::net::{Flags, UnitKind};
use crate::preset::{Monitor, OptimizerKind, Task};
use crate::protocol::{DeclaredLayer, SettingKind, SettingSpec};
use crate::stats::{LayerStats, Range, UnitStats};
use crate::train::{Command, EpochMetrics, Progress, RunState};

/// The trainer protocol's version; a declaration of another is refused.
pub const TRAINER_PROTOCOL: u32 = 1;
/// Text fields (names, log lines, messages) are cut to this many bytes.
const MAX_TEXT: usize = 4096;
/// Layers, settings and commands a declaration may name.
const MAX_DECLARED: usize = 1024;

/// Every command a trainer may declare, by its wire name: the variants of [`Command`].
pub const COMMAND_NAMES: &[&str] = &[
    "pause",
    "resume",
    "step",
    "toggle",
    "reestimate",
    "scale_learning_rate",
    "set_learning_rate",
    "set_momentum",
    "stop",
    "checkpoint",
    "curvature",
    "set",
];

/// The wire name of a command (its key in `{"command":…}`).
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Pause => "pause",
        Command::Resume => "resume",
        Command::Step => "step",
        Command::Toggle(_) => "toggle",
        Command::Reestimate => "reestimate",
        Command::ScaleLearningRate(_) => "scale_learning_rate",
        Command::SetLearningRate(_) => "set_learning_rate",
        Command::SetMomentum(_) => "set_momentum",
        Command::Stop => "stop",
        Command::Checkpoint => "checkpoint",
        Command::Curvature => "curvature",
        Command::Set { .. } => "set",
    }
}

/// One line from the trainer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TrainerEvent {
    /// The first line: what the trainer is and accepts.
    Declare(Box<Declaration>),
    Progress(TrainerProgress),
    Epoch(Box<TrainerEpoch>),
    Layers(TrainerLayers),
    Log(String),
    /// `running` or `paused`.
    State(RunState),
    /// The answer to command `id`.
    Ack(Ack),
    Finished(TrainerFinished),
}

/// A trainer's first event.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    pub protocol: u32,
    pub producer: String,
    pub version: String,
    /// The network, input first.
    pub layers: Vec<DeclaredLayer>,
    #[serde(default)]
    pub weights: usize,
    pub epochs: usize,
    #[serde(default)]
    pub iterations_per_epoch: usize,
    #[serde(default)]
    pub batch_size: usize,
    #[serde(default = "default_task")]
    pub task: Task,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub precision: String,
    #[serde(default)]
    pub monitor: Monitor,
    #[serde(default)]
    pub optimizer: OptimizerKind,
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
    #[serde(default)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// The epoch a resumed trainer continues after (its records up to it are kept).
    #[serde(default)]
    pub resume_from: Option<usize>,
}

fn default_task() -> Task {
    Task::Classify
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerProgress {
    pub epoch: usize,
    pub iteration: u64,
    #[serde(default)]
    pub batch_loss: Option<f64>,
    #[serde(default)]
    pub learning_rate: Option<f64>,
    #[serde(default)]
    pub momentum: Option<f64>,
    #[serde(default)]
    pub examples_per_second: Option<f64>,
    #[serde(default)]
    pub elapsed_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerEpoch {
    pub epoch: usize,
    pub iteration: u64,
    pub train_loss: Option<f64>,
    #[serde(default)]
    pub train_error: Option<f64>,
    pub validation_loss: Option<f64>,
    #[serde(default)]
    pub validation_error: Option<f64>,
    #[serde(default)]
    pub test_loss: Option<f64>,
    #[serde(default)]
    pub test_error: Option<f64>,
    #[serde(default)]
    pub learning_rate: Option<f64>,
    #[serde(default)]
    pub momentum: Option<f64>,
    #[serde(default)]
    pub examples_per_second: Option<f64>,
    #[serde(default)]
    pub elapsed_seconds: Option<f64>,
    /// Which transformations are on (default: none).
    #[serde(default)]
    pub flags: Option<Flags>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerLayers {
    pub iteration: u64,
    pub layers: Vec<TrainerLayer>,
}

/// One layer's statistics; `name` is a declared layer's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerLayer {
    pub name: String,
    #[serde(default)]
    pub mean_out: Option<f64>,
    #[serde(default)]
    pub std_out: Option<f64>,
    #[serde(default)]
    pub mean_slope: Option<f64>,
    #[serde(default)]
    pub std_pre: Option<f64>,
    #[serde(default)]
    pub saturated_fraction: Option<f64>,
    #[serde(default)]
    pub collapsed_fraction: Option<f64>,
    /// One value per unit, for the dashboard's unit view.
    #[serde(default)]
    pub per_unit: Option<TrainerUnits>,
}

/// Per-unit arrays; each given one has the layer's unit count.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerUnits {
    #[serde(default)]
    pub mean_out: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub std_out: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub mean_slope: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub std_pre: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub saturated: Option<Vec<bool>>,
    #[serde(default)]
    pub collapsed: Option<Vec<bool>>,
    /// A transformed unit's α, β, γ (absent: 0, 0, 1, an untransformed unit); the layer's
    /// ranges are taken from them.
    #[serde(default)]
    pub alpha: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub beta: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub gamma: Option<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub id: u64,
    pub ok: bool,
    #[serde(default)]
    pub message: String,
    /// Minibatches done when the command took effect (default: the latest the host heard of).
    #[serde(default)]
    pub iteration: Option<u64>,
    /// Which transformations are on after a toggle or re-estimation, and the largest change
    /// of any network output it made (on the trainer's probe batch).
    #[serde(default)]
    pub flags: Option<Flags>,
    #[serde(default)]
    pub max_output_change: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerFinished {
    /// `finished`, `stopped` or `diverged`.
    pub state: RunState,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub iterations: Option<u64>,
    #[serde(default)]
    pub train_seconds: Option<f64>,
}

/// One line from the host to the trainer: a command to carry out and acknowledge by `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCommand {
    pub id: u64,
    pub command: Command,
}

/// A trainer's line as an event, or why it is not one (the line number is the caller's).
pub fn decode(line: &[u8]) -> Result<TrainerEvent, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "not UTF-8 (byte {} is not text); every line is one JSON object in UTF-8",
            e.valid_up_to()
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        let mut shown: String = text.chars().take(80).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        format!("not a trainer event ({e}): {shown:?}; see docs/protocol.md, \"The trainer side of `ltmlp host`\"")
    })
}

/// Cuts `text` to [`MAX_TEXT`] bytes at a character boundary.
pub fn clip(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl Declaration {
    /// Checks the declaration on its own: version, names, sizes, commands and settings.
    pub fn check(&self) -> Result<(), String> {
        if self.protocol != TRAINER_PROTOCOL {
            return Err(format!(
                "declare: protocol {} is not this host's {TRAINER_PROTOCOL}: use the ltmlp \
                 that matches the trainer, or update the trainer",
                self.protocol
            ));
        }
        for (field, value) in [("producer", &self.producer), ("version", &self.version)] {
            if value.trim().is_empty() || value.len() > 200 {
                return Err(format!("declare.{field}: give 1 to 200 characters"));
            }
        }
        if self.layers.len() < 2 || self.layers.len() > MAX_DECLARED {
            return Err(format!(
                "declare.layers: {} layers; a network has 2 to {MAX_DECLARED} (input first, \
                 output last)",
                self.layers.len()
            ));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.name.is_empty() || layer.name.len() > 200 || layer.units == 0 {
                return Err(format!(
                    "declare.layers[{i}]: a layer needs a name (1 to 200 characters) and at \
                     least one unit"
                ));
            }
            if self.layers[..i].iter().any(|l| l.name == layer.name) {
                return Err(format!(
                    "declare.layers[{i}]: the name {:?} is taken by an earlier layer",
                    layer.name
                ));
            }
        }
        if self.epochs == 0 {
            return Err("declare.epochs: give the planned number of epochs (1 or more)".into());
        }
        if self.commands.len() > MAX_DECLARED || self.settings.len() > MAX_DECLARED {
            return Err(format!(
                "declare: at most {MAX_DECLARED} commands and settings"
            ));
        }
        for name in &self.commands {
            if !COMMAND_NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "declare.commands: `{name}` is not a command; commands are {}",
                    COMMAND_NAMES.join(", ")
                ));
            }
        }
        if !self.settings.is_empty() && !self.commands.iter().any(|c| c == "set") {
            return Err(
                "declare.settings: settings are changed by the `set` command: declare it too"
                    .into(),
            );
        }
        for (i, s) in self.settings.iter().enumerate() {
            if s.key.is_empty() || s.key.len() > 200 {
                return Err(format!(
                    "declare.settings[{i}]: a key of 1 to 200 characters"
                ));
            }
            if self.settings[..i].iter().any(|t| t.key == s.key) {
                return Err(format!("declare.settings[{i}]: `{}` is named twice", s.key));
            }
            if s.kind == SettingKind::Choice && s.choices.is_empty() {
                return Err(format!(
                    "declare.settings[{i}] ({}): a choice needs its `choices`",
                    s.key
                ));
            }
            check_value(s, &s.value).map_err(|e| format!("declare.settings[{i}]: value: {e}"))?;
        }
        Ok(())
    }

    /// The layer's index and kind, by its declared name.
    pub fn layer(&self, name: &str) -> Option<(usize, &DeclaredLayer)> {
        self.layers.iter().enumerate().find(|(_, l)| l.name == name)
    }

    /// `784-100(tanh)-10(softmax)`: the sizes, with each kind but the input's.
    pub fn topology(&self) -> String {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| match (i, l.kind.as_str()) {
                (0, _) | (_, "") => l.units.to_string(),
                (_, kind) => format!("{}({kind})", l.units),
            })
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// Whether `value` (text, as `ctl set` sends it) is allowed for the setting `spec`.
pub fn check_value(spec: &SettingSpec, value: &str) -> Result<(), String> {
    let value = value.trim();
    let bounds = |x: f64| {
        let low = spec.min.is_none_or(|m| x >= m);
        let high = spec.max.is_none_or(|m| x <= m);
        if low && high {
            Ok(())
        } else {
            Err(format!(
                "{}: {value} is outside [{}, {}]",
                spec.key,
                spec.min.map_or("-inf".into(), |m| m.to_string()),
                spec.max.map_or("inf".into(), |m| m.to_string())
            ))
        }
    };
    match spec.kind {
        SettingKind::Float => match value.parse::<f64>() {
            Ok(x) if x.is_finite() => bounds(x),
            _ => Err(format!("{}: {value:?} is not a finite number", spec.key)),
        },
        SettingKind::Int => match value.parse::<i64>() {
            Ok(x) => bounds(x as f64),
            Err(_) => Err(format!("{}: {value:?} is not a whole number", spec.key)),
        },
        SettingKind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{}: {value:?} is not true or false", spec.key)),
        },
        SettingKind::Choice => {
            if spec.choices.iter().any(|c| c == value) {
                Ok(())
            } else {
                Err(format!(
                    "{}: {value:?} is not one of {}",
                    spec.key,
                    spec.choices.join(", ")
                ))
            }
        }
    }
}

/// The smallest and largest measured value of a per-unit parameter; `neutral` for a layer
/// with none measured (an untransformed unit's value).
fn range_of(values: &[f64], neutral: f64) -> Range {
    let range = Range::of(values.iter().copied().filter(|v| v.is_finite()));
    if range.min.is_finite() {
        range
    } else {
        Range {
            min: neutral,
            max: neutral,
        }
    }
}

/// A float the trainer may leave out (`null`: not measured, NaN) but not send as infinite.
fn measured(name: &str, value: Option<f64>) -> Result<f64, String> {
    match value {
        None => Ok(f64::NAN),
        Some(x) if x.is_finite() => Ok(x),
        Some(x) => Err(format!(
            "{name} is {x}; send null for a figure not measured"
        )),
    }
}

/// An error % the trainer may leave out, in [0, 100].
fn percent(name: &str, value: Option<f64>) -> Result<Option<f64>, String> {
    match value {
        None => Ok(None),
        Some(x) if (0.0..=100.0).contains(&x) => Ok(Some(x)),
        Some(x) => Err(format!(
            "{name} is {x}; an error is a percentage in [0, 100]"
        )),
    }
}

impl TrainerProgress {
    pub fn to_progress(&self) -> Result<Progress, String> {
        Ok(Progress {
            epoch: self.epoch,
            iteration: self.iteration,
            learning_rate: measured("learning_rate", self.learning_rate)?,
            momentum: measured("momentum", self.momentum)?,
            examples_per_second: measured("examples_per_second", self.examples_per_second)?,
            elapsed_seconds: measured("elapsed_seconds", self.elapsed_seconds)?,
            batch_loss: measured("batch_loss", self.batch_loss)?,
        })
    }
}

impl TrainerEpoch {
    /// The evaluation as a metrics record; `layers` are the latest statistics, `elapsed`
    /// the host's clock when the trainer gives none.
    pub fn to_metrics(
        &self,
        layers: Vec<LayerStats>,
        elapsed: f64,
    ) -> Result<EpochMetrics, String> {
        if self.epoch == 0 {
            return Err("epoch 0: epochs count from 1".into());
        }
        Ok(EpochMetrics {
            epoch: self.epoch,
            iteration: self.iteration,
            elapsed_seconds: match self.elapsed_seconds {
                None => elapsed,
                some => measured("elapsed_seconds", some)?,
            },
            train_loss: measured("train_loss", self.train_loss)?,
            train_error: percent("train_error", self.train_error)?,
            validation_loss: measured("validation_loss", self.validation_loss)?,
            validation_error: percent("validation_error", self.validation_error)?,
            test_loss: measured("test_loss", self.test_loss)?,
            test_error: percent("test_error", self.test_error)?,
            learning_rate: measured("learning_rate", self.learning_rate)?,
            momentum: measured("momentum", self.momentum)?,
            examples_per_second: measured("examples_per_second", self.examples_per_second)?,
            flags: self.flags.unwrap_or(Flags::NONE),
            layers,
            transform_events: Vec::new(),
            r2: None,
            wall: None,
            confusion: None,
        })
    }
}

impl TrainerLayers {
    /// The statistics as the dashboard's, each layer found by its declared name.
    pub fn to_stats(&self, declared: &Declaration) -> Result<Vec<LayerStats>, String> {
        self.layers
            .iter()
            .map(|l| {
                let (index, layer) = declared.layer(&l.name).ok_or_else(|| {
                    format!("layers: {:?} is not a declared layer", clip(l.name.clone()))
                })?;
                l.to_stats(index, layer)
            })
            .collect()
    }
}

impl TrainerLayer {
    fn to_stats(&self, index: usize, layer: &DeclaredLayer) -> Result<LayerStats, String> {
        let fraction = |name: &str, v: Option<f64>| match v {
            Some(x) if !(0.0..=1.0).contains(&x) => Err(format!(
                "{}.{name} is {x}; a fraction is in [0, 1]",
                self.name
            )),
            v => measured(name, v),
        };
        let std_out = measured("std_out", self.std_out)?;
        let per_unit = match &self.per_unit {
            Some(u) => u.to_stats(&self.name, layer.units)?,
            None => UnitStats::default(),
        };
        Ok(LayerStats {
            layer: index,
            kind: match layer.kind.as_str() {
                "tanh" => UnitKind::Tanh,
                "softmax" => UnitKind::Softmax,
                "input" => UnitKind::Input,
                _ => UnitKind::Linear,
            },
            units: layer.units,
            mean_out: measured("mean_out", self.mean_out)?,
            mean_slope: measured("mean_slope", self.mean_slope)?,
            var_out: std_out * std_out,
            std_pre: measured("std_pre", self.std_pre)?,
            saturated_fraction: fraction("saturated_fraction", self.saturated_fraction)?,
            collapsed_fraction: fraction("collapsed_fraction", self.collapsed_fraction)?,
            gamma_capped_fraction: 0.0,
            alpha: range_of(&per_unit.alpha, 0.0),
            beta: range_of(&per_unit.beta, 0.0),
            gamma: range_of(&per_unit.gamma, 1.0),
            per_unit,
        })
    }
}

impl TrainerUnits {
    /// The arrays as the unit view's, each of `units` entries (missing ones unmeasured).
    fn to_stats(&self, layer: &str, units: usize) -> Result<UnitStats, String> {
        let floats = |name: &str, v: &Option<Vec<Option<f64>>>| -> Result<Vec<f64>, String> {
            match v {
                None => Ok(vec![f64::NAN; units]),
                Some(v) if v.len() != units => Err(format!(
                    "{layer}.per_unit.{name} has {} values for {units} units",
                    v.len()
                )),
                Some(v) => v.iter().map(|x| measured(name, *x)).collect(),
            }
        };
        let flags = |name: &str, v: &Option<Vec<bool>>| match v {
            None => Ok(vec![false; units]),
            Some(v) if v.len() != units => Err(format!(
                "{layer}.per_unit.{name} has {} values for {units} units",
                v.len()
            )),
            Some(v) => Ok(v.clone()),
        };
        let mean_slope = floats("mean_slope", &self.mean_slope)?;
        let transform = |name: &str, v: &Option<Vec<Option<f64>>>, neutral: f64| match v {
            None => Ok(vec![neutral; units]),
            given => floats(name, given),
        };
        Ok(UnitStats {
            mean_out: floats("mean_out", &self.mean_out)?,
            tanh_slope: mean_slope.clone(),
            mean_slope,
            std_out: floats("std_out", &self.std_out)?,
            std_pre: floats("std_pre", &self.std_pre)?,
            saturated: flags("saturated", &self.saturated)?,
            collapsed: flags("collapsed", &self.collapsed)?,
            alpha: transform("alpha", &self.alpha, 0.0)?,
            beta: transform("beta", &self.beta, 0.0)?,
            gamma: transform("gamma", &self.gamma, 1.0)?,
            guarded: vec![None; units],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Param;

    #[test]
    fn every_command_has_its_wire_name_in_the_list() {
        for command in [
            Command::Pause,
            Command::Resume,
            Command::Step,
            Command::Toggle(Param::Alpha),
            Command::Reestimate,
            Command::ScaleLearningRate(2.0),
            Command::SetLearningRate(0.1),
            Command::SetMomentum(0.9),
            Command::Stop,
            Command::Checkpoint,
            Command::Curvature,
            Command::Set {
                key: "k".into(),
                value: "v".into(),
            },
        ] {
            let name = command_name(&command);
            assert!(COMMAND_NAMES.contains(&name), "{name}");
            let wire = serde_json::to_value(&command).unwrap();
            let serde_name = wire
                .as_str()
                .map(str::to_string)
                .or_else(|| wire.as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap();
            assert_eq!(serde_name, name);
        }
        assert_eq!(COMMAND_NAMES.len(), 12);
    }

    #[test]
    fn setting_values_are_checked_by_type_and_range() {
        let spec = SettingSpec {
            key: "train.learning_rate".into(),
            kind: SettingKind::Float,
            min: Some(0.0),
            max: Some(1.0),
            choices: Vec::new(),
            value: "0.1".into(),
            about: String::new(),
        };
        assert!(check_value(&spec, "0.5").is_ok());
        assert!(check_value(&spec, "1.5")
            .unwrap_err()
            .contains("outside [0, 1]"));
        assert!(check_value(&spec, "NaN").is_err());
        assert!(check_value(&spec, "fast").is_err());
        let choice = SettingSpec {
            kind: SettingKind::Choice,
            choices: vec!["a".into(), "b".into()],
            ..spec
        };
        assert!(check_value(&choice, "b").is_ok());
        assert!(check_value(&choice, "c")
            .unwrap_err()
            .contains("one of a, b"));
    }

    #[test]
    fn a_layers_per_unit_alpha_beta_gamma_give_its_ranges() {
        let declaration: Declaration = serde_json::from_str(
            r#"{"protocol":1,"producer":"p","version":"1","epochs":1,"layers":[
                {"name":"in","units":2,"kind":"input"},{"name":"h","units":3,"kind":"tanh"},
                {"name":"out","units":2,"kind":"softmax"}]}"#,
        )
        .unwrap();
        let line = br#"{"layers":{"iteration":4,"layers":[{"name":"h","per_unit":{
            "alpha":[-0.5,0.25,null],"beta":[0.1,0.2,0.3],"gamma":[2,1.5,3]}}]}}"#;
        let TrainerEvent::Layers(l) = decode(line).unwrap() else {
            panic!("layers")
        };
        let stats = l.to_stats(&declaration).unwrap();
        assert_eq!(
            stats[0].alpha,
            Range {
                min: -0.5,
                max: 0.25
            }
        );
        assert_eq!(stats[0].beta, Range { min: 0.1, max: 0.3 });
        assert_eq!(stats[0].gamma, Range { min: 1.5, max: 3.0 });
        assert_eq!(stats[0].per_unit.gamma, vec![2.0, 1.5, 3.0]);
        assert!(stats[0].per_unit.alpha[2].is_nan());
        // A layer without them is untransformed: 0, 0, 1.
        let plain = br#"{"layers":{"iteration":4,"layers":[{"name":"h","per_unit":{"mean_out":[0,0,0]}}]}}"#;
        let TrainerEvent::Layers(l) = decode(plain).unwrap() else {
            panic!("layers")
        };
        let stats = l.to_stats(&declaration).unwrap();
        assert_eq!(stats[0].gamma, Range { min: 1.0, max: 1.0 });
        assert_eq!(stats[0].per_unit.alpha, vec![0.0; 3]);
    }

    #[test]
    fn junk_and_infinite_figures_are_refused_with_a_reason() {
        assert!(decode(b"{\"launch\":1}")
            .unwrap_err()
            .contains("not a trainer event"));
        assert!(decode(&[b'{', 0xff]).unwrap_err().contains("not UTF-8"));
        let line =
            br#"{"epoch":{"epoch":1,"iteration":5,"train_loss":0.5,"validation_loss":null}}"#;
        let TrainerEvent::Epoch(mut e) = decode(line).unwrap() else {
            panic!("an epoch")
        };
        assert!(e
            .to_metrics(Vec::new(), 0.0)
            .unwrap()
            .validation_loss
            .is_nan());
        e.train_loss = Some(f64::INFINITY);
        assert!(e
            .to_metrics(Vec::new(), 0.0)
            .unwrap_err()
            .contains("train_loss is inf"));
        let TrainerEvent::Epoch(e) = decode(
            br#"{"epoch":{"epoch":1,"iteration":5,"train_loss":0.5,"validation_loss":null,"validation_error":120}}"#,
        )
        .unwrap() else {
            panic!("an epoch")
        };
        assert!(e
            .to_metrics(Vec::new(), 0.0)
            .unwrap_err()
            .contains("[0, 100]"));
    }
}
