//! Runs that outlive their terminal: every run folder's control endpoint (a Unix socket), the
//! hub that serves it, the clients that attach to it, `ltmlp ls`, and detached runs.
//! docs/protocol.md describes the wire protocol.

pub mod background;
pub mod client;
pub mod ctl;
pub mod endpoint;
pub mod hub;
pub mod ls;
pub mod snapshot;
pub mod wire;
