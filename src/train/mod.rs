//! Training: the optimizers, schedules, the transformation-update policy, the step-by-step
//! trainer, and the training thread that speaks the Command / Event protocol (`crate::protocol`).

pub mod adam;
pub mod checkpoint;
pub mod guard;
pub mod kfac;
pub mod muon;
pub mod optimizer;
pub mod policy;
pub mod rollback;
pub mod schedule;
pub mod session;
pub mod trace;
pub mod trainer;
pub mod tunables;

pub use crate::protocol::{
    Command, EpochMetrics, Event, Progress, RunInfo, RunState, Steer, Summary, TransformEvent,
    Tunable, WallTime,
};
pub use session::{AnyData, Experiment, SessionOptions};
pub use trainer::{Divergence, Trainer, TrainerState};
