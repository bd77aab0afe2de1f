//! K-FAC (src/train/kfac.rs): its step is the dense Kronecker-factored solve of each layer's
//! Fisher block on presets/tiny.toml; after a β or γ change an undamped step equals, mapped
//! through the compensation, the step taken without it (f64, synthetic data whose factors are
//! well conditioned); after an α change the difference is measured and printed.

use std::sync::Arc;

use faer::linalg::solvers::Solve;
use ltmlp::data::{self, DataSource};
use ltmlp::net::{Network, Reparam, Shortcuts, Target, Topology, UnitKind, Workspace};
use ltmlp::preset::{AdamSettings, KfacSettings, MuonSettings, PresetFile};
use ltmlp::train::kfac::Kfac;
use ltmlp::train::optimizer::{FollowRules, Optimize, Optimizer, StepSettings};
use ltmlp::train::{AnyData, Experiment, Trainer};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

const ROWS: usize = 300;

fn settings(damping: f64, update_every: usize) -> StepSettings {
    StepSettings {
        rate: 0.1,
        momenta: (0.5, 0.5),
        decay: 0.0,
        divide_by_gamma: None,
        adam: AdamSettings {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            decay: 0.0,
            decoupled: false,
        },
        muon: MuonSettings {
            rate_ratio: 1.0,
            momentum: 0.95,
            nesterov: true,
        },
        kfac: KfacSettings {
            damping,
            stats_every: 1,
            update_every,
            decay: 0.9,
        },
    }
}

/// 5-6-4-5 with all shortcuts, tanh hidden layers carrying α β γ, a linear output (its errors'
/// factor is full rank, unlike a softmax's), random weights.
fn network() -> Network<f64> {
    let topology = Topology::new(
        vec![5, 6, 4, 5],
        vec![
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Linear,
        ],
        Shortcuts::All,
        None,
    )
    .unwrap();
    let mut net = Network::<f64>::init(topology, 3);
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    for (_, _, w) in net.params.blocks_mut() {
        w.mapv_inplace(|_| rng.random_range(-0.6..0.6));
    }
    for b in net.params.biases.iter_mut() {
        b.mapv_inplace(|_| rng.random_range(-0.5..0.5));
    }
    net
}

fn batch(seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let x = Array2::from_shape_fn((ROWS, 5), |_| rng.random_range(-1.5..1.5));
    let y = Array2::from_shape_fn((ROWS, 5), |_| rng.random_range(-1.0..1.0));
    (x, y)
}

fn step(net: &mut Network<f64>, kfac: &mut Kfac<f64>, seed: u64, s: &StepSettings) {
    let mut ws = Workspace::new(&net.topology, ROWS);
    let (x, y) = batch(seed);
    net.forward_train(x.view(), &mut ws);
    net.output_delta(Target::Values(y.view()), &mut ws);
    net.backpropagate(&mut ws);
    kfac.step(net, &ws, s);
}

/// The largest difference of any weight or bias, over the largest weight or bias.
fn relative_difference(a: &Network<f64>, b: &Network<f64>) -> f64 {
    let mut diff = 0.0f64;
    let mut size = 0.0f64;
    for ((_, _, wa), (_, _, wb)) in a.params.blocks().zip(b.params.blocks()) {
        for (x, y) in wa.iter().zip(wb) {
            diff = diff.max((x - y).abs());
            size = size.max(x.abs());
        }
    }
    for (ba, bb) in a.params.biases.iter().zip(&b.params.biases) {
        for (x, y) in ba.iter().zip(bb) {
            diff = diff.max((x - y).abs());
            size = size.max(x.abs());
        }
    }
    diff / size
}

/// A change of layer l's α, β or γ to new values (the same on both networks).
#[derive(Clone, Copy, Debug)]
enum Switch {
    Alpha(usize),
    Beta(usize),
    Gamma(usize),
}

fn apply(net: &mut Network<f64>, switch: Switch) -> Reparam<f64> {
    let value = |l: usize, base: f64| {
        Array1::from_shape_fn(net.topology.size(l), |j| base + 0.1 * j as f64)
    };
    match switch {
        Switch::Alpha(l) => {
            let beta = net.transforms[l].as_ref().unwrap().beta.clone();
            let alpha = value(l, -0.3);
            net.set_alpha_beta(l, &alpha, &beta).unwrap()
        }
        Switch::Beta(l) => {
            let alpha = net.transforms[l].as_ref().unwrap().alpha.clone();
            let beta = value(l, -0.2);
            net.set_alpha_beta(l, &alpha, &beta).unwrap()
        }
        Switch::Gamma(l) => {
            let gamma = value(l, 1.4);
            net.set_gamma(l, &gamma)
        }
    }
}

