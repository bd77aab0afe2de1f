//! ltmlp: a terminal lab for multi-layer perceptrons whose hidden units use the transformed
//! nonlinearities of Raiko, Valpola & LeCun (2012) and Vatanen et al. (2013).

pub mod analysis;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod confusion;
pub mod data;
pub mod eval;
pub mod export;
pub mod headless;
pub mod nan_json;
pub mod net;
pub mod preset;
pub mod real;
pub mod remote;
pub mod sink;
pub mod stats;
pub mod sweep;
pub mod train;
pub mod tui;
