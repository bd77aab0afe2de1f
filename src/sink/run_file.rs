//! `run.json`: a run's language-neutral header (docs/protocol.md, "The run folder"), written atomically when
//! the run starts and completed when it ends. It names the producer, the network (named layers
//! with unit counts and kinds, so that any architecture fits), the data, the length of the run
//! and every setting as a flat `key → JSON value` map, so that `ls`, `watch`, `report` and the
//! comparisons read a run without parsing `config.toml` as this build's preset (which refuses
//! keys it does not know). Folders written before it existed are read through `config.toml`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{write_atomic, write_error, SinkError};
use crate::bounded::{self, FileKind};
use crate::net::{Topology, UnitKind};
use crate::protocol::{RunInfo, RunState};

pub const RUN_FILE: &str = "run.json";
/// The version of `run.json`'s layout; a reader refuses a newer one it cannot know.
pub const RUN_FORMAT: u32 = 1;

/// Who wrote the run: `ltmlp` and its version, or another trainer's name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Producer {
    pub name: String,
    pub version: String,
}

impl Producer {
    pub fn this_build() -> Self {
        Producer {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One layer of the network: its name, how many units it has and what they compute
/// (`input`, `tanh` — the transformed tanh of the method —, `linear`, `softmax`, or another
/// trainer's own word).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub units: usize,
    pub kind: String,
}

/// The layers of a native network: `input`, `hidden1` … `hiddenN`, `output`.
pub fn layers_of(topology: &Topology) -> Vec<Layer> {
    let last = topology.depth();
    (0..=last)
        .map(|l| Layer {
            name: match l {
                0 => "input".to_string(),
                l if l == last => "output".to_string(),
                l => format!("hidden{l}"),
            },
            units: topology.size(l),
            kind: match topology.kind(l) {
                UnitKind::Input => "input",
                UnitKind::Tanh => "tanh",
                UnitKind::Linear => "linear",
                UnitKind::Softmax => "softmax",
            }
            .to_string(),
        })
        .collect()
}

/// The contents of `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub format: u32,
    pub producer: Producer,
    /// The run's fixed facts, as its `started` event gives them.
    #[serde(flatten)]
    pub info: RunInfo,
    pub layers: Vec<Layer>,
    /// Every setting, as dotted keys (`train.learning_rate`) and their JSON values; for a
    /// native run, the resolved preset the run started with (`config.toml`).
    pub settings: BTreeMap<String, serde_json::Value>,
    /// `running` while the run goes on (or was killed), then its end state.
    pub state: RunState,
    /// Why the run ended, if it says (`null` while running and for a plain finish).
    pub reason: Option<String>,
    /// RFC 3339 UTC times; `ended` is `null` until the run ends.
    pub started: String,
    pub ended: Option<String>,
}

/// The current time as RFC 3339 UTC, to the second.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl RunHeader {
    /// A header for a run starting now.
    pub fn new(
        info: RunInfo,
        layers: Vec<Layer>,
        settings: BTreeMap<String, serde_json::Value>,
    ) -> Self {
        RunHeader {
            format: RUN_FORMAT,
            producer: Producer::this_build(),
            info,
            layers,
            settings,
            state: RunState::Running,
            reason: None,
            started: now(),
            ended: None,
        }
    }

    /// The run goes on (a resume): running again, not ended.
    pub fn restart(&mut self) {
        self.state = RunState::Running;
        self.reason = None;
        self.ended = None;
    }

    /// The run ended now, in `state`, for `reason`.
    pub fn end(&mut self, state: RunState, reason: Option<String>) {
        self.state = state;
        self.reason = reason;
        self.ended = Some(now());
    }
}

/// Settings as text, strings bare (the form the comparisons group by).
pub fn settings_text(settings: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    settings
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// Flattens a serialisable settings tree to dotted keys and JSON leaves.
pub fn flat_settings(tree: &impl Serialize) -> BTreeMap<String, serde_json::Value> {
    fn walk(prefix: &str, value: serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf);
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(value) = serde_json::to_value(tree) {
        walk("", value, &mut out);
    }
    out
}

/// Writes `run.json` into `dir`, atomically.
pub fn write(dir: &Path, header: &RunHeader) -> Result<(), SinkError> {
    let path = dir.join(RUN_FILE);
    let text = serde_json::to_string_pretty(header).map_err(|e| SinkError::Write {
        path: path.clone(),
        error: std::io::Error::other(e),
    })?;
    write_atomic(&path, (text + "\n").as_bytes()).map_err(write_error(&path))
}

/// Reads `dir`'s `run.json`: `Ok(None)` when the folder has none (written before it
/// existed), an error naming the file and the way out when it cannot be used.
pub fn read(dir: &Path) -> Result<Option<RunHeader>, String> {
    let path = dir.join(RUN_FILE);
    let text = match bounded::read_text(&path, FileKind::Summary) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format = serde_json::from_str::<Format>(&text).map_err(|e| {
        format!(
            "{}: not a run header ({e}); restore the file",
            path.display()
        )
    })?;
    if format.format > RUN_FORMAT {
        return Err(format!(
            "{}: format {} is newer than this ltmlp reads ({RUN_FORMAT}); read it with a newer \
             ltmlp",
            path.display(),
            format.format
        ));
    }
    serde_json::from_str(&text).map(Some).map_err(|e| {
        format!(
            "{}: not a run header ({e}); restore the file",
            path.display()
        )
    })
}
