//! The full-screen terminal UI, a client of a run's control endpoint: the trainer (in its own
//! process) owns the network and the data; the dashboard owns the terminal; they talk only
//! through the endpoint's events and commands (`crate::remote`).
//!
//! - [`app`]: the dashboard state, fed by events and keys (no terminal needed)
//! - [`health`]: the alerts of the banner
//! - [`keymap`]: the key table behind the keys, the footer and the help popup
//! - [`view`]: the layout, and one module per panel
//! - [`terminal`]: the event loop and terminal set-up / restore

pub mod app;
pub mod compare;
pub mod confusion;
pub mod footer;
pub mod health;
pub mod help;
pub mod keymap;
pub mod layers;
pub mod log;
pub mod loss;
pub mod settings;
pub mod status;
pub mod terminal;
pub mod transforms;
pub mod units;
pub mod view;

pub use app::{Action, App};
pub use terminal::{attach, loading, Mode, Outcome};
