//! Exact matrix-free curvature products on a fixed set of examples: Hessian-vector products by
//! Pearlmutter's R-operator (forward-over-backward through the whole shortcut graph, α β γ
//! included) and Gauss–Newton vector products (for softmax + cross-entropy the Gauss–Newton
//! matrix is the Fisher matrix F of [`super::fisher`]). Both are with respect to the weights
//! only, biases held fixed, like the dense matrices.
//!
//! Notation (row-major batches): X_l = 1b_lᵀ + Σ_k Y_k W_lkᵀ, Y_l = φ_l(X_l) with
//! φ(x) = γ(tanh x + αx + β), S_l = φ′(X_l), C_l = φ″(X_l); D_L = P − onehot,
//! E_l = Σ_m D_m W_ml, D_l = S_l ⊙ E_l; ∂L/∂W_lk = D_lᵀY_k / N. For a direction V (weight
//! blocks V_lk), R{·} is the directional derivative:
//! R X_l = Σ_k (Y_k V_lkᵀ + R Y_k W_lkᵀ), R Y_l = S_l ⊙ R X_l, R D_L = P ⊙ R X_L − P·rowsum(P ⊙ R X_L),
//! R E_l = Σ_m (R D_m W_ml + D_m V_ml), R D_l = S_l ⊙ R E_l + C_l ⊙ R X_l ⊙ E_l, and
//! (Hv)_lk = (R D_lᵀ Y_k + D_lᵀ R Y_k) / N. The Gauss–Newton product drops every second-order
//! term: back-propagate R D_L with S only, (Gv)_lk = (G D_lᵀ Y_k) / N.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};

use crate::net::kernels::matmul;
use crate::net::{Network, Target, UnitKind, Workspace};

/// Rows per cached chunk (the cache holds every layer's activations and errors of all chunks).
const CHUNK: usize = 500;

/// Why a product operator cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProductError {
    #[error("curvature products are implemented for softmax classifiers (model.task = \"classify\"), not for a {0:?} output")]
    NotClassifier(UnitKind),
    #[error("no examples to measure curvature on")]
    NoData,
    #[error("{examples} inputs but {labels} labels")]
    LabelCount { examples: usize, labels: usize },
}

/// One weight block's place in the flat vector ([`crate::net::Params::to_flat`] order).
#[derive(Debug, Clone, Copy)]
struct Block {
    l: usize,
    k: usize,
    offset: usize,
    rows: usize,
    cols: usize,
}

/// What the forward and backward passes leave for one chunk.
struct Chunk {
    rows: usize,
    /// Y_k for every layer (Y_0 the inputs, Y_L the probabilities P).
    y: Vec<Array2<f64>>,
    /// S_l = φ′(X_l) and C_l = φ″(X_l) for hidden layers (empty elsewhere).
    slope: Vec<Array2<f64>>,
    curve: Vec<Array2<f64>>,
    /// E_l (hidden layers) and D_l (hidden layers and the output).
    e: Vec<Array2<f64>>,
    d: Vec<Array2<f64>>,
}

/// Per-layer buffers of one product, sized for the largest chunk.
struct Scratch {
    rx: Vec<Array2<f64>>,
    ry: Vec<Array2<f64>>,
    re: Vec<Array2<f64>>,
    rd: Vec<Array2<f64>>,
}

/// Hessian- and Gauss–Newton-vector products of the mean cross-entropy over fixed examples.
pub struct CurvatureProducts {
    net: Network<f64>,
    blocks: Vec<Block>,
    chunks: Vec<Chunk>,
    scratch: Scratch,
    examples: usize,
    /// Mean cross-entropy over the examples.
    pub loss: f64,
    /// Gradient of the mean cross-entropy with respect to the weights (flat order).
    pub gradient: Vec<f64>,
    /// Products computed so far (for progress and cost reports).
    pub products: usize,
}

