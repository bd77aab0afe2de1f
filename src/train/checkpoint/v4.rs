//! Version 4 of the checkpoint payload (before the rollback's watch joined the trainer state),
//! read so that runs checkpointed by an older ltmlp still resume. Its layout is frozen here:
//! postcard is not self-describing, so a field added to the current types cannot simply be
//! missing from an old payload.

use ndarray::Array2;
use rand_pcg::Pcg64Mcg;
use serde::Deserialize;

use super::{AnyState, Checkpoint};
use crate::data::BatchOrder;
use crate::net::{Flags, Network};
use crate::protocol::{MetricsMark, TransformEvent};
use crate::real::Real;
use crate::train::optimizer::Optimizer;
use crate::train::rollback::Rollback;
use crate::train::trainer::TrainerState;

pub const VERSION: u32 = 4;

#[derive(Deserialize)]
#[serde(bound = "")]
struct StateV4<T: Real> {
    net: Network<T>,
    optimizer: Optimizer<T>,
    order: BatchOrder,
    noise_rng: Pcg64Mcg,
    flags: Flags,
    rate_scale: f64,
    momentum_override: Option<f64>,
    iteration: u64,
    epoch: usize,
    last_validation_error: Option<f64>,
    pending_events: Vec<TransformEvent>,
    train_seconds: f64,
    reestimate_seconds: f64,
    examples_seen: u64,
    batch_input: Array2<T>,
}

impl<T: Real> From<StateV4<T>> for TrainerState<T> {
    /// A version-4 run kept no watch: it starts afresh, as that ltmlp's resume did.
    fn from(s: StateV4<T>) -> Self {
        TrainerState {
            net: s.net,
            optimizer: s.optimizer,
            order: s.order,
            noise_rng: s.noise_rng,
            flags: s.flags,
            rate_scale: s.rate_scale,
            momentum_override: s.momentum_override,
            iteration: s.iteration,
            epoch: s.epoch,
            last_validation_error: s.last_validation_error,
            pending_events: s.pending_events,
            train_seconds: s.train_seconds,
            reestimate_seconds: s.reestimate_seconds,
            examples_seen: s.examples_seen,
            batch_input: s.batch_input,
            rollback: Rollback::default(),
        }
    }
}

#[derive(Deserialize)]
enum AnyStateV4 {
    F32(StateV4<f32>),
    F64(StateV4<f64>),
}

#[derive(Deserialize)]
struct CheckpointV4 {
    config_toml: String,
    metrics_lines: usize,
    clock_seconds: f64,
    state: AnyStateV4,
    metrics_mark: Option<MetricsMark>,
    data_fingerprint: Option<u32>,
}

/// Decodes a version-4 payload into today's checkpoint.
pub fn decode(payload: &[u8]) -> Result<Checkpoint, postcard::Error> {
    let old: CheckpointV4 = postcard::from_bytes(payload)?;
    Ok(Checkpoint {
        config_toml: old.config_toml,
        metrics_lines: old.metrics_lines,
        clock_seconds: old.clock_seconds,
        state: match old.state {
            AnyStateV4::F32(s) => AnyState::F32(s.into()),
            AnyStateV4::F64(s) => AnyState::F64(s.into()),
        },
        metrics_mark: old.metrics_mark,
        data_fingerprint: old.data_fingerprint,
    })
}
