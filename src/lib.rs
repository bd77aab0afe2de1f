//! ltmlp: a terminal lab for multi-layer perceptrons whose hidden units use the transformed
//! nonlinearities of Raiko, Valpola & LeCun (2012) and Vatanen et al. (2013).

pub mod data;
pub mod net;
pub mod real;