impl CurvatureProducts {
    /// Runs the forward and backward passes over `inputs` once and keeps what the products
    /// need. Memory: about (2·Σ hidden sizes + Σ all sizes)·rows f64 values.
    pub fn new(
        net: &Network<f64>,
        inputs: ArrayView2<f64>,
        labels: &[crate::data::Class],
    ) -> Result<Self, ProductError> {
        let depth = net.depth();
        let out_kind = net.topology.kind(depth);
        if out_kind != UnitKind::Softmax {
            return Err(ProductError::NotClassifier(out_kind));
        }
        let n = inputs.nrows();
        if n == 0 {
            return Err(ProductError::NoData);
        }
        if labels.len() != n {
            return Err(ProductError::LabelCount {
                examples: n,
                labels: labels.len(),
            });
        }
        let mut blocks = Vec::new();
        let mut offset = 0;
        for (l, k, w) in net.params.blocks() {
            let (rows, cols) = w.dim();
            blocks.push(Block {
                l,
                k,
                offset,
                rows,
                cols,
            });
            offset += rows * cols;
        }
        let weights = offset;
        let sizes: Vec<usize> = (0..=depth).map(|l| net.topology.size(l)).collect();
        let hidden = |l: usize| l > 0 && l < depth;
        let mut ws = Workspace::new(&net.topology, CHUNK.min(n));
        let mut chunks = Vec::new();
        let mut loss = 0.0;
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            let rows = end - start;
            net.forward(inputs.slice(s![start..end, ..]), &mut ws);
            loss += net
                .output_delta(Target::Labels(&labels[start..end]), &mut ws)
                .objective;
            let y: Vec<Array2<f64>> = (0..=depth).map(|l| ws.activation(l).to_owned()).collect();
            let mut slope = vec![Array2::zeros((0, 0)); depth + 1];
            let mut curve = vec![Array2::zeros((0, 0)); depth + 1];
            for l in (1..depth).filter(|&l| hidden(l)) {
                let (sl, cl) = derivatives(net, l, &ws);
                slope[l] = sl;
                curve[l] = cl;
            }
            let mut e = vec![Array2::zeros((0, 0)); depth + 1];
            let mut d = vec![Array2::zeros((0, 0)); depth + 1];
            d[depth] = ws.delta[depth].slice(s![..rows, ..]).to_owned();
            for l in (1..depth).rev() {
                let mut el = Array2::zeros((rows, sizes[l]));
                for m in net.topology.targets(l) {
                    if let Some(w) = net.params.weight(m, l) {
                        matmul(1.0, &d[m].view(), &w.view(), 1.0, &mut el.view_mut());
                    }
                }
                d[l] = &el * &slope[l];
                e[l] = el;
            }
            chunks.push(Chunk {
                rows,
                y,
                slope,
                curve,
                e,
                d,
            });
            start = end;
        }
        let cap = chunks.iter().map(|c| c.rows).max().unwrap_or(0);
        let buf = |l: usize| Array2::zeros((cap, sizes[l]));
        let scratch = Scratch {
            rx: (0..=depth).map(buf).collect(),
            ry: (0..=depth).map(buf).collect(),
            re: (0..=depth).map(buf).collect(),
            rd: (0..=depth).map(buf).collect(),
        };
        let mut me = CurvatureProducts {
            net: net.clone(),
            blocks,
            chunks,
            scratch,
            examples: n,
            loss: loss / n as f64,
            gradient: vec![0.0; weights],
            products: 0,
        };
        let mut g = vec![0.0; weights];
        me.accumulate_gradient(&mut g);
        me.gradient = g;
        Ok(me)
    }

    /// Number of weights: the length of every vector here.
    pub fn weights(&self) -> usize {
        self.gradient.len()
    }

    /// Number of examples the products average over.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// out = H·v, the exact Hessian of the mean loss (weights only) times v.
    pub fn hessian_vector(&mut self, v: &[f64], out: &mut [f64]) {
        self.product(v, out, true);
    }

    /// out = G·v, the Gauss–Newton (= Fisher) matrix of the mean loss times v.
    pub fn gauss_newton_vector(&mut self, v: &[f64], out: &mut [f64]) {
        self.product(v, out, false);
    }

    fn accumulate_gradient(&self, out: &mut [f64]) {
        out.fill(0.0);
        let scale = 1.0 / self.examples as f64;
        for c in &self.chunks {
            for b in &self.blocks {
                let mut g = block_mut(out, b);
                matmul(scale, &c.d[b.l].t(), &c.y[b.k].view(), 1.0, &mut g);
            }
        }
    }

    fn product(&mut self, v: &[f64], out: &mut [f64], second_order: bool) {
        assert_eq!(v.len(), self.weights(), "direction length");
        assert_eq!(out.len(), self.weights(), "output length");
        self.products += 1;
        out.fill(0.0);
        let depth = self.net.depth();
        let scale = 1.0 / self.examples as f64;
        let net = &self.net;
        let topo = &net.topology;
        let sc = &mut self.scratch;
        let find = |l: usize, k: usize| {
            self.blocks
                .iter()
                .find(|b| b.l == l && b.k == k)
                .copied()
                .expect("a block exists for every connection")
        };
        for c in &self.chunks {
            let rows = c.rows;
            // R-forward: RX_l and RY_l (RY_0 = 0).
            for l in 1..=depth {
                let (lower, upper) = sc.ry.split_at_mut(l);
                let mut rx = sc.rx[l].slice_mut(s![..rows, ..]);
                rx.fill(0.0);
                for k in topo.sources(l) {
                    let Some(w) = net.params.weight(l, k) else {
                        continue;
                    };
                    let b = find(l, k);
                    let vb = block(v, &b);
                    matmul(1.0, &c.y[k].view(), &vb.t(), 1.0, &mut rx);
                    if k > 0 {
                        let ryk = lower[k].slice(s![..rows, ..]);
                        matmul(1.0, &ryk, &w.t(), 1.0, &mut rx);
                    }
                }
                if l < depth {
                    let mut ry = upper[0].slice_mut(s![..rows, ..]);
                    ry.assign(&rx);
                    ry *= &c.slope[l];
                }
            }
            // R D_L = (diag p − ppᵀ) R X_L, row by row.
            {
                let p = &c.y[depth];
                let rz = sc.rx[depth].slice(s![..rows, ..]);
                let mut rd = sc.rd[depth].slice_mut(s![..rows, ..]);
                for ((pr, zr), mut dr) in
                    p.outer_iter().zip(rz.outer_iter()).zip(rd.outer_iter_mut())
                {
                    let dot: f64 = pr.iter().zip(zr.iter()).map(|(a, b)| a * b).sum();
                    for ((d, &pi), &zi) in dr.iter_mut().zip(pr.iter()).zip(zr.iter()) {
                        *d = pi * (zi - dot);
                    }
                }
            }
            // R-backward (Gauss–Newton: without the terms in V and C).
            for l in (1..depth).rev() {
                let (lower, upper) = sc.rd.split_at_mut(l + 1);
                let mut re = sc.re[l].slice_mut(s![..rows, ..]);
                re.fill(0.0);
                for m in topo.targets(l) {
                    let Some(w) = net.params.weight(m, l) else {
                        continue;
                    };
                    let rdm = upper[m - l - 1].slice(s![..rows, ..]);
                    matmul(1.0, &rdm, &w.view(), 1.0, &mut re);
                    if second_order {
                        let vb = block(v, &find(m, l));
                        matmul(1.0, &c.d[m].view(), &vb, 1.0, &mut re);
                    }
                }
                let mut rd = lower[l].slice_mut(s![..rows, ..]);
                rd.assign(&re);
                rd *= &c.slope[l];
                if second_order {
                    let rx = sc.rx[l].slice(s![..rows, ..]);
                    ndarray::Zip::from(&mut rd)
                        .and(&rx)
                        .and(&c.curve[l])
                        .and(&c.e[l])
                        .for_each(|d, &x, &cv, &e| *d += cv * x * e);
                }
            }
            // The weight blocks of the product.
            for b in &self.blocks {
                let mut o = block_mut(out, b);
                let rdl = sc.rd[b.l].slice(s![..rows, ..]);
                matmul(scale, &rdl.t(), &c.y[b.k].view(), 1.0, &mut o);
                if second_order && b.k > 0 {
                    let ryk = sc.ry[b.k].slice(s![..rows, ..]);
                    matmul(scale, &c.d[b.l].t(), &ryk, 1.0, &mut o);
                }
            }
        }
    }
}

