//! The variants a preset can run: their names, α β γ switches and normalisation.

use crate::net::{Flags, Norm};

/// Every variant: the papers' three (no transformation, α β, α β γ) and the modern
/// baselines, batch and layer normalisation of the plain tanh network.
pub const VARIANTS: [&str; 5] = ["none", "ab", "abg", "bn", "ln"];
/// The variants the papers compare: what `compare` and `sweep` run when none are named.
pub const PAPER_VARIANTS: [&str; 3] = ["none", "ab", "abg"];

/// α/β/γ switches of a variant name.
pub fn flags_of(variant: &str) -> Option<Flags> {
    match variant {
        "none" => Some(Flags::NONE),
        "ab" => Some(Flags {
            alpha: true,
            beta: true,
            gamma: false,
        }),
        "abg" => Some(Flags {
            alpha: true,
            beta: true,
            gamma: true,
        }),
        "bn" | "ln" => Some(Flags::NONE),
        _ => None,
    }
}

/// The normalisation of a variant's hidden layers.
pub fn norm_of(variant: &str) -> Norm {
    match variant {
        "bn" => Norm::Batch,
        "ln" => Norm::Layer,
        _ => Norm::None,
    }
}
