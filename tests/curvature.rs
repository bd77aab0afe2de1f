//! Curvature diagnostics: the finite-difference Hessian against independent finite differences,
//! its symmetry, the Fisher matrix against its definition and against the Gauss–Newton matrix,
//! the damped-direction angles, the quick TUI reading, and `diagnose` end to end.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use std::path::Path;

use ltmlp::analysis::{
    angle_deg, asymmetry, damped_angles, damping_grid, diagnose, eigen, fisher, hessian_fd,
    off_diagonal_ratio, quick_curvature, symmetrise, Refusal, WeightGradient, QUICK_MAX_WEIGHTS,
};
use ltmlp::cli::RunArgs;
use ltmlp::net::{Network, Params, Shortcuts, Target, Topology, UnitKind, Workspace};
use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn random_inputs(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.5..1.5))
}

fn labels(rows: usize, classes: usize) -> Vec<u32> {
    (0..rows).map(|i| ((i * 7 + 3) % classes) as u32).collect()
}

/// A small classifier with every weight random and non-zero, and non-trivial α, β, γ.
fn random_net(sizes: &[usize], seed: u64) -> Network<f64> {
    let mut kinds = vec![UnitKind::Input];
    kinds.extend(std::iter::repeat_n(UnitKind::Tanh, sizes.len() - 2));
    kinds.push(UnitKind::Softmax);
    let topology = Topology::new(sizes.to_vec(), kinds, Shortcuts::All, None).unwrap();
    let mut net = Network::<f64>::init(topology, seed);
    let mut rng = Pcg64Mcg::seed_from_u64(seed + 1);
    for (_, _, w) in net.params.blocks_mut() {
        w.mapv_inplace(|_| rng.random_range(-0.8..0.8));
    }
    for b in net.params.biases.iter_mut() {
        b.mapv_inplace(|_| rng.random_range(-0.5..0.5));
    }
    for tr in net.transforms.iter_mut().flatten() {
        tr.alpha.mapv_inplace(|_| rng.random_range(-0.3..0.0));
        tr.beta.mapv_inplace(|_| rng.random_range(-0.2..0.2));
        tr.gamma.mapv_inplace(|_| rng.random_range(0.7..1.5));
    }
    net
}

