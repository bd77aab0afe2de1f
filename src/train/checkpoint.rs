//! Checkpoints: the complete training state in a versioned binary file with a checksum,
//! written atomically (temporary file, fsync, rename) so that a crash never leaves a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::trainer::TrainerState;

pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
const MAGIC: &[u8; 8] = b"LTMLPCKP";
/// Bumped whenever the payload's layout changes; older files are refused with a message.
pub const FORMAT_VERSION: u32 = 2;
/// magic + version + payload length + CRC-32.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// The trainer state in the run's precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnyState {
    F32(TrainerState<f32>),
    F64(TrainerState<f64>),
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
}

/// Why a checkpoint cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an ltmlp checkpoint (bad magic bytes)")]
    NotACheckpoint { path: PathBuf },
    #[error("{path}: checkpoint format version {found}, this ltmlp reads version {FORMAT_VERSION}; resume with the ltmlp that wrote it")]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: truncated checkpoint: {found} of {expected} bytes")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: checksum mismatch (stored {stored:08x}, computed {computed:08x}): the checkpoint is damaged")]
    Checksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("{path}: damaged checkpoint payload: {reason}")]
    Payload { path: PathBuf, reason: String },
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
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            path,
            found: version,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let expected = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != expected {
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
    postcard::from_bytes(payload).map_err(|e| CheckpointError::Payload {
        path,
        reason: e.to_string(),
    })
}

/// Writes `dir/checkpoint.bin` atomically.
pub fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<PathBuf, CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| CheckpointError::Io { path: p, source }
    };
    let bytes = encode(checkpoint).map_err(|e| CheckpointError::Payload {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// Reads `dir/checkpoint.bin`.
pub fn load(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
        path: path.clone(),
        source,
    })?;
    decode(&path, &bytes)
}
