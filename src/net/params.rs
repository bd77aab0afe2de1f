//! A network's trainable parameters, W[l][k], b[l] and (normalised layers only) the
//! normalisation's gain and shift, in a shape shared by the weights, their gradients and the
//! optimizer's buffers.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::norm::Norm;
use super::topology::Topology;
use crate::real::Real;

/// Weight blocks `weights[l][k]` (n_l × n_k, present where layer k feeds layer l) and biases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params<T> {
    pub weights: Vec<Vec<Option<Array2<T>>>>,
    pub biases: Vec<Array1<T>>,
    /// Per-unit gain and shift of each normalised layer (empty elsewhere).
    pub gains: Vec<Array1<T>>,
    pub shifts: Vec<Array1<T>>,
}

impl<T: Real> Params<T> {
    /// All-zero parameters for a topology (also the shape of gradients and velocities).
    pub fn zeros(topology: &Topology) -> Self {
        let depth = topology.depth();
        let weights = (0..=depth)
            .map(|l| {
                (0..l)
                    .map(|k| {
                        topology
                            .connects(l, k)
                            .then(|| Array2::zeros((topology.size(l), topology.size(k))))
                    })
                    .collect()
            })
            .collect();
        let biases = (0..=depth)
            .map(|l| Array1::zeros(if l == 0 { 0 } else { topology.size(l) }))
            .collect();
        let per_norm_unit = |l: usize| {
            let n = if topology.norm_of(l) == Norm::None {
                0
            } else {
                topology.size(l)
            };
            Array1::zeros(n)
        };
        Params {
            weights,
            biases,
            gains: (0..=depth).map(per_norm_unit).collect(),
            shifts: (0..=depth).map(per_norm_unit).collect(),
        }
    }

    /// The block W[l][k], if layer k feeds layer l.
    pub fn weight(&self, l: usize, k: usize) -> Option<&Array2<T>> {
        self.weights.get(l)?.get(k)?.as_ref()
    }

    /// Every present block as (l, k, W[l][k]), in a fixed order.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, usize, &Array2<T>)> {
        self.weights.iter().enumerate().flat_map(|(l, row)| {
            row.iter()
                .enumerate()
                .filter_map(move |(k, w)| w.as_ref().map(|w| (l, k, w)))
        })
    }

    /// Every present block, mutably.
    pub fn blocks_mut(&mut self) -> impl Iterator<Item = (usize, usize, &mut Array2<T>)> {
        self.weights.iter_mut().enumerate().flat_map(|(l, row)| {
            row.iter_mut()
                .enumerate()
                .filter_map(move |(k, w)| w.as_mut().map(|w| (l, k, w)))
        })
    }

    /// Every per-unit vector (biases, then gains, then shifts), in a fixed order.
    pub fn vectors(&self) -> impl Iterator<Item = &Array1<T>> {
        self.biases.iter().chain(&self.gains).chain(&self.shifts)
    }

    /// Every per-unit vector, mutably, in the order of [`Params::vectors`].
    pub fn vectors_mut(&mut self) -> impl Iterator<Item = &mut Array1<T>> {
        self.biases
            .iter_mut()
            .chain(self.gains.iter_mut())
            .chain(self.shifts.iter_mut())
    }

    /// Whether every parameter is finite.
    pub fn all_finite(&self) -> bool {
        self.blocks()
            .all(|(_, _, w)| w.iter().all(|v| v.is_finite()))
            && self.vectors().all(|b| b.iter().all(|v| v.is_finite()))
    }

    /// Number of scalars (weights, then biases, gains and shifts if asked).
    pub fn len(&self, with_biases: bool) -> usize {
        let weights: usize = self.blocks().map(|(_, _, w)| w.len()).sum();
        let biases: usize = self.vectors().map(|b| b.len()).sum();
        weights + if with_biases { biases } else { 0 }
    }

    /// All weights in block order (then all biases, gains and shifts, if asked) as one f64
    /// vector.
    pub fn to_flat(&self, with_biases: bool) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.len(with_biases));
        for (_, _, w) in self.blocks() {
            out.extend(w.iter().map(|v| v.f64()));
        }
        if with_biases {
            for b in self.vectors() {
                out.extend(b.iter().map(|v| v.f64()));
            }
        }
        out
    }

    /// The inverse of [`Params::to_flat`]; `flat` must have exactly `len(with_biases)` values.
    pub fn set_flat(&mut self, flat: &[f64], with_biases: bool) {
        let mut values = flat.iter();
        for (_, _, w) in self.blocks_mut() {
            for (dst, src) in w.iter_mut().zip(values.by_ref()) {
                *dst = T::of(*src);
            }
        }
        if with_biases {
            for b in self.vectors_mut() {
                for (dst, src) in b.iter_mut().zip(values.by_ref()) {
                    *dst = T::of(*src);
                }
            }
        }
    }

    /// Converts to another float type.
    pub fn cast<U: Real>(&self) -> Params<U> {
        Params {
            weights: self
                .weights
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|w| w.as_ref().map(|w| w.mapv(|v| U::of(v.f64()))))
                        .collect()
                })
                .collect(),
            biases: cast_all(&self.biases),
            gains: cast_all(&self.gains),
            shifts: cast_all(&self.shifts),
        }
    }
}

fn cast_all<T: Real, U: Real>(vectors: &[Array1<T>]) -> Vec<Array1<U>> {
    vectors.iter().map(|b| b.mapv(|v| U::of(v.f64()))).collect()
}