fn mean_loss(net: &Network<f64>, x: ArrayView2<f64>, y: &[u32]) -> f64 {
    let mut ws = Workspace::new(&net.topology, x.nrows());
    net.forward(x, &mut ws);
    net.output_delta(Target::Labels(y), &mut ws).objective / x.nrows() as f64
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn hessian_matches_finite_differences_and_is_symmetric() {
    let net = random_net(&[5, 4, 3, 3], 11);
    let x = random_inputs(12, 5, 3);
    let y = labels(12, 3);
    let mut h = hessian_fd(&net, x.view(), &y, 1e-4);
    let n = net.params.len(false);
    assert_eq!(h.dim(), (n, n));
    // The backprop gradient is a true gradient, so its finite-difference Jacobian is symmetric.
    let asym = asymmetry(&h);
    assert!(asym < 1e-7, "asymmetry {asym}");
    symmetrise(&mut h);
    assert_eq!(h, h.t());

    // Independently: central differences, with another step, of the analytic gradient computed
    // directly by forward/output_delta/backward on the whole batch.
    let base = net.params.to_flat(false);
    let grad_at = |w: &[f64]| {
        let mut m = net.clone();
        m.params.set_flat(w, false);
        let mut ws = Workspace::new(&m.topology, x.nrows());
        let mut g = Params::zeros(&m.topology);
        m.forward(x.view(), &mut ws);
        m.output_delta(Target::Labels(&y), &mut ws);
        m.backward(&mut ws, &mut g);
        Array1::from(g.to_flat(false))
    };
    let step = 1e-5;
    let mut fd = Array2::zeros((n, n));
    for j in 0..n {
        let mut w = base.clone();
        w[j] += step;
        let plus = grad_at(&w);
        w[j] = base[j] - step;
        let minus = grad_at(&w);
        fd.column_mut(j).assign(&((plus - minus) / (2.0 * step)));
    }
    let scale = max_abs(&h);
    assert!(scale > 1e-3, "Hessian unexpectedly tiny: {scale}");
    let err = max_diff(&h, &fd);
    assert!(
        err < 1e-6 * scale.max(1.0),
        "gradient FD mismatch {err} (scale {scale})"
    );

    // And second differences of the loss itself, for a sample of entries.
    let hl = 1e-3;
    let loss_at = |w: &[f64]| {
        let mut m = net.clone();
        m.params.set_flat(w, false);
        mean_loss(&m, x.view(), &y)
    };
    for &(i, j) in &[
        (0, 0),
        (1, 7),
        (5, 30),
        (20, 21),
        (n - 1, 2),
        (n - 1, n - 1),
    ] {
        let e = |di: f64, dj: f64| {
            let mut w = base.clone();
            w[i] += di;
            w[j] += dj;
            loss_at(&w)
        };
        let second = (e(hl, hl) - e(hl, -hl) - e(-hl, hl) + e(-hl, -hl)) / (4.0 * hl * hl);
        assert!(
            (second - h[(i, j)]).abs() < 1e-5 * scale.max(1.0),
            "H[{i},{j}] = {} vs loss second difference {second}",
            h[(i, j)]
        );
    }
}

#[test]
fn full_set_gradient_is_the_mean_over_chunks() {
    // More rows than one chunk (1000) so that the chunk weighting is exercised.
    let net = random_net(&[4, 3, 3], 5);
    let x = random_inputs(1300, 4, 9);
    let y = labels(1300, 3);
    let n = net.params.len(false);
    let mut g = vec![0.0; n];
    let loss = WeightGradient::new(&net).compute(&net, x.view(), &y, &mut g);
    let mut ws = Workspace::new(&net.topology, 1300);
    let mut grads = Params::zeros(&net.topology);
    net.forward(x.view(), &mut ws);
    let whole = net.output_delta(Target::Labels(&y), &mut ws).objective / 1300.0;
    net.backward(&mut ws, &mut grads);
    assert!((loss - whole).abs() < 1e-12);
    for (a, b) in g.iter().zip(grads.to_flat(false)) {
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn hessian_of_softmax_regression_equals_its_fisher() {
    // Without hidden layers the logits are linear in the weights, so H = Gauss–Newton = F.
    let net = random_net(&[6, 4], 2);
    let x = random_inputs(30, 6, 4);
    let y = labels(30, 4);
    let mut h = hessian_fd(&net, x.view(), &y, 1e-4);
    symmetrise(&mut h);
    let f = fisher(&net, x.view());
    let err = max_diff(&h, &f);
    assert!(err < 1e-8 * max_abs(&f).max(1.0), "H vs F: {err}");
}

#[test]
fn fisher_is_the_expected_outer_product_of_score_vectors() {
    // F = (1/T) Σ_t Σ_y p(y|x_t) ∇log p(y|x_t) ∇log p(y|x_t)ᵀ, with each per-example gradient
    // from the engine's own single-example backward pass.
    let net = random_net(&[4, 5, 3, 3], 21);
    let x = random_inputs(9, 4, 8);
    let n = net.params.len(false);
    let mut expected = Array2::<f64>::zeros((n, n));
    let mut ws = Workspace::new(&net.topology, 1);
    let mut grads = Params::zeros(&net.topology);
    for t in 0..x.nrows() {
        let row = x.slice(ndarray::s![t..t + 1, ..]);
        net.forward(row, &mut ws);
        let p = ws.output().row(0).to_owned();
        for c in 0..3u32 {
            net.forward(row, &mut ws);
            net.output_delta(Target::Labels(&[c]), &mut ws);
            net.backward(&mut ws, &mut grads);
            let g = Array1::from(grads.to_flat(false));
            let outer = g
                .view()
                .insert_axis(ndarray::Axis(1))
                .dot(&g.view().insert_axis(ndarray::Axis(0)));
            expected.scaled_add(p[c as usize], &outer);
        }
    }
    expected /= x.nrows() as f64;
    let f = fisher(&net, x.view());
    let err = max_diff(&f, &expected);
    assert!(err < 1e-12 * max_abs(&expected).max(1.0), "{err}");
    assert_eq!(f, f.t());
    let e = eigen(&f).unwrap();
    assert!(e.values.iter().all(|&l| l > -1e-12), "F is not PSD");
}

#[test]
fn fisher_equals_gauss_newton_from_finite_differences() {
    // GN = (1/T) Σ_t J_tᵀ H_ℓ J_t with J_t the logit Jacobian by central differences in the
    // weights and H_ℓ the Hessian of the cross-entropy in the logits by second differences.
    let net = random_net(&[4, 5, 4, 3], 31);
    let x = random_inputs(7, 4, 12);
    let y = labels(7, 3);
    let n = net.params.len(false);
    let depth = net.depth();
    let k = 3;
    let base = net.params.to_flat(false);
    let logits = |w: &[f64]| {
        let mut m = net.clone();
        m.params.set_flat(w, false);
        let mut ws = Workspace::new(&m.topology, x.nrows());
        m.forward(x.view(), &mut ws);
        ws.pre_activation(depth).to_owned()
    };
    let hj = 1e-6;
    // jac[t] is k × n.
    let mut jac = vec![Array2::<f64>::zeros((k, n)); x.nrows()];
    for j in 0..n {
        let mut w = base.clone();
        w[j] += hj;
        let plus = logits(&w);
        w[j] = base[j] - hj;
        let minus = logits(&w);
        for t in 0..x.nrows() {
            for c in 0..k {
                jac[t][(c, j)] = (plus[(t, c)] - minus[(t, c)]) / (2.0 * hj);
            }
        }
    }
    let z = logits(&base);
    let ce = |z: &Array1<f64>, label: usize| {
        let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        lse - z[label]
    };
    let hz = 1e-4;
    let mut gn = Array2::<f64>::zeros((n, n));
    for t in 0..x.nrows() {
        let zt = z.row(t).to_owned();
        let mut hl = Array2::<f64>::zeros((k, k));
        for a in 0..k {
            for b in 0..k {
                let e = |da: f64, db: f64| {
                    let mut v = zt.clone();
                    v[a] += da;
                    v[b] += db;
                    ce(&v, y[t] as usize)
                };
                hl[(a, b)] = (e(hz, hz) - e(hz, -hz) - e(-hz, hz) + e(-hz, -hz)) / (4.0 * hz * hz);
            }
        }
        gn = gn + jac[t].t().dot(&hl).dot(&jac[t]);
    }
    gn /= x.nrows() as f64;
    let f = fisher(&net, x.view());
    let err = max_diff(&f, &gn);
    assert!(err < 1e-6 * max_abs(&f).max(1.0), "F vs GN: {err}");
}

#[test]
fn angles_lie_in_0_to_90_for_positive_definite_matrices_and_vanish_for_the_identity() {
    let grid = damping_grid();
    assert_eq!(grid.len(), 20);
    assert!((grid[0] - 1e-4).abs() < 1e-12);
    assert!((grid[19] - 10f64.powf(-0.3)).abs() < 1e-12);
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    for trial in 0..5 {
        let n = 12;
        let a = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0..1.0));
        let mut spd = a.t().dot(&a);
        for i in 0..n {
            spd[(i, i)] += 1e-3 * (trial + 1) as f64;
        }
        let g: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let e = eigen(&spd).unwrap();
        for angle in damped_angles(&e, &g, &grid) {
            let angle = angle.expect("positive definite, so every angle is defined");
            assert!((0.0..=90.0).contains(&angle), "{angle}");
        }
    }
    let id = Array2::<f64>::eye(8);
    let e = eigen(&id).unwrap();
    let g: Vec<f64> = (0..8).map(|i| i as f64 - 3.3).collect();
    for angle in damped_angles(&e, &g, &grid) {
        assert!(angle.unwrap().abs() < 1e-6);
    }
    assert_eq!(off_diagonal_ratio(&id), 0.0);
    assert!((angle_deg(&[1.0, 0.0], &[0.0, 2.0]) - 90.0).abs() < 1e-12);
}

#[test]
fn indefinite_damped_matrices_give_no_angle() {
    let m = Array2::from_diag(&Array1::from(vec![-0.01, 1.0, 2.0]));
    let e = eigen(&m).unwrap();
    let grid = damping_grid();
    let angles = damped_angles(&e, &[1.0, 1.0, 1.0], &grid);
    for (mu, a) in grid.iter().zip(angles) {
        assert_eq!(a.is_some(), mu - 0.01 > 1e-5, "μ = {mu}");
    }
}

#[test]
fn quick_curvature_reads_small_networks_and_refuses_large_ones() {
    let net = random_net(&[6, 5, 4], 3).cast::<f32>();
    let x = random_inputs(40, 6, 1).mapv(|v| v as f32);
    let y = labels(40, 4);
    let q = quick_curvature(&net, x.view(), &y, x.slice(ndarray::s![..10, ..]), &y[..10]).unwrap();
    assert_eq!(q.weights, net.params.len(false));
    assert_eq!(q.examples, 40);
    let (mu, angle) = q.natural_angle.unwrap();
    assert!(mu > 0.0 && (0.0..=90.0).contains(&angle));
    if let Some((_, angle)) = q.newton_angle {
        assert!((0.0..=90.0).contains(&angle));
    }
    assert!(q.hessian.off_diagonal_ratio > 0.0 && q.fisher.off_diagonal_ratio > 0.0);

    let big = Network::<f32>::init(
        Topology::new(
            vec![784, 64, 10],
            vec![UnitKind::Input, UnitKind::Tanh, UnitKind::Softmax],
            Shortcuts::All,
            None,
        )
        .unwrap(),
        1,
    );
    let xb = ndarray::Array2::<f32>::zeros((4, 784));
    let err = quick_curvature(&big, xb.view(), &[0; 4], xb.view(), &[0; 4]).unwrap_err();
    assert!(matches!(err, Refusal::TooLarge { limit, .. } if limit == QUICK_MAX_WEIGHTS));
    let text = err.to_string();
    assert!(
        text.contains(&QUICK_MAX_WEIGHTS.to_string()) && text.contains("58656"),
        "{text}"
    );
}

#[test]
fn diagnose_rejects_bad_lists() {
    assert!(diagnose::parse_iterations("100,x").is_err());
    assert!(diagnose::parse_iterations("0").is_err());
    assert_eq!(
        diagnose::parse_iterations("40, 10,10").unwrap(),
        vec![10, 40]
    );
    let err = diagnose::parse_variants("none,abc")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("abc") && err.contains("none, ab, abg"),
        "{err}"
    );
}

