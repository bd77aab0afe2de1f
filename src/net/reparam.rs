//! The record of a function-preserving reparametrisation: which units' α, β or γ changed and by
//! what, per unit (never a copy of the weights), so that an optimizer can carry its own state
//! across the change (`crate::train::optimizer`).

use crate::real::Real;

/// One change of a layer's transformation, compensated on the later layers' weights.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// γ of layer `layer` went from `before` to `after` (per unit): every outgoing weight column
    /// j was multiplied by before_j / after_j.
    Rescale {
        layer: usize,
        before: Vec<T>,
        after: Vec<T>,
    },
    /// α and β of layer `layer` changed by γ⊙Δα and γ⊙Δβ (old minus new, per unit, as
    /// `Network::set_alpha_beta` defines them): each later bias b_m grew by
    /// W[m][l]·(γΔα⊙b_l + γΔβ) and, where α changed, each shortcut W[m][k] by
    /// W[m][l]·diag(γΔα)·W[l][k]. `bias` is layer l's bias b_l at the change.
    Shift {
        layer: usize,
        d_alpha: Vec<T>,
        d_beta: Vec<T>,
        bias: Vec<T>,
    },
    /// Unit `unit` of layer `layer` was drawn afresh: its outgoing weights zeroed, its
    /// incoming weights and bias new, its α β γ neutral.
    Reset { layer: usize, unit: usize },
}

/// The changes of one re-estimation, switch or guard action, in the order they were made.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reparam<T> {
    pub changes: Vec<Change<T>>,
}

impl<T: Real> Reparam<T> {
    pub fn new() -> Self {
        Reparam {
            changes: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Adds a change. Two rescalings of the same layer in a row become one, from the first
    /// `before` to the last `after`: a follower then rescales by the whole change's ratio,
    /// computed once (bit for bit what it would compute from γ before and after).
    pub fn push(&mut self, change: Change<T>) {
        if let (
            Some(Change::Rescale {
                layer: last, after, ..
            }),
            Change::Rescale {
                layer,
                after: newer,
                ..
            },
        ) = (self.changes.last_mut(), &change)
        {
            if *last == *layer {
                after.clone_from(newer);
                return;
            }
        }
        self.changes.push(change);
    }

    /// Appends every change of `other`.
    pub fn extend(&mut self, other: Reparam<T>) {
        for change in other.changes {
            self.push(change);
        }
    }

    /// The γ rescalings, one per layer, each from γ before the first change to γ after the
    /// last: (layer, before, after).
    pub fn rescalings(&self) -> Vec<(usize, Vec<T>, Vec<T>)> {
        let mut out: Vec<(usize, Vec<T>, Vec<T>)> = Vec::new();
        for change in &self.changes {
            let Change::Rescale {
                layer,
                before,
                after,
            } = change
            else {
                continue;
            };
            match out.iter_mut().find(|(l, _, _)| l == layer) {
                Some((_, _, last)) => last.clone_from(after),
                None => out.push((*layer, before.clone(), after.clone())),
            }
        }
        out
    }

    /// The re-initialised units, as (layer, unit).
    pub fn resets(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.changes.iter().filter_map(|c| match c {
            Change::Reset { layer, unit } => Some((*layer, *unit)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two γ changes of one layer compose into one, from the first γ to the last; another
    /// layer's change in between keeps them apart in the list but `rescalings` joins them.
    #[test]
    fn rescalings_of_one_layer_compose() {
        let mut r = Reparam::<f64>::new();
        r.push(Change::Rescale {
            layer: 1,
            before: vec![1.0, 2.0],
            after: vec![3.0, 2.0],
        });
        r.push(Change::Rescale {
            layer: 1,
            before: vec![3.0, 2.0],
            after: vec![3.0, 5.0],
        });
        assert_eq!(r.changes.len(), 1);
        r.push(Change::Reset { layer: 2, unit: 0 });
        r.push(Change::Rescale {
            layer: 1,
            before: vec![3.0, 5.0],
            after: vec![4.0, 5.0],
        });
        assert_eq!(
            r.rescalings(),
            vec![(1, vec![1.0, 2.0], vec![4.0, 5.0])],
            "one ratio per layer, from the first γ to the last"
        );
        assert_eq!(r.resets().collect::<Vec<_>>(), vec![(2, 0)]);
    }
}
