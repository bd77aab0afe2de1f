//! The fast f32 path (approximate tanh, the matrix-multiply backend, the fused SGD step) against
//! the exact f64 path: the same small network trained a few steps in both stays within a stated
//! tolerance, and the fused update equals the separate gradient-then-update.

use ltmlp::net::{
    Flags, GammaControl, GammaForm, Moments, Network, Params, Settings, Shortcuts, Target,
    Topology, UnitKind, Workspace,
};
use ltmlp::real::Real;
use ltmlp::train::optimizer::Sgd;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Largest difference allowed between an f32 and an f64 parameter after STEPS steps: f32
/// rounding (about 6e-8 relative) and the tanh approximation (3e-7 absolute) grow through a few
/// products and updates, staying far below the size of one learning step.
const TOLERANCE: f64 = 2e-4;
const STEPS: usize = 10;

fn topology() -> Topology {
    Topology::new(
        vec![20, 16, 12, 5],
        vec![
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Softmax,
        ],
        Shortcuts::All,
        None,
    )
    .unwrap()
}

fn batch(seed: u64) -> (Array2<f64>, Vec<u32>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let x = Array2::from_shape_fn((32, 20), |_| rng.random_range(-1.0..1.0));
    let labels = (0..32).map(|i| (i % 5) as u32).collect();
    (x, labels)
}

/// Trains `net` for STEPS minibatches with α β γ re-estimated on each, as the trainer does.
fn train<T: Real>(mut net: Network<T>) -> Network<T> {
    let settings = Settings {
        flags: Flags {
            alpha: true,
            beta: true,
            gamma: true,
        },
        gamma_form: GammaForm::Product,
        gamma_epsilon: 1e-4,
        gamma_control: GammaControl::Off,
        gamma_bound: f64::INFINITY,
    };
    let mut ws = Workspace::new(&net.topology, 32);
    let mut sgd = Sgd::new(&net.topology);
    let mut moments = Moments::new(&net);
    for step in 0..STEPS {
        let (x, labels) = batch(step as u64);
        let x = x.mapv(T::of);
        net.forward(x.view(), &mut ws);
        moments.reset();
        moments.accumulate(&ws);
        net.reestimate(&moments, &settings).unwrap();
        net.refresh_activations(&mut ws);
        net.output_delta(Target::Labels(&labels), &mut ws);
        net.backpropagate(&mut ws);
        sgd.step_fused(&mut net, &ws, 0.1, (0.9, 0.9), 1e-4, None);
    }
    net
}

fn max_difference(a: &Params<f64>, b: &Params<f64>) -> f64 {
    a.to_flat(true)
        .iter()
        .zip(b.to_flat(true))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn f32_training_tracks_f64_within_tolerance() {
    let start = Network::<f64>::init(topology(), 3);
    let exact = train(start.clone());
    let fast = train(start.cast::<f32>()).cast::<f64>();
    let moved = max_difference(&exact.params, &start.params);
    let diff = max_difference(&exact.params, &fast.params);
    assert!(
        moved > 1e-2,
        "training moved the parameters by only {moved}"
    );
    assert!(diff < TOLERANCE, "f32 and f64 parameters differ by {diff}");
    let (x, _) = batch(99);
    let mut ws64 = Workspace::new(&exact.topology, 32);
    let mut ws32 = Workspace::new(&exact.topology, 32);
    exact.forward(x.view(), &mut ws64);
    fast.cast::<f32>()
        .forward(x.mapv(|v| v as f32).view(), &mut ws32);
    let out_diff = ws64
        .output()
        .iter()
        .zip(ws32.output().iter())
        .map(|(a, b)| (a - f64::from(*b)).abs())
        .fold(0.0, f64::max);
    assert!(out_diff < TOLERANCE, "outputs differ by {out_diff}");
}

#[test]
fn fused_update_equals_gradient_then_update() {
    let net = Network::<f64>::init(topology(), 5);
    let (x, labels) = batch(7);
    let mut ws = Workspace::new(&net.topology, 32);
    let (mut fused, mut separate) = (net.clone(), net);
    let (mut sgd_fused, mut sgd_separate) = (Sgd::new(&fused.topology), Sgd::new(&fused.topology));
    let mut grads = Params::zeros(&fused.topology);
    for _ in 0..3 {
        fused.forward(x.view(), &mut ws);
        fused.output_delta(Target::Labels(&labels), &mut ws);
        fused.backpropagate(&mut ws);
        sgd_fused.step_fused(&mut fused, &ws, 0.1, (0.9, 0.9), 1e-3, None);

        separate.forward(x.view(), &mut ws);
        separate.output_delta(Target::Labels(&labels), &mut ws);
        separate.backward(&mut ws, &mut grads);
        sgd_separate.step(&mut separate.params, &grads, 0.1, (0.9, 0.9), 1e-3);
    }
    let diff = max_difference(&fused.params, &separate.params);
    assert!(diff < 1e-12, "fused and separate updates differ by {diff}");
}
