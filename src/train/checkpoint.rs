//! Checkpoints: the complete training state in a versioned binary file with a checksum,
//! written atomically (temporary file, fsync, rename) so that a crash never leaves a torn one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::trainer::TrainerState;
use crate::bounded::{self, FileKind, ReadError};
use crate::durable::write_atomic;
use crate::protocol::MetricsMark;

mod v4;

pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
const MAGIC: &[u8; 8] = b"LTMLPCKP";
/// Bumped whenever the payload's layout changes (4: the optimizer enum, normalised layers;
/// 5: the rollback's watch in the trainer state; 6: Muon and K-FAC in the optimizer enum, so
/// that an older ltmlp refuses a file it cannot read). Version 4 is still read (`v4`), and so
/// is 5: postcard numbers enum variants in order and the new ones came last, so a version-5
/// payload (SGD or Adam state, here and in the rollback's kept states) is a version-6 one.
pub const FORMAT_VERSION: u32 = 6;
/// The version whose payload decodes as today's.
const SAME_PAYLOAD_AS_CURRENT: u32 = 5;
/// magic + version + payload length + CRC-32.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// The trainer state in the run's precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnyState {
    F32(TrainerState<f32>),
    F64(TrainerState<f64>),
}

impl AnyState {
    /// The iteration the state was saved at.
    pub fn iteration(&self) -> u64 {
        match self {
            AnyState::F32(s) => s.iteration,
            AnyState::F64(s) => s.iteration,
        }
    }

    /// "f32" or "f64".
    pub fn precision_name(&self) -> &'static str {
        use crate::real::Real;
        match self {
            AnyState::F32(_) => f32::NAME,
            AnyState::F64(_) => f64::NAME,
        }
    }

    /// The shape of the saved network.
    pub fn topology(&self) -> &crate::net::Topology {
        match self {
            AnyState::F32(s) => &s.net.topology,
            AnyState::F64(s) => &s.net.topology,
        }
    }
}

/// A saved run position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `config.toml` as written at the start; a resume refuses a changed one.
    pub config_toml: String,
    /// Lines of `metrics.jsonl` written when the checkpoint was taken.
    pub metrics_lines: usize,
    /// Training wall time so far (pauses excluded).
    pub clock_seconds: f64,
    pub state: AnyState,
    /// Where `metrics.jsonl` stood.
    pub metrics_mark: Option<MetricsMark>,
    /// Fingerprint of the prepared data: a resume on other data is refused.
    pub data_fingerprint: Option<u32>,
}

/// Why a checkpoint cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not an ltmlp checkpoint (bad magic bytes)")]
    NotACheckpoint { path: PathBuf },
    #[error("{path}: checkpoint format version {found}, this ltmlp reads versions 4 to {FORMAT_VERSION}; resume with the ltmlp that wrote it (versions 2 and 3 come from ltmlp before the bn/ln variants and Adam; a later version from a newer ltmlp)")]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: truncated checkpoint: {found} of {expected} bytes")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: {found} bytes of payload where the header says {expected}: something was appended to the checkpoint")]
    TooLong {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: checksum mismatch (stored {stored:08x}, computed {computed:08x}): the checkpoint is damaged")]
    Checksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("{path}: damaged checkpoint payload: {reason}")]
    Payload { path: PathBuf, reason: String },
    #[error(
        "{path}: edited since the checkpoint was written ({changes}); restore it (the \
         checkpoint keeps the original) or start a new run"
    )]
    ConfigChanged { path: PathBuf, changes: String },
}

/// Refuses a run's `config.toml` (at `path`, holding `text`) that is no longer the
/// configuration its checkpoint was trained with (`saved`, the checkpoint's copy), naming the
/// settings that differ.
pub fn ensure_config_unchanged(
    path: &Path,
    text: &str,
    saved: &str,
) -> Result<(), CheckpointError> {
    if text == saved {
        return Ok(());
    }
    /// Differences named in the message; the rest are counted.
    const SHOWN: usize = 3;
    let (here, there) = (settings(text), settings(saved));
    let mut changes: Vec<String> = here
        .iter()
        .filter(|(k, v)| there.get(*k) != Some(v))
        .map(|(k, v)| match there.get(k) {
            Some(old) => format!("{k} = {v} here, {old} in the checkpoint"),
            None => format!("{k} = {v} added"),
        })
        .chain(
            there
                .iter()
                .filter(|(k, _)| !here.contains_key(*k))
                .map(|(k, v)| format!("{k} = {v} removed")),
        )
        .collect();
    let more = changes.len().saturating_sub(SHOWN);
    changes.truncate(SHOWN);
    if more > 0 {
        changes.push(format!("{more} more"));
    }
    if changes.is_empty() {
        changes.push("its text differs".into());
    }
    Err(CheckpointError::ConfigChanged {
        path: path.to_owned(),
        changes: changes.join("; "),
    })
}

/// A TOML text's settings as `section.key` → value (text that does not parse has none).
fn settings(text: &str) -> std::collections::BTreeMap<String, String> {
    fn walk(
        prefix: &str,
        table: &toml::Table,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        for (key, value) in table {
            let dotted = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(&dotted, inner, out),
                other => {
                    out.insert(dotted, other.to_string());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        walk("", &table, &mut out);
    }
    out
}

/// Encodes a checkpoint into its file bytes.
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, postcard::Error> {
    let payload = postcard::to_stdvec(checkpoint)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes file bytes; every kind of damage gives its own error.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let path = path.to_owned();
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(CheckpointError::NotACheckpoint { path });
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u32_at(8);
    if ![FORMAT_VERSION, SAME_PAYLOAD_AS_CURRENT, v4::VERSION].contains(&version) {
        return Err(CheckpointError::Version {
            path,
            found: version,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let expected = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 > expected {
        return Err(CheckpointError::TooLong {
            path,
            expected,
            found: payload.len() as u64,
        });
    }
    if (payload.len() as u64) < expected {
        return Err(CheckpointError::Truncated {
            path,
            expected,
            found: payload.len() as u64,
        });
    }
    let stored = u32_at(20);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(CheckpointError::Checksum {
            path,
            stored,
            computed,
        });
    }
    let damaged = |e: postcard::Error| CheckpointError::Payload {
        path: path.clone(),
        reason: e.to_string(),
    };
    if version == v4::VERSION {
        return v4::decode(payload).map_err(damaged);
    }
    postcard::from_bytes(payload).map_err(damaged)
}

/// Writes `dir/checkpoint.bin` atomically; a failed attempt leaves the previous one intact
/// and no temporary file behind.
pub fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf, CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = encode(checkpoint).map_err(|e| CheckpointError::Payload {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &bytes).map_err(|error| CheckpointError::Io {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}

/// Reads `dir/checkpoint.bin` through the bounded reader.
pub fn load(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    load_file(&dir.join(CHECKPOINT_FILE))
}

/// Reads the checkpoint file `path`.
pub fn load_file(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = bounded::read(path, FileKind::Checkpoint)?;
    decode(path, &bytes)
}
