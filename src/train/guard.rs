//! The γ guard: finds collapsed units (input and output spread both below the collapse
//! threshold) in each statistics probe and acts on them as `[guard]` says — warn, bound γ,
//! switch γ off for that unit, or re-initialise it — every action leaving the network's
//! function unchanged.

use rand::Rng;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::net::{Change, Network, Reparam};
use crate::real::Real;
use crate::stats::LayerStats;

pub use crate::preset::{GuardMode, GuardSection};

/// One unit the guard acted on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardAction {
    pub layer: usize,
    pub unit: usize,
}

/// Units (of layers carrying α β γ) whose probe statistics say collapsed, that `mode` has not
/// dealt with yet: a warned unit is warned again only after it recovered, a capped or switched
/// one is left alone.
pub fn collapsed_units<T: Real>(
    net: &Network<T>,
    layers: &[LayerStats],
    mode: GuardMode,
    cap: f64,
    warned: &mut Vec<Vec<bool>>,
) -> Vec<GuardAction> {
    warned.resize(net.transforms.len(), Vec::new());
    let mut out = Vec::new();
    for stats in layers {
        let Some(tr) = net.transforms.get(stats.layer).and_then(Option::as_ref) else {
            continue;
        };
        let seen = &mut warned[stats.layer];
        seen.resize(tr.gamma.len(), false);
        for (unit, &collapsed) in stats.per_unit.collapsed.iter().enumerate() {
            if unit >= tr.gamma.len() {
                break;
            }
            let pending = match mode {
                GuardMode::Off => false,
                GuardMode::Warn => collapsed && !seen[unit],
                GuardMode::Cap => collapsed && tr.gamma_max[unit].f64() > cap,
                GuardMode::UnitOff => collapsed && !tr.gamma_fixed[unit],
                GuardMode::Reinit => collapsed,
            };
            seen[unit] = collapsed;
            if pending {
                out.push(GuardAction {
                    layer: stats.layer,
                    unit,
                });
            }
        }
    }
    out
}

/// Applies `mode` to the units of `actions`, keeping the network function unchanged; returns
/// the record of what changed (a re-initialised unit is a `Change::Reset`: the optimizer
/// starts it without momentum or moments).
pub fn apply_to_network<T: Real>(
    net: &mut Network<T>,
    actions: &[GuardAction],
    mode: GuardMode,
    cap: f64,
    seed: u64,
) -> Reparam<T> {
    let mut record = Reparam::new();
    for a in actions {
        match mode {
            GuardMode::Off | GuardMode::Warn => {}
            GuardMode::Cap => record.extend(bound_gamma(net, *a, cap, false)),
            GuardMode::UnitOff => record.extend(bound_gamma(net, *a, 1.0, true)),
            GuardMode::Reinit => {
                reinitialise(net, *a, seed);
                record.push(Change::Reset {
                    layer: a.layer,
                    unit: a.unit,
                });
            }
        }
    }
    record
}

/// γ of one unit bounded by `limit` now and at every later re-estimation (`fixed`: held at
/// `limit` exactly), compensated on the outgoing weights.
fn bound_gamma<T: Real>(
    net: &mut Network<T>,
    a: GuardAction,
    limit: f64,
    fixed: bool,
) -> Reparam<T> {
    let Some(tr) = net.transforms[a.layer].as_mut() else {
        return Reparam::new();
    };
    tr.gamma_max[a.unit] = T::of(limit);
    tr.gamma_fixed[a.unit] |= fixed;
    let mut gamma = tr.gamma.clone();
    gamma[a.unit] = if fixed {
        T::of(limit)
    } else {
        gamma[a.unit].min(T::of(limit))
    };
    net.set_gamma(a.layer, &gamma)
}

/// Zeroes the unit's outgoing weights first (from then on nothing downstream sees it), then
/// draws its incoming weights from the layer below (Glorot-uniform, as at initialisation; its
/// shortcuts start at zero) and its bias, and makes its α β γ neutral.
fn reinitialise<T: Real>(net: &mut Network<T>, a: GuardAction, seed: u64) {
    let (l, j) = (a.layer, a.unit);
    let targets: Vec<usize> = net.topology.targets(l).collect();
    for m in targets {
        if let Some(w) = net.params.weights[m][l].as_mut() {
            w.column_mut(j).fill(T::zero());
        }
    }
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ ((l as u64) << 32) ^ j as u64);
    let sources: Vec<usize> = net.topology.sources(l).collect();
    for k in sources {
        if let Some(w) = net.params.weights[l][k].as_mut() {
            let mut row = w.row_mut(j);
            if k + 1 == l {
                let limit = (6.0 / (net.topology.size(l) + net.topology.size(k)) as f64).sqrt();
                row.mapv_inplace(|_| T::of(rng.random_range(-limit..limit)));
            } else {
                row.fill(T::zero());
            }
        }
    }
    net.params.biases[l][j] = T::of(rng.random_range(-0.5..0.5));
    if let Some(tr) = net.transforms[l].as_mut() {
        tr.alpha[j] = T::zero();
        tr.beta[j] = T::zero();
        tr.gamma[j] = T::one();
    }
}
