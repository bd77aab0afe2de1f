//! The normalisation baselines in f64: batch and layer normalisation's gradients against
//! central finite differences in training and evaluation mode (gains, shifts, weights and
//! biases), the statistics they normalise with, and batch normalisation's running averages.

use ltmlp::net::{Mode, Network, Norm, Params, Shortcuts, Target, Topology, UnitKind, Workspace};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn random_inputs(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.5..1.5))
}

/// 5-7-6-4 classifier, every parameter random: weights, biases, gains, shifts and (batch
/// normalisation) running averages far from the batch's own statistics.
fn net(norm: Norm, shortcuts: Shortcuts, seed: u64) -> Network<f64> {
    let kinds = [
        UnitKind::Input,
        UnitKind::Tanh,
        UnitKind::Tanh,
        UnitKind::Softmax,
    ];
    let topology = Topology::new(vec![5, 7, 6, 4], kinds.to_vec(), shortcuts, None)
        .unwrap()
        .with_norm(norm);
    let mut net = Network::<f64>::init(topology, seed);
    let mut rng = Pcg64Mcg::seed_from_u64(seed + 1);
    for (_, _, w) in net.params.blocks_mut() {
        w.mapv_inplace(|_| rng.random_range(-0.8..0.8));
    }
    for b in net.params.vectors_mut() {
        b.mapv_inplace(|_| rng.random_range(0.3..1.2));
    }
    for r in net.running.iter_mut().flatten() {
        r.mean.mapv_inplace(|_| rng.random_range(-0.5..0.5));
        r.var.mapv_inplace(|_| rng.random_range(0.5..2.0));
    }
    net
}

fn labels(rows: usize) -> Vec<u32> {
    (0..rows).map(|i| ((i * 7 + 3) % 4) as u32).collect()
}

fn forward(net: &Network<f64>, input: ArrayView2<f64>, ws: &mut Workspace<f64>, mode: Mode) {
    match mode {
        Mode::Train => net.forward_train(input, ws),
        Mode::Eval => net.forward(input, ws),
    }
}

/// Relative error ‖analytic − numeric‖ / ‖analytic‖ of the whole parameter gradient, and the
/// number of gain and shift entries (so that a test can tell they were checked).
fn gradient_error(net: &mut Network<f64>, mode: Mode) -> (f64, usize) {
    let input = random_inputs(11, 5, 7);
    let labels = labels(11);
    let target = Target::Labels(&labels);
    let mut ws = Workspace::new(&net.topology, input.nrows());
    let mut grads = Params::zeros(&net.topology);
    forward(net, input.view(), &mut ws, mode);
    net.output_delta(target, &mut ws);
    net.backward(&mut ws, &mut grads);
    let analytic = grads.to_flat(true);
    let base = net.params.to_flat(true);
    let h = 1e-5;
    let mut objective = |net: &Network<f64>| {
        forward(net, input.view(), &mut ws, mode);
        net.output_delta(target, &mut ws).objective / input.nrows() as f64
    };
    let mut numeric = vec![0.0; base.len()];
    for i in 0..base.len() {
        let mut p = base.clone();
        p[i] = base[i] + h;
        net.params.set_flat(&p, true);
        let plus = objective(net);
        p[i] = base[i] - h;
        net.params.set_flat(&p, true);
        let minus = objective(net);
        numeric[i] = (plus - minus) / (2.0 * h);
    }
    net.params.set_flat(&base, true);
    let diff: f64 = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, n)| (a - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let size: f64 = analytic.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(size > 1e-6, "gradient unexpectedly tiny: {size}");
    let norm_entries = net.params.gains.iter().map(|g| g.len()).sum::<usize>() * 2;
    (diff / size, norm_entries)
}

#[test]
fn batch_norm_gradients_match_finite_differences_in_both_modes() {
    for shortcuts in [Shortcuts::All, Shortcuts::Adjacent] {
        for mode in [Mode::Train, Mode::Eval] {
            let mut net = net(Norm::Batch, shortcuts, 3);
            let (err, entries) = gradient_error(&mut net, mode);
            assert_eq!(entries, 2 * (7 + 6));
            assert!(err < 1e-6, "{shortcuts:?} {mode:?}: relative error {err}");
        }
    }
}

#[test]
fn layer_norm_gradients_match_finite_differences_in_both_modes() {
    for shortcuts in [Shortcuts::All, Shortcuts::Adjacent] {
        for mode in [Mode::Train, Mode::Eval] {
            let mut net = net(Norm::Layer, shortcuts, 5);
            let (err, _) = gradient_error(&mut net, mode);
            assert!(err < 1e-6, "{shortcuts:?} {mode:?}: relative error {err}");
        }
    }
}

