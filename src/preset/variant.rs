//! The variants a preset can run, as one type: each one's name, α β γ switches,
//! normalisation, label and colour in one place. Names are parsed once, where a preset is
//! resolved or a command line read; a name a foreign trainer declares stays its own text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::net::{Flags, Norm};

/// One way to train the network: the papers' three (no transformation, α β, α β γ) and the
/// modern baselines, batch and layer normalisation of the plain tanh network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    None,
    Ab,
    Abg,
    Bn,
    Ln,
}

/// Every variant's name, in the order of [`Variant::ALL`].
pub const VARIANTS: [&str; Variant::ALL.len()] = names(Variant::ALL);
/// The variants the papers compare: what `compare` and `sweep` run when none are named.
pub const PAPER_VARIANTS: [&str; Variant::PAPER.len()] = names(Variant::PAPER);

const fn names<const N: usize>(variants: [Variant; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = variants[i].name();
        i += 1;
    }
    out
}

impl Variant {
    /// Every variant, in the order reports and legends list them.
    pub const ALL: [Variant; 5] = [
        Variant::None,
        Variant::Ab,
        Variant::Abg,
        Variant::Bn,
        Variant::Ln,
    ];
    /// The variants the papers compare.
    pub const PAPER: [Variant; 3] = [Variant::None, Variant::Ab, Variant::Abg];

    /// The name in presets, on the command line and in run folders.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::None => "none",
            Variant::Ab => "ab",
            Variant::Abg => "abg",
            Variant::Bn => "bn",
            Variant::Ln => "ln",
        }
    }

    /// The variant named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The α/β/γ switches a run of this variant starts with.
    pub fn flags(self) -> Flags {
        let (alpha, beta, gamma) = match self {
            Variant::None | Variant::Bn | Variant::Ln => (false, false, false),
            Variant::Ab => (true, true, false),
            Variant::Abg => (true, true, true),
        };
        Flags { alpha, beta, gamma }
    }

    /// The normalisation of the hidden layers.
    pub fn norm(self) -> Norm {
        match self {
            Variant::Bn => Norm::Batch,
            Variant::Ln => Norm::Layer,
            Variant::None | Variant::Ab | Variant::Abg => Norm::None,
        }
    }

    /// The name in plot legends.
    pub fn label(self) -> &'static str {
        match self {
            Variant::None => "none",
            Variant::Ab => "α β",
            Variant::Abg => "α β γ",
            Variant::Bn => "batch norm",
            Variant::Ln => "layer norm",
        }
    }

    /// The colour of this variant's lines in plots, as RGB.
    pub fn colour(self) -> (u8, u8, u8) {
        match self {
            Variant::None => (200, 40, 40),
            Variant::Ab => (40, 90, 200),
            Variant::Abg => (30, 150, 60),
            Variant::Bn => (150, 70, 170),
            Variant::Ln => (220, 130, 20),
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A variant equals its name, so that names read from files and command lines compare with it.
impl PartialEq<&str> for Variant {
    fn eq(&self, name: &&str) -> bool {
        self.name() == *name
    }
}

/// A name that is no variant, with the accepted ones.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown variant `{}`; choose one of {}", .0, VARIANTS.join(", "))]
pub struct UnknownVariant(pub String);

impl FromStr for Variant {
    type Err = UnknownVariant;
    fn from_str(name: &str) -> Result<Variant, UnknownVariant> {
        Variant::from_name(name).ok_or_else(|| UnknownVariant(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialise_as_the_name() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
            assert_eq!(toml::Value::try_from(v).unwrap().as_str(), Some(v.name()));
        }
        assert_eq!(VARIANTS, ["none", "ab", "abg", "bn", "ln"]);
        assert_eq!(PAPER_VARIANTS, ["none", "ab", "abg"]);
        assert!("abc".parse::<Variant>().is_err());
    }

    #[test]
    fn only_the_papers_variants_transform_and_only_the_baselines_normalise() {
        for v in Variant::ALL {
            assert_eq!(
                v.flags().any(),
                matches!(v, Variant::Ab | Variant::Abg),
                "{v}"
            );
            assert_eq!(
                v.norm() != Norm::None,
                matches!(v, Variant::Bn | Variant::Ln),
                "{v}"
            );
        }
    }

    #[test]
    fn every_variant_has_its_own_label_and_colour() {
        for (i, a) in Variant::ALL.iter().enumerate() {
            for b in &Variant::ALL[..i] {
                assert_ne!(a.label(), b.label());
                assert_ne!(a.colour(), b.colour());
            }
        }
    }
}
