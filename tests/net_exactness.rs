//! Exactness of the engine in f64: gradients against central finite differences, and the
//! function preservation and target statistics of every re-estimation and switch.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use approx::assert_relative_eq;
use ltmlp::net::{
    Flags, GammaControl, GammaForm, Moments, Network, Param, Params, Settings, Shortcuts, Target,
    Topology, UnitKind, Workspace,
};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn random_inputs(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.5..1.5))
}

/// A small network with every weight, shortcuts included, random and non-zero.
fn random_net(
    sizes: &[usize],
    kinds: &[UnitKind],
    shortcuts: Shortcuts,
    bottleneck: Option<usize>,
    seed: u64,
) -> Network<f64> {
    let topology = Topology::new(sizes.to_vec(), kinds.to_vec(), shortcuts, bottleneck).unwrap();
    let mut net = Network::<f64>::init(topology, seed);
    let mut rng = Pcg64Mcg::seed_from_u64(seed + 1);
    for (_, _, w) in net.params.blocks_mut() {
        w.mapv_inplace(|_| rng.random_range(-0.6..0.6));
    }
    for b in net.params.biases.iter_mut() {
        b.mapv_inplace(|_| rng.random_range(-0.5..0.5));
    }
    net
}

fn classifier(shortcuts: Shortcuts, seed: u64) -> Network<f64> {
    random_net(
        &[5, 7, 6, 4],
        &[
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Softmax,
        ],
        shortcuts,
        None,
        seed,
    )
}

/// Autoencoder-shaped: tanh encoder, linear bottleneck, tanh decoder, linear output.
fn autoencoder(seed: u64) -> Network<f64> {
    random_net(
        &[6, 7, 5, 3, 5, 7, 6],
        &[
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Linear,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Linear,
        ],
        Shortcuts::All,
        Some(3),
        seed,
    )
}

fn labels(rows: usize, classes: usize) -> Vec<u32> {
    (0..rows).map(|i| ((i * 7 + 3) % classes) as u32).collect()
}

fn objective(
    net: &Network<f64>,
    input: ArrayView2<f64>,
    target: Target<f64>,
    ws: &mut Workspace<f64>,
) -> f64 {
    net.forward(input, ws);
    net.output_delta(target, ws).objective / input.nrows() as f64
}

/// Relative error ‖analytic − numeric‖ / ‖analytic‖ of the full parameter gradient.
fn gradient_error(net: &mut Network<f64>, input: ArrayView2<f64>, target: Target<f64>) -> f64 {
    let mut ws = Workspace::new(&net.topology, input.nrows());
    let mut grads = Params::zeros(&net.topology);
    net.forward(input, &mut ws);
    net.output_delta(target, &mut ws);
    net.backward(&mut ws, &mut grads);
    let analytic = grads.to_flat(true);
    let base = net.params.to_flat(true);
    let h = 1e-5;
    let mut numeric = vec![0.0; base.len()];
    for i in 0..base.len() {
        let mut p = base.clone();
        p[i] = base[i] + h;
        net.params.set_flat(&p, true);
        let plus = objective(net, input, target, &mut ws);
        p[i] = base[i] - h;
        net.params.set_flat(&p, true);
        let minus = objective(net, input, target, &mut ws);
        numeric[i] = (plus - minus) / (2.0 * h);
    }
    net.params.set_flat(&base, true);
    let diff: f64 = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, n)| (a - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = analytic.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(norm > 1e-6, "gradient unexpectedly tiny: {norm}");
    diff / norm
}

fn transformed(net: &mut Network<f64>, input: ArrayView2<f64>, flags: Flags) {
    let mut ws = Workspace::new(&net.topology, input.nrows());
    let moments = Moments::of_batch(net, input, &mut ws);
    net.reestimate(&moments, &settings(flags)).unwrap();
}

fn settings(flags: Flags) -> Settings {
    Settings {
        flags,
        gamma_form: GammaForm::Product,
        gamma_epsilon: 1e-4,
        gamma_control: GammaControl::Off,
        gamma_bound: f64::INFINITY,
    }
}

const ALL: Flags = Flags {
    alpha: true,
    beta: true,
    gamma: true,
};
const AB: Flags = Flags {
    alpha: true,
    beta: true,
    gamma: false,
};

#[test]
fn gradient_matches_finite_differences_softmax_all_shortcuts() {
    let input = random_inputs(9, 5, 1);
    let labels = labels(9, 4);
    let mut net = classifier(Shortcuts::All, 2);
    // Non-trivial α, β, γ so that the transformed derivative is exercised.
    transformed(&mut net, input.view(), ALL);
    let err = gradient_error(&mut net, input.view(), Target::Labels(&labels));
    assert!(err < 1e-6, "relative gradient error {err}");
}

