//! The shape of a network: layer sizes, unit kinds, and which layer feeds which (all-to-all
//! shortcuts, adjacent only, and the autoencoder rule that nothing skips the bottleneck).

use serde::{Deserialize, Serialize};

use super::norm::Norm;

/// What a layer's units compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// The input layer (no computation).
    Input,
    /// Transformed tanh: `γ·(tanh x + α·x + β)`.
    Tanh,
    /// Identity (an autoencoder bottleneck or a regression output).
    Linear,
    /// Softmax over the layer (a classifier output).
    Softmax,
}

/// Which earlier layers feed each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcuts {
    /// Every layer receives every earlier layer (the papers' model).
    All,
    /// Every layer receives only the layer below (a plain MLP).
    Adjacent,
}

/// Why a topology cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TopologyError {
    #[error("a network needs an input and an output layer; got {0} layers")]
    TooFewLayers(usize),
    #[error("layer {layer} has size 0; every layer needs at least one unit")]
    EmptyLayer { layer: usize },
    #[error("bottleneck layer {layer} is not a hidden layer (hidden layers are 1..={last})")]
    BadBottleneck { layer: usize, last: usize },
}

/// Layer sizes, unit kinds and the connection mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    sizes: Vec<usize>,
    kinds: Vec<UnitKind>,
    /// `connected[l][k]` for k < l: whether W[l][k] exists.
    connected: Vec<Vec<bool>>,
    /// How hidden tanh layers normalise their pre-activations (the `bn` and `ln` baselines).
    #[serde(default)]
    norm: Norm,
}

impl Topology {
    /// Builds a topology. `kinds[0]` must be `Input`; `bottleneck` removes every connection
    /// from a layer before it to a layer after it.
    pub fn new(
        sizes: Vec<usize>,
        kinds: Vec<UnitKind>,
        shortcuts: Shortcuts,
        bottleneck: Option<usize>,
    ) -> Result<Self, TopologyError> {
        if sizes.len() < 2 || kinds.len() != sizes.len() {
            return Err(TopologyError::TooFewLayers(sizes.len()));
        }
        if let Some(layer) = sizes.iter().position(|&n| n == 0) {
            return Err(TopologyError::EmptyLayer { layer });
        }
        let depth = sizes.len() - 1;
        if let Some(b) = bottleneck {
            if b == 0 || b >= depth {
                return Err(TopologyError::BadBottleneck {
                    layer: b,
                    last: depth - 1,
                });
            }
        }
        let connected = (0..=depth)
            .map(|l| {
                (0..l)
                    .map(|k| {
                        let allowed = match shortcuts {
                            Shortcuts::All => true,
                            Shortcuts::Adjacent => k + 1 == l,
                        };
                        let skips_bottleneck = bottleneck.is_some_and(|b| k < b && l > b);
                        allowed && !skips_bottleneck
                    })
                    .collect()
            })
            .collect();
        Ok(Topology {
            sizes,
            kinds,
            connected,
            norm: Norm::None,
        })
    }

    /// The same topology with every hidden tanh layer normalised by `norm`.
    pub fn with_norm(mut self, norm: Norm) -> Self {
        self.norm = norm;
        self
    }

    /// The normalisation of the network's hidden tanh layers.
    pub fn norm(&self) -> Norm {
        self.norm
    }

    /// The normalisation of layer l's pre-activations (only hidden tanh layers are normalised).
    pub fn norm_of(&self, layer: usize) -> Norm {
        let hidden = layer > 0 && layer < self.depth() && self.kinds[layer] == UnitKind::Tanh;
        if hidden {
            self.norm
        } else {
            Norm::None
        }
    }

    /// Index of the output layer (L).
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    pub fn size(&self, layer: usize) -> usize {
        self.sizes[layer]
    }

    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    pub fn kind(&self, layer: usize) -> UnitKind {
        self.kinds[layer]
    }

    /// Whether layer `to` receives layer `from` directly (requires from < to).
    pub fn connects(&self, to: usize, from: usize) -> bool {
        from < to && to < self.sizes.len() && self.connected[to][from]
    }

    /// Layers that feed `to`, in increasing order.
    pub fn sources(&self, to: usize) -> impl Iterator<Item = usize> + '_ {
        (0..to).filter(move |&k| self.connected[to][k])
    }

    /// Layers that `from` feeds, in increasing order.
    pub fn targets(&self, from: usize) -> impl Iterator<Item = usize> + '_ {
        (from + 1..self.sizes.len()).filter(move |&m| self.connected[m][from])
    }

    /// Hidden layers whose units carry α, β, γ.
    pub fn transformed_layers(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.depth()).filter(|&l| self.kinds[l] == UnitKind::Tanh)
    }

    /// Hidden layers (1..L).
    pub fn hidden_layers(&self) -> std::ops::Range<usize> {
        1..self.depth()
    }

    /// Number of weights (excluding biases).
    pub fn weight_count(&self) -> usize {
        (1..=self.depth())
            .map(|l| {
                self.sources(l)
                    .map(|k| self.sizes[l] * self.sizes[k])
                    .sum::<usize>()
            })
            .sum()
    }

    /// `784-800[tanh]-800[tanh]-10[softmax]`-style description.
    pub fn describe(&self) -> String {
        self.sizes
            .iter()
            .zip(&self.kinds)
            .map(|(n, kind)| match kind {
                UnitKind::Input | UnitKind::Tanh => n.to_string(),
                UnitKind::Linear => format!("{n}(linear)"),
                UnitKind::Softmax => format!("{n}(softmax)"),
            })
            .collect::<Vec<_>>()
            .join("-")
            + match self.norm {
                Norm::None => "",
                Norm::Batch => " batch-normalised",
                Norm::Layer => " layer-normalised",
            }
    }
}
