//! Benchmarks of the hot kernels of a training step (divan): the matrix products at the MNIST
//! shapes, the fast tanh against the standard one, whole forward and training passes, and the
//! parts of a re-estimation on the current minibatch.
//! Run with `cargo bench --bench kernels`.

use divan::{black_box, Bencher};
use ltmlp::net::kernels;
use ltmlp::net::{
    Flags, GammaControl, GammaForm, Moments, Network, Settings, Shortcuts, Target, Topology,
    UnitKind, Workspace,
};
use ltmlp::train::optimizer::Sgd;
use ndarray::Array2;

fn main() {
    kernels::set_threads(1);
    divan::main();
}

fn filled(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5
    })
}

/// The first layer's forward product: (batch × 784) · (784 × 800).
#[divan::bench(args = [100, 1000])]
fn matmul_forward_784x800(bencher: Bencher, batch: usize) {
    let (y, w) = (filled(batch, 784), filled(800, 784));
    let mut x = Array2::<f32>::zeros((batch, 800));
    bencher
        .counter(divan::counter::ItemsCount::new(2 * batch * 784 * 800))
        .bench_local(|| kernels::matmul(1.0, &y.view(), &w.t(), 0.0, &mut x.view_mut()));
}

/// A weight-gradient product: (800 × batch) · (batch × 800), δᵀ·y.
#[divan::bench(args = [100, 1000])]
fn matmul_gradient_800x800(bencher: Bencher, batch: usize) {
    let (d, y) = (filled(batch, 800), filled(batch, 800));
    let mut g = Array2::<f32>::zeros((800, 800));
    bencher
        .counter(divan::counter::ItemsCount::new(2 * batch * 800 * 800))
        .bench_local(|| kernels::matmul(1.0, &d.t(), &y.view(), 0.9, &mut g.view_mut()));
}

/// tanh of one 1000 × 800 layer with the rational approximation.
#[divan::bench]
fn tanh_fast(bencher: Bencher) {
    let x = filled(1000, 800);
    let mut t = vec![0.0f32; x.len()];
    let xs = x.as_slice().unwrap();
    bencher.bench_local(|| kernels::tanh_f32(black_box(xs), &mut t));
}

/// The same with the standard library's scalar tanh.
#[divan::bench]
fn tanh_std(bencher: Bencher) {
    let x = filled(1000, 800);
    let mut t = vec![0.0f32; x.len()];
    let xs = x.as_slice().unwrap();
    bencher.bench_local(|| {
        for (t, &x) in t.iter_mut().zip(black_box(xs)) {
            *t = x.tanh();
        }
    });
}

fn net(shortcuts: Shortcuts) -> Network<f32> {
    let topology = Topology::new(
        vec![784, 800, 800, 10],
        vec![
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Softmax,
        ],
        shortcuts,
        None,
    )
    .unwrap();
    Network::init(topology, 1)
}

/// Forward pass of the plain 784-800-800-10 network.
#[divan::bench(args = [100, 1000])]
fn forward_plain(bencher: Bencher, batch: usize) {
    let net = net(Shortcuts::Adjacent);
    let x = filled(batch, 784);
    let mut ws = Workspace::new(&net.topology, batch);
    bencher.bench_local(|| net.forward(x.view(), &mut ws));
}

/// One SGD step (forward, backward, fused update) of the plain network.
#[divan::bench(args = [100, 1000])]
fn train_step_plain(bencher: Bencher, batch: usize) {
    let mut net = net(Shortcuts::Adjacent);
    let x = filled(batch, 784);
    let labels: Vec<u32> = (0..batch).map(|i| (i % 10) as u32).collect();
    let mut ws = Workspace::new(&net.topology, batch);
    let mut sgd = Sgd::new(&net.topology);
    bencher.bench_local(|| {
        net.forward(x.view(), &mut ws);
        net.output_delta(Target::Labels(&labels), &mut ws);
        net.backpropagate(&mut ws);
        sgd.step_fused(&mut net, &ws, 0.001, (0.9, 0.9), 0.0, None);
    });
}

/// Forward pass of the paper's network (all shortcuts, transformed units), batch 1000: alone,
/// and collecting the moment sums that re-estimation on the current minibatch needs.
#[divan::bench(args = [false, true])]
fn forward_paper_1000(bencher: Bencher, collect: bool) {
    let net = net(Shortcuts::All);
    let x = filled(1000, 784);
    let mut ws = Workspace::new(&net.topology, 1000);
    let mut moments = Moments::new(&net);
    bencher.bench_local(|| {
        if collect {
            moments.reset();
            net.forward_collecting(x.view(), &mut ws, Some(&mut moments));
        } else {
            net.forward(x.view(), &mut ws);
        }
    });
}

/// The parts of one α β γ re-estimation of the paper's network after a forward pass of 1000
/// examples: the whole re-estimation with its compensation (α is switched off and on in turn,
/// so that every call moves α and runs the compensation product), the refresh of the
/// activations, and the compensation product alone (800×800 · 800×784).
#[divan::bench]
fn reestimate_paper_1000(bencher: Bencher) {
    let mut net = net(Shortcuts::All);
    let x = filled(1000, 784);
    let mut ws = Workspace::new(&net.topology, 1000);
    let mut moments = Moments::new(&net);
    net.forward_collecting(x.view(), &mut ws, Some(&mut moments));
    let settings = |alpha| Settings {
        flags: Flags {
            alpha,
            beta: true,
            gamma: true,
        },
        gamma_form: GammaForm::Product,
        gamma_epsilon: 1e-4,
        gamma_control: GammaControl::Off,
        gamma_bound: f64::INFINITY,
    };
    let mut alpha = false;
    bencher.bench_local(|| {
        alpha = !alpha;
        net.reestimate(&moments, &settings(alpha)).unwrap();
    });
}

#[divan::bench]
fn refresh_activations_paper_1000(bencher: Bencher) {
    let net = net(Shortcuts::All);
    let x = filled(1000, 784);
    let mut ws = Workspace::new(&net.topology, 1000);
    net.forward(x.view(), &mut ws);
    bencher.bench_local(|| net.refresh_activations(&mut ws));
}

#[divan::bench]
fn matmul_compensation_800x800x784(bencher: Bencher) {
    let (s, w_lk) = (filled(800, 800), filled(800, 784));
    let mut w_mk = Array2::<f32>::zeros((800, 784));
    bencher
        .counter(divan::counter::ItemsCount::new(2usize * 800 * 800 * 784))
        .bench_local(|| kernels::matmul(1.0, &s.view(), &w_lk.view(), 1.0, &mut w_mk.view_mut()));
}