/// The training pass differentiates through the batch statistics: its gradient differs from
/// the one that treats them as constants (evaluation mode), so the test above can tell them
/// apart.
#[test]
fn batch_statistics_change_the_gradient() {
    let mut train = net(Norm::Batch, Shortcuts::All, 3);
    let mut eval = train.clone();
    for r in eval.running.iter_mut().flatten() {
        r.mean.fill(0.0);
        r.var.fill(1.0);
    }
    let input = random_inputs(11, 5, 7);
    let labels = labels(11);
    let grads_of = |net: &mut Network<f64>, mode| {
        let mut ws = Workspace::new(&net.topology, 11);
        let mut grads = Params::zeros(&net.topology);
        forward(net, input.view(), &mut ws, mode);
        net.output_delta(Target::Labels(&labels), &mut ws);
        net.backward(&mut ws, &mut grads);
        grads.to_flat(true)
    };
    let a = grads_of(&mut train, Mode::Train);
    let b = grads_of(&mut eval, Mode::Eval);
    let diff = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff > 1e-3, "largest difference {diff}");
}

/// Before gain and shift, batch norm gives every unit zero mean and unit (biased) variance over
/// the batch, layer norm every example over its units; the tanh input is gain·x̂ + shift.
#[test]
fn normalised_inputs_have_zero_mean_and_unit_variance() {
    let input = random_inputs(13, 5, 9);
    for norm in [Norm::Batch, Norm::Layer] {
        let mut net = net(norm, Shortcuts::All, 11);
        let mut ws = Workspace::new(&net.topology, 13);
        net.forward_train(input.view(), &mut ws);
        for l in 1..=2 {
            let buf = ws.norm[l].as_ref().unwrap();
            let xhat = buf.xhat.view();
            let axis = if norm == Norm::Batch { 0 } else { 1 };
            let mean = xhat.mean_axis(ndarray::Axis(axis)).unwrap();
            let var = xhat.var_axis(ndarray::Axis(axis), 0.0);
            assert!(mean.iter().all(|m| m.abs() < 1e-12), "{norm:?} mean {mean}");
            // ε = 1e-5 keeps the variance just under 1.
            assert!(
                var.iter().all(|v| (v - 1.0).abs() < 1e-3),
                "{norm:?} var {var}"
            );
            let x = ws.pre_activation(l);
            let expected = &xhat * &net.params.gains[l] + &net.params.shifts[l];
            let gap = (&x - &expected).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                gap < 1e-12,
                "{norm:?}: tanh input is not gain·x̂ + shift ({gap})"
            );
        }
        // Only batch normalisation keeps running averages.
        assert_eq!(
            net.running.iter().flatten().count(),
            if norm == Norm::Batch { 2 } else { 0 }
        );
        net.update_running(&ws);
    }
}

/// The running averages move 10 % of the way to the batch mean and unbiased variance per
/// training pass, and not at all after an evaluation pass; evaluating with running averages
/// equal to the batch's statistics reproduces the training pass.
#[test]
fn running_averages_follow_training_batches_only() {
    let input = random_inputs(13, 5, 9);
    let mut net = net(Norm::Batch, Shortcuts::All, 11);
    let before = net.running[1].clone().unwrap();
    let mut ws = Workspace::new(&net.topology, 13);
    net.forward(input.view(), &mut ws);
    net.update_running(&ws);
    assert_eq!(net.running[1].as_ref().unwrap(), &before);
    net.forward_train(input.view(), &mut ws);
    let buf = ws.norm[1].as_ref().unwrap();
    let (mean, var) = (buf.mean.clone(), buf.var.clone());
    let train_output = ws.output().to_owned();
    net.update_running(&ws);
    let after = net.running[1].as_ref().unwrap();
    for j in 0..7 {
        let m = before.mean[j] + 0.1 * (mean[j] - before.mean[j]);
        let v = before.var[j] + 0.1 * (var[j] * 13.0 / 12.0 - before.var[j]);
        assert!((after.mean[j] - m).abs() < 1e-12 && (after.var[j] - v).abs() < 1e-12);
    }
    // Running averages set to the batch's own (biased) statistics: evaluation equals training.
    for l in 1..=2 {
        let buf = ws.norm[l].as_ref().unwrap();
        let r = net.running[l].as_mut().unwrap();
        r.mean.assign(&ndarray::Array1::from(buf.mean.clone()));
        r.var.assign(&ndarray::Array1::from(buf.var.clone()));
    }
    let mut eval_ws = Workspace::new(&net.topology, 13);
    net.forward(input.view(), &mut eval_ws);
    let gap = (&eval_ws.output() - &train_output)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(gap < 1e-12, "evaluation differs from training by {gap}");
}
