//! Adam (Kingma & Ba 2015) with bias correction and, as an option, decoupled weight decay
//! (AdamW): the optimizer most networks are trained with today, as a baseline for plain SGD.

use ndarray::Zip;
use serde::{Deserialize, Serialize};

use super::optimizer::{clear_unit, shortcut_scale, FollowRules, Optimize, StepSettings};
use crate::net::{Network, Params, Reparam, Topology, Workspace};
use crate::preset::OptimizerKind;
use crate::real::Real;

pub use crate::preset::AdamSettings;

/// Running first and second moments of every parameter's gradient, and the step count their
/// bias correction needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam<T> {
    pub first: Params<T>,
    pub second: Params<T>,
    pub steps: u64,
    /// The gradient of the step, made at the first one (not part of the state).
    #[serde(skip)]
    grads: Scratch<T>,
}

/// A buffer reused from step to step whose contents never outlive one: not saved, not
/// compared, not copied with the state it sits in.
#[derive(Debug)]
pub struct Scratch<T>(pub Option<Params<T>>);

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch(None)
    }
}

impl<T> Clone for Scratch<T> {
    fn clone(&self) -> Self {
        Scratch(None)
    }
}

impl<T> PartialEq for Scratch<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T: Real> Optimize<T> for Adam<T> {
    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adam
    }

    fn step(&mut self, net: &mut Network<T>, ws: &Workspace<T>, settings: &StepSettings) {
        let mut grads = self
            .grads
            .0
            .take()
            .unwrap_or_else(|| Params::zeros(&net.topology));
        net.gradients(ws, &mut grads);
        let adam = AdamSettings {
            decay: settings.decay,
            ..settings.adam
        };
        Adam::step(self, &mut net.params, &grads, settings.rate, adam);
        self.grads.0 = Some(grads);
    }

    /// Adam cannot follow α β γ (refused before any is switched on: its per-weight second
    /// moments have no transformation that matches the compensation); a re-initialised unit
    /// starts without moments.
    fn follow(&mut self, _net: &Network<T>, reparam: &Reparam<T>, _rules: FollowRules) {
        let resets: Vec<(usize, usize)> = reparam.resets().collect();
        self.reset_units(&resets);
    }

    fn reset_units(&mut self, units: &[(usize, usize)]) {
        for &unit in units {
            clear_unit(&mut self.first, unit);
            clear_unit(&mut self.second, unit);
        }
    }
}

impl<T: Real> Adam<T> {
    pub fn new(topology: &Topology) -> Self {
        Adam {
            first: Params::zeros(topology),
            second: Params::zeros(topology),
            steps: 0,
            grads: Scratch::default(),
        }
    }