#[test]
fn gradient_matches_finite_differences_softmax_adjacent() {
    let input = random_inputs(9, 5, 3);
    let labels = labels(9, 4);
    let mut net = classifier(Shortcuts::Adjacent, 4);
    transformed(
        &mut net,
        input.view(),
        Flags {
            alpha: false,
            beta: true,
            gamma: true,
        },
    );
    let err = gradient_error(&mut net, input.view(), Target::Labels(&labels));
    assert!(err < 1e-6, "relative gradient error {err}");
}

#[test]
fn gradient_matches_finite_differences_linear_units() {
    let input = random_inputs(8, 6, 5);
    let mut net = autoencoder(6);
    transformed(&mut net, input.view(), ALL);
    let err = gradient_error(&mut net, input.view(), Target::Values(input.view()));
    assert!(err < 1e-6, "relative gradient error {err}");
}

fn max_output_change(before: &Network<f64>, after: &Network<f64>, input: ArrayView2<f64>) -> f64 {
    let mut ws = Workspace::new(&before.topology, input.nrows());
    before.forward(input, &mut ws);
    let a = ws.output().to_owned();
    after.forward(input, &mut ws);
    (&a - &ws.output()).iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Moments of the net on `input`, and the per-unit mean of f and f' computed directly.
fn unit_means(
    net: &Network<f64>,
    input: ArrayView2<f64>,
    l: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut ws = Workspace::new(&net.topology, input.nrows());
    net.forward(input, &mut ws);
    let tr = net.transforms[l].as_ref().unwrap();
    let y = ws.activation(l);
    let t = ws.tanh(l);
    let n = input.nrows() as f64;
    let units = y.ncols();
    let mut mean_f = vec![0.0; units];
    let mut mean_df = vec![0.0; units];
    let mut power = vec![0.0; units];
    for j in 0..units {
        let (mut f2, mut df2) = (0.0, 0.0);
        for i in 0..input.nrows() {
            let df = tr.gamma[j] * (1.0 - t[[i, j]] * t[[i, j]] + tr.alpha[j]);
            mean_f[j] += y[[i, j]] / n;
            mean_df[j] += df / n;
            f2 += y[[i, j]] * y[[i, j]] / n;
            df2 += df * df / n;
        }
        power[j] = f2 * df2;
    }
    (mean_f, mean_df, power)
}

#[test]
fn reestimation_preserves_the_function_and_centres_every_unit() {
    let input = random_inputs(50, 5, 7);
    for (flags, seed) in [
        (AB, 8),
        (ALL, 9),
        (
            Flags {
                alpha: true,
                beta: false,
                gamma: false,
            },
            10,
        ),
    ] {
        let mut net = classifier(Shortcuts::All, seed);
        // Start from non-neutral transforms so that compensation has real work to do.
        transformed(&mut net, random_inputs(30, 5, seed + 100).view(), ALL);
        let before = net.clone();
        transformed(&mut net, input.view(), flags);
        let change = max_output_change(&before, &net, input.view());
        assert!(change < 1e-10, "{flags:?}: output changed by {change}");
        assert_ne!(
            before.params, net.params,
            "compensation must have changed the weights"
        );
        for l in [1, 2] {
            let (mean_f, mean_df, power) = unit_means(&net, input.view(), l);
            for j in 0..mean_f.len() {
                assert!(
                    mean_df[j].abs() < 1e-10,
                    "layer {l} unit {j}: mean f' = {}",
                    mean_df[j]
                );
                if flags.beta {
                    assert!(
                        mean_f[j].abs() < 1e-10,
                        "layer {l} unit {j}: mean f = {}",
                        mean_f[j]
                    );
                }
                if flags.gamma {
                    // E[f²]E[f'²] = m2·d2/(m2·d2 + ε) < 1; the exact value is checked below.
                    assert!(
                        power[j] < 1.0 && power[j] > 0.0,
                        "layer {l} unit {j}: power {}",
                        power[j]
                    );
                }
            }
        }
    }
}

#[test]
fn gamma_sets_the_product_of_output_and_slope_power() {
    let input = random_inputs(40, 5, 11);
    let mut net = classifier(Shortcuts::All, 12);
    transformed(&mut net, input.view(), ALL);
    let mut ws = Workspace::new(&net.topology, 40);
    let moments = Moments::of_batch(&net, input.view(), &mut ws);
    for l in [1, 2] {
        let (_, _, power) = unit_means(&net, input.view(), l);
        let tr = net.transforms[l].as_ref().unwrap();
        let m = moments.layers[l].as_ref().unwrap();
        for j in 0..power.len() {
            let (m2, d2) = m.output_and_slope_power(j, tr.alpha[j], tr.beta[j]);
            let expected = m2 * d2 / (m2 * d2 + 1e-4);
            assert_relative_eq!(power[j] / tr.gamma[j].powi(4), m2 * d2, max_relative = 1e-9);
            assert_relative_eq!(power[j], expected, max_relative = 1e-9);
        }
    }
}

#[test]
fn rms_gamma_gives_unit_output_power() {
    let input = random_inputs(40, 5, 13);
    let mut net = classifier(Shortcuts::All, 14);
    let mut ws = Workspace::new(&net.topology, 40);
    let moments = Moments::of_batch(&net, input.view(), &mut ws);
    let rms = Settings {
        flags: ALL,
        gamma_form: GammaForm::Rms,
        gamma_epsilon: 0.0,
        gamma_control: GammaControl::Off,
        gamma_bound: f64::INFINITY,
    };
    let before = net.clone();
    net.reestimate(&moments, &rms).unwrap();
    assert!(max_output_change(&before, &net, input.view()) < 1e-10);
    net.forward(input.view(), &mut ws);
    for j in 0..7 {
        let power: f64 = ws
            .activation(1)
            .column(j)
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            / 40.0;
        assert_relative_eq!(power, 1.0, max_relative = 1e-9);
    }
}

#[test]
fn switching_each_parameter_off_and_on_preserves_the_function() {
    let input = random_inputs(30, 5, 15);
    let mut net = classifier(Shortcuts::All, 16);
    transformed(&mut net, input.view(), ALL);
    for which in Param::ALL {
        let before = net.clone();
        net.neutralise(which).unwrap();
        assert!(
            max_output_change(&before, &net, input.view()) < 1e-10,
            "{which:?} off"
        );
        for l in [1, 2] {
            let tr = net.transforms[l].as_ref().unwrap();
            let values = match which {
                Param::Alpha => &tr.alpha,
                Param::Beta => &tr.beta,
                Param::Gamma => &tr.gamma,
            };
            let neutral = if which == Param::Gamma { 1.0 } else { 0.0 };
            assert!(
                values.iter().all(|&v| v == neutral),
                "{which:?} not neutral"
            );
        }
        let before = net.clone();
        transformed(&mut net, input.view(), ALL);
        assert!(
            max_output_change(&before, &net, input.view()) < 1e-10,
            "{which:?} on"
        );
    }
}

#[test]
fn autoencoder_compensation_respects_the_bottleneck_mask() {
    let input = random_inputs(40, 6, 17);
    let mut net = autoencoder(18);
    let before = net.clone();
    transformed(&mut net, input.view(), ALL);
    assert!(max_output_change(&before, &net, input.view()) < 1e-10);
    for l in 4..=6 {
        for k in 0..3 {
            assert!(
                net.params.weight(l, k).is_none(),
                "W[{l}][{k}] skips the bottleneck"
            );
        }
    }
}

#[test]
fn alpha_without_shortcuts_is_refused_and_leaves_the_net_untouched() {
    let input = random_inputs(20, 5, 19);
    let mut net = classifier(Shortcuts::Adjacent, 20);
    let before = net.clone();
    let mut ws = Workspace::new(&net.topology, 20);
    let moments = Moments::of_batch(&net, input.view(), &mut ws);
    let err = net.reestimate(&moments, &settings(AB)).unwrap_err();
    assert!(err.to_string().contains("shortcut"), "{err}");
    assert_eq!(before.params, net.params);
}

#[test]
fn moments_collected_in_the_forward_pass_equal_a_separate_pass() {
    let input = random_inputs(37, 5, 21);
    let mut net = classifier(Shortcuts::All, 22);
    transformed(&mut net, random_inputs(30, 5, 23).view(), ALL);
    let separate = Moments::of_batch(&net, input.view(), &mut Workspace::new(&net.topology, 37));
    let mut collected = Moments::new(&net);
    let mut ws = Workspace::new(&net.topology, 37);
    net.forward_collecting(input.view(), &mut ws, Some(&mut collected));
    assert_eq!(collected, separate);
    assert_eq!(collected.layers[1].as_ref().unwrap().count, 37.0);
    let mut plain = Workspace::new(&net.topology, 37);
    net.forward(input.view(), &mut plain);
    assert_eq!(ws.output(), plain.output());
}