/// How far the step after `switch` is from the step without it, mapped through the same
/// compensation: (a) switch, follow, step; (b) step, switch.
fn mapped_step_difference(switch: Switch, s: &StepSettings) -> f64 {
    let mut net = network();
    let mut kfac = Kfac::new(&net.topology);
    // A β already in place, so that a later α change also moves the bias column.
    let (alpha, beta) = (Array1::zeros(6), Array1::from_elem(6, 0.15));
    net.set_alpha_beta(1, &alpha, &beta).unwrap();
    for seed in 0..4 {
        step(&mut net, &mut kfac, seed, s);
    }
    let (mut a, mut kfac_a) = (net.clone(), kfac.clone());
    let reparam = apply(&mut a, switch);
    assert!(!reparam.is_empty());
    let rules = FollowRules {
        momentum_follows_gamma: false,
    };
    kfac_a.follow(&a, &reparam, rules);
    step(&mut a, &mut kfac_a, 10, s);
    let (mut b, mut kfac_b) = (net, kfac);
    step(&mut b, &mut kfac_b, 10, s);
    apply(&mut b, switch);
    relative_difference(&a, &b)
}

/// Undamped, with the inverses made again from the mapped factors at the step, and damped
/// with the mapped inverses of an earlier step: either way the step follows β and γ to 1e-10.
#[test]
fn after_a_beta_or_gamma_change_the_step_is_the_mapped_step() {
    for s in [settings(0.0, 1), settings(1e-2, 1000)] {
        for switch in [
            Switch::Beta(1),
            Switch::Beta(2),
            Switch::Gamma(1),
            Switch::Gamma(2),
        ] {
            let diff = mapped_step_difference(switch, &s);
            assert!(
                diff < 1e-10,
                "{switch:?}, damping {}: {diff:e}",
                s.kfac.damping
            );
        }
    }
}

/// α changes the slope of its layer: the errors' factors of that layer and those below are
/// restarted from the next minibatch, and the step differs from the mapped one (printed; the
/// figure in docs/second-order.md).
#[test]
fn after_an_alpha_change_the_step_differs_by_a_measured_amount() {
    let s = settings(0.0, 1);
    for switch in [Switch::Alpha(1), Switch::Alpha(2)] {
        let diff = mapped_step_difference(switch, &s);
        eprintln!("{switch:?}: relative difference of the step after α {diff:e}");
        assert!(diff.is_finite());
        assert!(diff > 1e-10, "α is outside the invariance: {diff:e}");
    }
}

/// On presets/tiny.toml (49-16-16-10, all shortcuts), each layer's preconditioned step equals
/// the dense solve (A ⊗ G + damping) vec(U) = vec(∇) of its Kronecker-factored Fisher block.
#[test]
fn the_step_is_the_dense_kronecker_factored_solve_on_tiny() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/presets/tiny.toml");
    let file = PresetFile::read(std::path::Path::new(path)).unwrap();
    let overrides = [
        "train.optimizer=\"kfac\"".to_string(),
        "train.kfac_stats_every=1".to_string(),
        "train.kfac_update_every=1".to_string(),
        "train.learning_rate=0.1".to_string(),
    ];
    let resolved = file.resolve(Some("ab"), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F64(data) = exp.data else {
        panic!("tiny is f64")
    };
    let net = Network::<f64>::init(exp.topology.clone(), 1);
    let mut t = Trainer::new(&resolved, Arc::clone(&data), net);
    for _ in 0..5 {
        t.step().unwrap();
    }
    let Optimizer::Kfac(kfac) = t.snapshot().optimizer else {
        panic!("kfac expected")
    };
    let damping = resolved.preset.train.kfac_settings().damping.sqrt();
    let mut rng = Pcg64Mcg::seed_from_u64(9);
    for (l, layer) in kfac.layers.iter().enumerate() {
        let Some(layer) = layer else { continue };
        let (n, d) = layer.velocity.dim();
        let gradient = Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0..1.0));
        let step = kfac.precondition(l, gradient.view());
        // vec column-major: (A ⊗ G)[i + n·j, i' + n·j'] = A[j, j']·G[i, i'].
        let m = faer::Mat::<f64>::from_fn(n * d, n * d, |r, c| {
            let (i, j, i2, j2) = (r % n, r / n, c % n, c / n);
            let a = layer.a[(j, j2)] + if j == j2 { damping } else { 0.0 };
            let g = layer.g[(i, i2)] + if i == i2 { damping } else { 0.0 };
            a * g
        });
        let rhs = faer::Mat::<f64>::from_fn(n * d, 1, |r, _| gradient[(r % n, r / n)]);
        let solved = m.llt(faer::Side::Lower).unwrap().solve(&rhs);
        let mut worst = 0.0f64;
        let mut size = 0.0f64;
        for r in 0..n * d {
            worst = worst.max((solved[(r, 0)] - step[(r % n, r / n)]).abs());
            size = size.max(solved[(r, 0)].abs());
        }
        assert!(
            worst <= 1e-8 * size,
            "layer {l}: {worst:e} of {size:e} off the dense solve"
        );
    }
}
