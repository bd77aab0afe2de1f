//! Hosting runs: the run folder, its files and its control endpoint, for whoever trains.

pub mod foreign;