fn tiny() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/presets/tiny.toml"))
}

#[test]
fn diagnose_refuses_networks_too_large_for_a_dense_hessian() {
    let args = RunArgs {
        set: vec!["model.hidden=[200]".into(), "data.downsample=1".into()],
        ..RunArgs::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let options = diagnose::Options {
        at: vec![1],
        variants: vec!["none".into()],
        out: dir.path().join("out"),
        step: 1e-4,
    };
    let err = format!("{:#}", diagnose::run(tiny(), &args, &options).unwrap_err());
    assert!(
        err.contains("5000") && err.contains("model.hidden"),
        "{err}"
    );
    assert!(!err.contains('\n'));
}

#[test]
fn diagnose_writes_its_report_and_plots() {
    let args = RunArgs {
        set: vec!["model.hidden=[3]".into(), "data.downsample=7".into()],
        ..RunArgs::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let options = diagnose::Options {
        at: vec![1, 3],
        variants: vec!["none".into(), "abg".into()],
        out: out.clone(),
        step: 1e-4,
    };
    let report = diagnose::run(tiny(), &args, &options).unwrap();
    assert_eq!(report.variants.len(), 2);
    for v in &report.variants {
        assert_eq!(v.checkpoints.len(), 2);
        for c in &v.checkpoints {
            assert_eq!(c.hessian.eigenvalues.len(), v.weights);
            assert_eq!(c.fisher.angles.len(), 20);
            assert!(c.hessian_asymmetry < 1e-6);
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("curvature.json")).unwrap())
            .unwrap();
    assert_eq!(json["variants"][1]["variant"], "abg");
    for svg in ["spectra.svg", "angles.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("<polyline"),
            "{svg}"
        );
    }
    let table = diagnose::table(&report);
    assert_eq!(table.lines().count(), 2 + 4);
    let again = diagnose::replot(&out.join("curvature.json")).unwrap();
    assert_eq!(diagnose::table(&again), table);
}

// ---- Matrix-free products and the Krylov method ----

use ltmlp::analysis::krylov::{self, KrylovOptions};
use ltmlp::analysis::CurvatureProducts;

fn random_direction(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

#[test]
fn hessian_vector_products_are_exact_directional_derivatives_of_the_gradient() {
    // Two hidden layers with shortcuts and non-trivial α, β, γ: every term of the R-operator.
    let net = random_net(&[6, 5, 4, 3], 21);
    let x = random_inputs(700, 6, 4); // more than one 500-row chunk
    let y = labels(700, 3);
    let mut ops = CurvatureProducts::new(&net, x.view(), &y).unwrap();
    let n = ops.weights();
    let mut grad = WeightGradient::new(&net);
    let mut g0 = vec![0.0; n];
    let loss = grad.compute(&net, x.view(), &y, &mut g0);
    assert!((loss - ops.loss).abs() < 1e-12 * loss.max(1.0));
    let gerr = g0
        .iter()
        .zip(&ops.gradient)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(gerr < 1e-13, "gradient mismatch {gerr}");
    let base = net.params.to_flat(false);
    for seed in 0..3 {
        let v = random_direction(n, 100 + seed);
        let mut hv = vec![0.0; n];
        ops.hessian_vector(&v, &mut hv);
        // Central difference of the gradient along v, Richardson-extrapolated (error O(h⁴)).
        let mut grad_along = |h: f64| {
            let mut m = net.clone();
            let mut out = vec![0.0; n];
            let mut minus = vec![0.0; n];
            let w: Vec<f64> = base.iter().zip(&v).map(|(b, d)| b + h * d).collect();
            m.params.set_flat(&w, false);
            grad.compute(&m, x.view(), &y, &mut out);
            let w: Vec<f64> = base.iter().zip(&v).map(|(b, d)| b - h * d).collect();
            m.params.set_flat(&w, false);
            grad.compute(&m, x.view(), &y, &mut minus);
            out.iter()
                .zip(&minus)
                .map(|(p, q)| (p - q) / (2.0 * h))
                .collect::<Vec<f64>>()
        };
        let a = grad_along(1e-3);
        let b = grad_along(5e-4);
        let fd: Vec<f64> = a.iter().zip(&b).map(|(a, b)| (4.0 * b - a) / 3.0).collect();
        let scale = hv.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = hv
            .iter()
            .zip(&fd)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(scale > 1e-3, "Hv unexpectedly tiny: {scale}");
        assert!(
            err < 1e-8 * scale,
            "Hv vs finite differences: {err} (scale {scale})"
        );
    }
}

#[test]
fn gauss_newton_and_hessian_products_match_the_dense_matrices() {
    let net = random_net(&[6, 5, 4, 3], 8);
    let x = random_inputs(600, 6, 2);
    let y = labels(600, 3);
    let mut ops = CurvatureProducts::new(&net, x.view(), &y).unwrap();
    let n = ops.weights();
    let f = fisher(&net, x.view());
    let mut h = hessian_fd(&net, x.view(), &y, 1e-4);
    symmetrise(&mut h);
    for seed in 0..3 {
        let v = random_direction(n, 7 + seed);
        let va = Array1::from(v.clone());
        let mut gv = vec![0.0; n];
        ops.gauss_newton_vector(&v, &mut gv);
        let dense = f.dot(&va);
        let scale = dense.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = dense
            .iter()
            .zip(&gv)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(err < 1e-12 * scale.max(1.0), "Fv: {err} (scale {scale})");
        let mut hv = vec![0.0; n];
        ops.hessian_vector(&v, &mut hv);
        let dense = h.dot(&va);
        let scale = dense.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = dense
            .iter()
            .zip(&hv)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(err < 1e-6 * scale.max(1.0), "Hv: {err} (scale {scale})");
    }
}

/// The Krylov method against the dense reference on `presets/tiny.toml` (2634 weights), after
/// 100 iterations of α β: the top eigenvalues of H and F within 1e-6 relative, every angle
/// within 0.5°, and null angles exactly where the dense method has them (away from the edge).
#[test]
fn krylov_agrees_with_the_dense_method_on_tiny() {
    use ltmlp::train::AnyData;
    let args = RunArgs {
        variant: Some("ab".into()),
        ..RunArgs::default()
    };
    let exp = args.experiment(Some(&tiny().to_path_buf())).unwrap();
    let AnyData::F64(data) = exp.data.clone() else {
        panic!("tiny.toml is f64");
    };
    let mut checked = 0;
    diagnose::train_and_measure(&exp, data, &[100], &mut |m| {
        let dense = diagnose::measure(m.net, m.x, m.labels, &m.xb, &m.lb, m.iteration, 1e-4)?;
        let k = krylov::measure(
            m.net,
            m.x.view(),
            m.labels,
            m.xb.view(),
            &m.lb,
            &KrylovOptions::exhaustive(),
            &mut |_| {},
        )?;
        assert_eq!(k.examples, 1000);
        assert_eq!(k.weights, 2634);
        let pairs = [
            ("H", &dense.hessian, &k.hessian),
            ("F", &dense.fisher, &k.fisher),
        ];
        for (name, d, kr) in pairs {
            let n = d.eigenvalues.len();
            for (i, &lk) in kr.largest.iter().enumerate() {
                let ld = d.eigenvalues[n - 1 - i];
                let rel = (lk - ld).abs() / ld.abs();
                assert!(
                    rel < 1e-6,
                    "{name} eigenvalue {i}: krylov {lk} dense {ld} ({rel:e})"
                );
            }
            let lmin = d.eigenvalues[0];
            assert!(kr.smallest >= lmin - 1e-9 * lmin.abs().max(1.0));
            let grid = damping_grid();
            for (j, &mu) in grid.iter().enumerate() {
                let edge = (lmin + mu - 1e-5).abs() < 1e-3 * lmin.abs().max(1e-3);
                match (d.angles[j], kr.angles[j]) {
                    (Some(a), Some(b)) => {
                        assert!(
                            (a - b).abs() < 0.5,
                            "{name} μ={mu:e}: dense {a}° krylov {b}°"
                        );
                        checked += 1;
                    }
                    (None, None) => {}
                    (a, b) => assert!(edge, "{name} μ={mu:e}: dense {a:?} krylov {b:?}"),
                }
            }
        }
        Ok(String::new())
    })
    .unwrap();
    // Both matrices have angles at the larger μ at least.
    assert!(checked >= 10, "only {checked} angles compared");
}