    /// One update of `params` from `grads` at rate η; a shortcut block from layer k to layer l
    /// takes η·2^−(l−k−1), as under SGD. Gains and shifts of normalised layers are not decayed.
    pub fn step(&mut self, params: &mut Params<T>, grads: &Params<T>, rate: f64, s: AdamSettings) {
        self.steps += 1;
        let t = self.steps as i32;
        let correct1 = 1.0 - s.beta1.powi(t);
        let correct2 = 1.0 - s.beta2.powi(t);
        // η·m̂/(√v̂ + ε) = η/(1−β1ᵗ)·m/(√(v/(1−β2ᵗ)) + ε).
        let (b1, b2) = (T::of(s.beta1), T::of(s.beta2));
        let (inv_c2, eps) = (T::of(1.0 / correct2), T::of(s.epsilon));
        let update = |w: &mut T, m: &mut T, v: &mut T, g: T, eta: T, lambda: T| {
            let g = if s.decoupled { g } else { g + lambda * *w };
            *m = b1 * *m + (T::one() - b1) * g;
            *v = b2 * *v + (T::one() - b2) * g * g;
            let step = eta / T::of(correct1) * *m / ((*v * inv_c2).sqrt() + eps);
            if s.decoupled {
                *w -= eta * lambda * *w;
            }
            *w -= step;
        };
        let lambda = T::of(s.decay);
        let moments = self.first.blocks_mut().zip(self.second.blocks_mut());
        for ((l, k, w), ((_, _, m), (_, _, v))) in params.blocks_mut().zip(moments) {
            let Some(g) = grads.weight(l, k) else {
                continue;
            };
            let eta = T::of(rate * shortcut_scale(l, k));
            Zip::from(w)
                .and(m)
                .and(v)
                .and(g)
                .for_each(|w, m, v, &g| update(w, m, v, g, eta, lambda));
        }
        let eta = T::of(rate);
        let vectors = params
            .vectors_mut()
            .zip(self.first.vectors_mut().zip(self.second.vectors_mut()))
            .zip(grads.vectors());
        let biases = grads.biases.len();
        for (i, ((w, (m, v)), g)) in vectors.enumerate() {
            let lambda = if i < biases { lambda } else { T::zero() };
            Zip::from(w)
                .and(m)
                .and(v)
                .and(g)
                .for_each(|w, m, v, &g| update(w, m, v, g, eta, lambda));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Shortcuts, UnitKind};

    fn topology() -> Topology {
        Topology::new(
            vec![3, 2, 2],
            vec![UnitKind::Input, UnitKind::Tanh, UnitKind::Softmax],
            Shortcuts::All,
            None,
        )
        .unwrap()
    }

    fn constant_grads(topology: &Topology, value: f64) -> Params<f64> {
        let mut grads = Params::<f64>::zeros(topology);
        for (_, _, g) in grads.blocks_mut() {
            g.fill(value);
        }
        for b in grads.vectors_mut() {
            b.fill(value);
        }
        grads
    }

    /// With bias correction, a constant gradient g moves every weight by η·g/(|g| + ε) at every
    /// step from the first (the step's size does not depend on the gradient's scale).
    #[test]
    fn bias_correction_makes_the_first_steps_full_size() {
        let topology = topology();
        let settings = AdamSettings {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            decay: 0.0,
            decoupled: false,
        };
        for scale in [1e-3, 1.0, 1e3] {
            let mut params = Params::<f64>::zeros(&topology);
            let grads = constant_grads(&topology, scale);
            let mut adam = Adam::new(&topology);
            for step in 1..=3 {
                adam.step(&mut params, &grads, 0.01, settings);
                let w = params.weight(1, 0).unwrap()[[0, 0]];
                assert!((w + 0.01 * step as f64).abs() < 1e-6, "scale {scale}: {w}");
                // The shortcut from the input to the output takes half the rate.
                let s = params.weight(2, 0).unwrap()[[0, 0]];
                assert!((s + 0.005 * step as f64).abs() < 1e-6, "shortcut {s}");
            }
            assert_eq!(adam.steps, 3);
        }
    }

    /// L2 decay enters the moments; decoupled decay shrinks the weight outside them: with a
    /// zero gradient L2 still takes a full Adam step towards zero, decoupled only η·λ·w.
    #[test]
    fn decoupled_decay_acts_on_the_weights_not_the_moments() {
        let topology = topology();
        let grads = Params::<f64>::zeros(&topology);
        let run = |decoupled| {
            let mut params = Params::<f64>::zeros(&topology);
            for (_, _, w) in params.blocks_mut() {
                w.fill(2.0);
            }
            let mut adam = Adam::new(&topology);
            let settings = AdamSettings {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                decay: 0.1,
                decoupled,
            };
            adam.step(&mut params, &grads, 0.01, settings);
            (
                params.weight(1, 0).unwrap()[[0, 0]],
                adam.first.weight(1, 0).unwrap()[[0, 0]],
            )
        };
        let (l2, l2_first) = run(false);
        assert!((l2 - (2.0 - 0.01)).abs() < 1e-6, "L2: {l2}");
        assert!(l2_first > 0.0);
        let (decoupled, decoupled_first) = run(true);
        assert!(
            (decoupled - (2.0 - 0.01 * 0.1 * 2.0)).abs() < 1e-12,
            "AdamW: {decoupled}"
        );
        assert_eq!(decoupled_first, 0.0);
    }
}
