//! The network: topology, parameters, transformed units, forward/backward passes and the
//! function-preserving re-estimation of α, β, γ.

pub mod kernels;
pub mod network;
pub mod norm;
pub mod params;
pub mod reparam;
pub mod topology;
pub mod transform;

pub use network::{BatchLoss, Network, Target, Transform, Workspace};
pub use norm::{Mode, Norm};
pub use params::Params;
pub use reparam::{Change, Reparam};
pub use topology::{Shortcuts, Topology, TopologyError, UnitKind};
pub use transform::{Flags, GammaControl, GammaForm, Moments, Param, Settings, TransformError};
