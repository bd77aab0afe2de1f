//! Benchmarks of the hot kernels of a training step (divan): the matrix products at the MNIST
//! shapes, the fast tanh against the standard one, and whole forward and training passes.
//! Run with `cargo bench --bench kernels`.

use divan::{black_box, Bencher};
use ltmlp::net::kernels;
use ltmlp::net::{Network, Shortcuts, Target, Topology, UnitKind, Workspace};
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
    let labels: Vec<u8> = (0..batch).map(|i| (i % 10) as u8).collect();
    let mut ws = Workspace::new(&net.topology, batch);
    let mut sgd = Sgd::new(&net.topology);
    bencher.bench_local(|| {
        net.forward(x.view(), &mut ws);
        net.output_delta(Target::Labels(&labels), &mut ws);
        net.backpropagate(&mut ws);
        sgd.step_fused(&mut net, &ws, 0.001, 0.9, 0.0);
    });
}