/// S = φ′(X) and C = φ″(X) of hidden layer l from the cached tanh values: with t = tanh x,
/// φ′ = γ(1 − t² + α) and φ″ = −2γt(1 − t²) (plain tanh: γ = 1, α = 0; linear: 1 and 0).
fn derivatives(net: &Network<f64>, l: usize, ws: &Workspace<f64>) -> (Array2<f64>, Array2<f64>) {
    let x = ws.pre_activation(l);
    match net.topology.kind(l) {
        UnitKind::Tanh => {
            let t = ws.tanh(l);
            let mut slope = Array2::zeros(x.dim());
            let mut curve = Array2::zeros(x.dim());
            let tr = net.transforms[l].as_ref();
            for ((i, j), &tv) in t.indexed_iter() {
                let (a, g) = tr.map_or((0.0, 1.0), |tr| (tr.alpha[j], tr.gamma[j]));
                let one = 1.0 - tv * tv;
                slope[(i, j)] = g * (one + a);
                curve[(i, j)] = -2.0 * g * tv * one;
            }
            (slope, curve)
        }
        _ => (Array2::ones(x.dim()), Array2::zeros(x.dim())),
    }
}

fn block<'a>(v: &'a [f64], b: &Block) -> ArrayView2<'a, f64> {
    ArrayView2::from_shape((b.rows, b.cols), &v[b.offset..b.offset + b.rows * b.cols])
        .expect("block shapes tile the flat vector")
}

fn block_mut<'a>(v: &'a mut [f64], b: &Block) -> ArrayViewMut2<'a, f64> {
    ArrayViewMut2::from_shape(
        (b.rows, b.cols),
        &mut v[b.offset..b.offset + b.rows * b.cols],
    )
    .expect("block shapes tile the flat vector")
}
