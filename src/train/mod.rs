//! Training: the optimizers, schedules, the transformation-update policy, the step-by-step
//! trainer, and the training thread with its Command / Event protocol.

pub mod adam;
pub mod checkpoint;
pub mod guard;
pub mod optimizer;
pub mod policy;
pub mod protocol;
pub mod rollback;
pub mod schedule;
pub mod session;
pub mod trainer;
pub mod tunables;

pub use protocol::{
    Command, EpochMetrics, Event, Progress, RunInfo, RunState, Steer, Summary, TransformEvent,
    Tunable, WallTime,
};
pub use session::{spawn, AnyData, Experiment, Session, SessionOptions};
pub use trainer::{Divergence, Trainer, TrainerState};
