//! `ltmlp bench`: training throughput of the standard networks on synthetic data of MNIST shape,
//! with the achieved GFLOP/s and the fraction of the matrix-multiply peak measured in the same
//! run with the same backend (docs/performance.md).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::data::{Class, Dataset, Examples};
use crate::net::kernels;
use crate::net::{Network, Topology};
use crate::preset::{PresetFile, Resolved};
use crate::train::Trainer;

/// MNIST's input size and classes.
const INPUTS: usize = 784;
const CLASSES: usize = 10;
/// Validation rows of the synthetic data (the trainer's check and probe batches come from it).
const VALIDATION_ROWS: usize = 200;
/// Side of the square product timed for the peak: large enough for any backend's best kernel.
const PEAK_SIZE: usize = 2048;
/// Timed repetitions of the peak product (the best counts). The peak is measured again right
/// before each network, so that each row's fraction of peak compares two measurements taken
/// seconds apart on a shared machine whose speed drifts.
const PEAK_REPEATS: usize = 3;
/// Untimed minibatches before timing (buffers, caches, thread pools, CPU frequency).
const WARMUP_STEPS: usize = 3;

/// One of the standard networks of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// 784-800-800-10, adjacent connections, plain tanh.
    Plain,
    /// 784-800-800-10 with all shortcuts and α β γ re-estimated on every minibatch.
    Paper,
    /// The same network with the transformations never re-estimated (the cost baseline).
    PaperNever,
    /// 784-1000-500-250-30-250-500-1000-784, linear bottleneck and output, shortcuts that do
    /// not skip the bottleneck, α β γ re-estimated on every minibatch.
    Autoencoder,
    /// The plain network with batch normalisation before every tanh (the `bn` variant).
    Bn,
    /// The plain network trained with Adam instead of SGD with momentum.
    Adam,
    /// The plain network trained with Muon (five Newton–Schulz iterations on both hidden
    /// layers' matrices at every step).
    Muon,
    /// The plain network trained with K-FAC at its default schedule (factors refreshed every
    /// 10 steps, inverted every 100).
    Kfac,
}

impl Net {
    pub const ALL: [Net; 8] = [
        Net::Plain,
        Net::Paper,
        Net::PaperNever,
        Net::Autoencoder,
        Net::Bn,
        Net::Adam,
        Net::Muon,
        Net::Kfac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Net::Plain => "plain",
            Net::Paper => "paper",
            Net::PaperNever => "paper-never",
            Net::Autoencoder => "autoencoder",
            Net::Bn => "bn",
            Net::Adam => "adam",
            Net::Muon => "muon",
            Net::Kfac => "kfac",
        }
    }

    pub fn parse(name: &str) -> Option<Net> {
        Net::ALL.into_iter().find(|n| n.name() == name)
    }

    /// The preset text of this network (batch size and threads are set later).
    fn preset(self) -> &'static str {
        match self {
            Net::Plain => {
                "name = \"bench-plain\"\nvariant = \"none\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"adjacent\"\n"
            }
            Net::Paper => {
                "name = \"bench-paper\"\nvariant = \"abg\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"all\"\n\
                 [transforms]\npolicy = \"every\"\nevery = 1\n"
            }
            Net::PaperNever => {
                "name = \"bench-paper-never\"\nvariant = \"abg\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"all\"\n\
                 [transforms]\npolicy = \"never\"\n"
            }
            Net::Autoencoder => {
                "name = \"bench-autoencoder\"\nvariant = \"abg\"\n\
                 [model]\ntask = \"autoencode\"\nhidden = [1000, 500, 250, 30, 250, 500, 1000]\n\
                 shortcuts = \"all\"\nlinear = [4]\nbottleneck = 4\n\
                 [transforms]\npolicy = \"every\"\nevery = 1\n"
            }
            Net::Bn => {
                "name = \"bench-bn\"\nvariant = \"bn\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"adjacent\"\n"
            }
            Net::Adam => {
                "name = \"bench-adam\"\nvariant = \"none\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"adjacent\"\n"
            }
            Net::Kfac => {
                "name = \"bench-kfac\"\nvariant = \"none\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"adjacent\"\n"
            }
            Net::Muon => {
                "name = \"bench-muon\"\nvariant = \"none\"\n\
                 [model]\ntask = \"classify\"\nhidden = [800, 800]\nshortcuts = \"adjacent\"\n"
            }
        }
    }

    /// Lines of this network's `[train]` table beyond the shared ones.
    fn train_lines(self) -> &'static str {
        match self {
            Net::Adam => "optimizer = \"adam\"\n",
            Net::Muon => "optimizer = \"muon\"\n",
            Net::Kfac => "optimizer = \"kfac\"\n",
            _ => "",
        }
    }

    fn spec(self) -> Spec {
        Spec {
            label: self.name().to_string(),
            model: self.preset().to_string(),
            train_lines: self.train_lines(),
        }
    }
}

/// The sweeps of network size of `ltmlp bench --scale`, each timing the plain and the paper
/// network at every size so that time per example can be read against FLOPs per example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Two hidden layers of 256 … 4096 units.
    Width,
    /// One to six hidden layers of 512 units.
    Depth,
}

impl Scale {
    pub const ALL: [Scale; 2] = [Scale::Width, Scale::Depth];

    pub fn name(self) -> &'static str {
        match self {
            Scale::Width => "width",
            Scale::Depth => "depth",
        }
    }

    pub fn parse(name: &str) -> Option<Scale> {
        Scale::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The hidden layers of each size of the sweep.
    fn shapes(self) -> Vec<Vec<usize>> {
        match self {
            Scale::Width => [256, 512, 1024, 2048, 4096].map(|w| vec![w; 2]).to_vec(),
            Scale::Depth => [1, 2, 3, 4, 6].map(|d| vec![512; d]).to_vec(),
        }
    }
}

/// The two networks of a scale sweep at one size: plain tanh with adjacent connections, and
/// the paper network (all shortcuts, α β γ re-estimated on every minibatch).
fn scale_specs(hidden: &[usize]) -> [Spec; 2] {
    let hidden = format!("{hidden:?}");
    [
        Spec {
            label: Net::Plain.name().to_string(),
            model: format!(
                "name = \"bench-plain\"\nvariant = \"none\"\n[model]\ntask = \"classify\"\n\
                 hidden = {hidden}\nshortcuts = \"adjacent\"\n"
            ),
            train_lines: "",
        },
        Spec {
            label: Net::Paper.name().to_string(),
            model: format!(
                "name = \"bench-paper\"\nvariant = \"abg\"\n[model]\ntask = \"classify\"\n\
                 hidden = {hidden}\nshortcuts = \"all\"\n[transforms]\npolicy = \"every\"\n\
                 every = 1\n"
            ),
            train_lines: "",
        },
    ]
}

/// Matrix-multiply FLOPs a scale-sweep network trains per timed block (at most `--examples`
/// examples): about a second and a half at this machine's peak, whatever the size.
const SCALE_BLOCK_FLOPS: f64 = 1e11;

/// A network to time: its label in the report, its preset without the `[train]` table, and
/// the lines it adds to that table.
#[derive(Debug, Clone)]
struct Spec {
    label: String,
    model: String,
    train_lines: &'static str,
}

impl Spec {
    fn resolve(&self, batch: usize, check_samples: usize) -> anyhow::Result<Resolved> {
        let text = format!(
            "{}[train]\nepochs = 1\nbatch_size = {batch}\nlearning_rate = 0.001\n\
             momentum = 0.9\ninput_noise = 0.0\nseed = 1\n{}",
            self.model, self.train_lines
        );
        let file = PresetFile::parse(Path::new(&self.label), text)?;
        let mut resolved = file.resolve(None, &[])?;
        resolved.preset.transforms.check_samples = check_samples;
        Ok(resolved)
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub nets: Vec<Net>,
    pub batches: Vec<usize>,
    pub threads: usize,
    /// Examples trained per timed repetition.
    pub examples: usize,
    /// Timed repetitions per network and batch size (the median is reported).
    pub repeats: usize,
    /// Examples of the output-change check run with each re-estimation (0: none, as in the
    /// PyTorch reference).
    pub check_samples: usize,
    /// A sweep of network size instead of the standard networks.
    pub scale: Option<Scale>,
}

/// The measured peak of the matrix-multiply backend.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    pub size: usize,
    pub gflops: f64,
}

/// Times a PEAK_SIZE² f32 product with the training backend and thread count.
pub fn measure_peak() -> Peak {
    let n = PEAK_SIZE;
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let a = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0f32..1.0));
    let b = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0f32..1.0));
    let mut c = Array2::<f32>::zeros((n, n));
    kernels::matmul(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
    let flops = 2.0 * (n * n * n) as f64;
    let best = (0..PEAK_REPEATS)
        .map(|_| {
            let started = Instant::now();
            kernels::matmul(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    Peak {
        size: n,
        gflops: flops / best / 1e9,
    }
}

/// Matrix-multiply FLOPs of one training minibatch, split as (per example, per minibatch).
///
/// Per example: forward 2·W, backward 2·W for the weight gradients plus 2·(weights out of
/// hidden layers) for the errors. Per minibatch: the α compensation products
/// W[m][k] += W[m][l]·diag(Δα)·W[l][k] when α is re-estimated, and the forward pass of the
/// output-change check's rows.
pub fn flops(topology: &Topology, reestimate_alpha: bool, check_rows: usize) -> (f64, f64) {
    let w = topology.weight_count() as f64;
    let hidden_out: usize = topology
        .hidden_layers()
        .map(|l| {
            topology
                .targets(l)
                .map(|m| topology.size(m) * topology.size(l))
                .sum::<usize>()
        })
        .sum();
    let per_example = 4.0 * w + 2.0 * hidden_out as f64;
    let mut per_batch = 0.0;
    if reestimate_alpha {
        for l in topology.transformed_layers() {
            for m in topology.targets(l) {
                for k in topology.sources(l) {
                    per_batch +=
                        2.0 * (topology.size(m) * topology.size(l) * topology.size(k)) as f64;
                }
            }
        }
        per_batch += 2.0 * w * check_rows as f64;
    }
    (per_example, per_batch)
}

/// Matrix-multiply FLOPs of Muon's orthogonalisation per step: for each hidden layer's stacked
/// matrix, n × m with n ≤ m, every Newton–Schulz iteration forms X·Xᵀ (2n²m), A·A (2n³) and
/// (b·A + c·A²)·X (2n²m). The gradient it starts from is the step's usual backward pass.
pub fn muon_flops(topology: &Topology) -> f64 {
    topology
        .hidden_layers()
        .map(|l| {
            let rows = topology.size(l);
            let cols: usize = topology.sources(l).map(|k| topology.size(k)).sum();
            let (n, m) = (rows.min(cols) as f64, rows.max(cols) as f64);
            crate::train::muon::NEWTON_SCHULZ_STEPS as f64 * (4.0 * n * n * m + 2.0 * n * n * n)
        })
        .sum()
}

/// Matrix-multiply FLOPs of K-FAC per step beyond the gradient, amortised over its schedule:
/// for each layer with n units and d concatenated inputs (bias included), the step
/// (G⁻¹·∇·A⁻¹: 2n²d + 2nd²), the factors' statistics every `stats_every` steps (2·batch·(d² +
/// n²)) and their Cholesky inverses every `update_every` steps (about d³ + n³).
pub fn kfac_flops(topology: &Topology, batch: usize, settings: crate::preset::KfacSettings) -> f64 {
    (1..=topology.depth())
        .map(|l| {
            let n = topology.size(l) as f64;
            let d = topology.sources(l).map(|k| topology.size(k)).sum::<usize>() as f64 + 1.0;
            let step = 2.0 * n * n * d + 2.0 * n * d * d;
            let stats = 2.0 * batch as f64 * (d * d + n * n) / settings.stats_every as f64;
            let inverses = (d * d * d + n * n * n) / settings.update_every as f64;
            step + stats + inverses
        })
        .sum()
}

/// One measured network at one batch size: medians over the interleaved rounds.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub batch: usize,
    pub examples_per_second: f64,
    pub gflops: f64,
    /// The step's GFLOP/s over the peak measured at the start of the same round.
    pub fraction_of_peak: f64,
    /// GFLOP/s of the matrix products alone (their FLOPs over the time spent in them).
    pub matmul_gflops: f64,
    /// The products' GFLOP/s over the same round's peak.
    pub matmul_fraction_of_peak: f64,
    /// Fraction of the step time spent in matrix products.
    pub matmul_share: f64,
    /// Time inside re-estimation over the rest of the step time (0 without re-estimation).
    pub reestimate_overhead: f64,
    /// The peaks measured at the start of the rounds (median).
    pub peak_gflops: f64,
}

/// One timed block of one network.
#[derive(Debug, Clone, Copy)]
struct Block {
    seconds: f64,
    in_matmul: f64,
    reestimating: f64,
    peak_gflops: f64,
}

/// A network ready to be timed: its trainer (warmed up) and its FLOPs per minibatch.
struct Subject {
    label: String,
    batch: usize,
    weights: usize,
    flops_per_example: f64,
    steps: usize,
    flops_per_step: f64,
    trainer: Trainer<f32>,
    blocks: Vec<Block>,
}

impl Subject {
    /// Builds and warms up the network of `spec`; its timed blocks train `examples` examples.
    fn new(spec: &Spec, batch: usize, examples: usize, opts: &Options) -> anyhow::Result<Self> {
        let resolved = spec.resolve(batch, opts.check_samples)?;
        let data = Arc::new(synthetic(batch * 4));
        let topology = resolved.topology(INPUTS, CLASSES, data.train.len())?;
        let every = resolved.preset.transforms.policy == crate::preset::PolicyKind::Every;
        let check_rows = if every {
            opts.check_samples.min(batch)
        } else {
            0
        };
        let (per_example, mut per_batch) =
            flops(&topology, every && resolved.flags.alpha, check_rows);
        match resolved.preset.train.optimizer {
            crate::preset::OptimizerKind::Muon => per_batch += muon_flops(&topology),
            crate::preset::OptimizerKind::Kfac => {
                per_batch += kfac_flops(&topology, batch, resolved.preset.train.kfac_settings());
            }
            _ => {}
        }
        let weights = topology.weight_count();
        let network = Network::<f32>::init(topology, 1);
        let mut trainer = Trainer::new(&resolved, Arc::clone(&data), network);
        for _ in 0..WARMUP_STEPS {
            trainer.step()?;
        }
        Ok(Subject {
            label: spec.label.clone(),
            batch,
            weights,
            flops_per_example: per_example + per_batch / batch as f64,
            steps: examples.div_ceil(batch).max(1),
            flops_per_step: per_example * batch as f64 + per_batch,
            trainer,
            blocks: Vec::new(),
        })
    }

    /// Trains one timed block.
    fn time_block(&mut self, peak_gflops: f64) -> anyhow::Result<()> {
        let reestimating_before = self.trainer.reestimate_seconds;
        kernels::profile(true);
        let started = Instant::now();
        for _ in 0..self.steps {
            self.trainer.step()?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let in_matmul = kernels::profile(false);
        self.blocks.push(Block {
            seconds,
            in_matmul,
            reestimating: self.trainer.reestimate_seconds - reestimating_before,
            peak_gflops,
        });
        Ok(())
    }

    fn row(&self) -> Row {
        let flops = self.steps as f64 * self.flops_per_step;
        let per_block = |f: &dyn Fn(&Block) -> f64| median(self.blocks.iter().map(f).collect());
        Row {
            label: self.label.clone(),
            batch: self.batch,
            examples_per_second: per_block(&|b| (self.steps * self.batch) as f64 / b.seconds),
            gflops: per_block(&|b| flops / b.seconds / 1e9),
            fraction_of_peak: per_block(&|b| flops / b.seconds / 1e9 / b.peak_gflops),
            matmul_gflops: per_block(&|b| flops / b.in_matmul.max(1e-12) / 1e9),
            matmul_fraction_of_peak: per_block(&|b| {
                flops / b.in_matmul.max(1e-12) / 1e9 / b.peak_gflops
            }),
            matmul_share: per_block(&|b| b.in_matmul / b.seconds),
            reestimate_overhead: per_block(&|b| b.reestimating / (b.seconds - b.reestimating)),
            peak_gflops: per_block(&|b| b.peak_gflops),
        }
    }
}

/// Prints a part of the report as soon as it is measured; a closed stdout (`ltmlp bench |
/// head`) ends nothing, the report is still returned whole.
fn show(text: &str) {
    use std::io::Write as _;
    let _ = write!(std::io::stdout().lock(), "{text}");
}

/// The median (the upper one for an even count); NaN for none.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Measures every network at one batch size in interleaved rounds: each round measures the
/// peak, then times one block of every network (in reverse order every other round), so that
/// all of them and the peak see the same machine (its speed drifts by tens of percent within a
/// minute when it is shared). Returns the rows and, when both paper networks ran, the
/// per-round costs of re-estimation (paper time over paper-never time, minus one).
fn measure_batch(batch: usize, opts: &Options) -> anyhow::Result<(Vec<Row>, Vec<f64>)> {
    let mut subjects = opts
        .nets
        .iter()
        .map(|&net| Subject::new(&net.spec(), batch, opts.examples, opts))
        .collect::<anyhow::Result<Vec<_>>>()?;
    time_rounds(&mut subjects, opts.repeats)?;
    let blocks_of = |net: Net| {
        subjects
            .iter()
            .find(|s| s.label == net.name())
            .map(|s| &s.blocks)
    };
    let costs = match (blocks_of(Net::Paper), blocks_of(Net::PaperNever)) {
        (Some(every), Some(never)) => every
            .iter()
            .zip(never)
            .map(|(e, n)| e.seconds / n.seconds - 1.0)
            .collect(),
        _ => Vec::new(),
    };
    Ok((subjects.iter().map(Subject::row).collect(), costs))
}

/// Times one block of every subject per round, after measuring the peak; every other round
/// runs them in reverse, so that none always comes right after the peak product (or always
/// last) and a drift within the round cancels out.
fn time_rounds(subjects: &mut [Subject], repeats: usize) -> anyhow::Result<()> {
    for round in 0..repeats.max(1) {
        let peak = measure_peak().gflops;
        let order: Vec<usize> = if round % 2 == 0 {
            (0..subjects.len()).collect()
        } else {
            (0..subjects.len()).rev().collect()
        };
        for i in order {
            subjects[i].time_block(peak)?;
        }
    }
    Ok(())
}

/// The scale sweep: at every size of `scale`, the plain and the paper network timed in
/// interleaved rounds at the first batch size, one line each with its FLOPs per example and
/// the time per example they cost.
fn measure_scale(scale: Scale, opts: &Options) -> anyhow::Result<String> {
    let batch = opts.batches.first().copied().unwrap_or(1000);
    let mut text = format!(
        "scale sweep: {}, batch {batch}, {} rounds; each block trains at most {} examples or \
         about {:.0} GFLOP\n{:<8} {:<22} {:>10} {:>10} {:>9} {:>9} {:>8} {:>7} {:>7}\n",
        scale.name(),
        opts.repeats.max(1),
        opts.examples,
        SCALE_BLOCK_FLOPS / 1e9,
        "network",
        "hidden (layers×units)",
        "weights",
        "MFLOP/ex",
        "ex/s",
        "µs/ex",
        "GFLOP/s",
        "%peak",
        "re-est",
    );
    show(&text);
    for hidden in scale.shapes() {
        let specs = scale_specs(&hidden);
        let mut subjects = Vec::new();
        for spec in &specs {
            // Size the block by FLOPs, so the widest network is not timed for minutes.
            let probe = Subject::new(spec, batch, batch, opts)?;
            let examples = ((SCALE_BLOCK_FLOPS / probe.flops_per_example) as usize)
                .clamp(batch, opts.examples.max(batch));
            drop(probe);
            subjects.push(Subject::new(spec, batch, examples, opts)?);
        }
        time_rounds(&mut subjects, opts.repeats)?;
        let shape = format!("{}×{}", hidden.len(), hidden[0]);
        let mut lines = String::new();
        for subject in &subjects {
            let row = subject.row();
            let _ = writeln!(
                lines,
                "{:<8} {:<22} {:>10} {:>10.1} {:>9.0} {:>9.1} {:>8.1} {:>6.0}% {:>6.1}%",
                row.label,
                shape,
                subject.weights,
                subject.flops_per_example / 1e6,
                row.examples_per_second,
                1e6 / row.examples_per_second,
                row.gflops,
                100.0 * row.fraction_of_peak,
                100.0 * row.reestimate_overhead,
            );
        }
        show(&lines);
        text.push_str(&lines);
    }
    Ok(text)
}

/// Synthetic data of MNIST shape: uniform pixels in [0, 1), uniform labels.
fn synthetic(train_rows: usize) -> Dataset<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(2012);
    let mut split = |rows: usize| {
        let inputs = Array2::from_shape_fn((rows, INPUTS), |_| rng.random_range(0.0f32..1.0));
        let classes = (0..rows).map(|i| (i % CLASSES) as Class).collect();
        Examples::classified(inputs, classes).expect("one class per row")
    };
    Dataset {
        train: split(train_rows),
        validation: split(VALIDATION_ROWS),
        test: split(VALIDATION_ROWS),
        classes: CLASSES,
        class_labels: (0..CLASSES as i64).collect(),
        input_shape: vec![28, 28],
        decoding: "synthetic".into(),
        normalisation: crate::data::Normalisation {
            mean: vec![0.0; INPUTS],
            std: vec![1.0; INPUTS],
        },
    }
}

/// Runs the whole benchmark and returns the report as text, printing each batch size's rows
/// when its rounds finish.
pub fn run(opts: &Options) -> anyhow::Result<String> {
    // With several threads, the peak on one thread too: a ratio far below the thread count
    // means vCPUs that share a core, where no network can scale either.
    let single_thread_peak = (opts.threads > 1).then(|| {
        kernels::set_threads(1);
        measure_peak().gflops
    });
    kernels::set_threads(opts.threads);
    // On a pool of its own, as every training run (`kernels::on_own_pool`).
    kernels::on_own_pool(|| measure_all(opts, single_thread_peak))
}

/// [`run`] after the single-thread peak, on the benchmark's threads.
fn measure_all(opts: &Options, single_thread_peak: Option<f64>) -> anyhow::Result<String> {
    let peaks = single_thread_peak.map_or(String::new(), |one| {
        let all = measure_peak().gflops;
        format!(
            "matrix-multiply peak: {one:.1} GFLOP/s on 1 thread, {all:.1} on {} ({:.2}×)\n",
            opts.threads,
            all / one
        )
    });
    if let Some(scale) = opts.scale {
        let head = format!(
            "ltmlp bench: f32, {} thread(s), backend {}\n{peaks}",
            opts.threads,
            kernels::backend()
        );
        show(&head);
        return Ok(head + &measure_scale(scale, opts)?);
    }
    let mut out = String::new();
    let head = format!(
        "ltmlp bench: f32, {} thread(s), backend {}\n\
         {} interleaved rounds per batch size; each measures the peak ({n}×{n}×{n} product, \
         best of {PEAK_REPEATS}), then {} examples of every network; medians over the rounds\n\
         {:<12} {:>6} {:>10} {:>8} {:>7} {:>10} {:>7} {:>8} {:>7} {:>6}\n",
        opts.threads,
        kernels::backend(),
        opts.repeats.max(1),
        opts.examples,
        "network",
        "batch",
        "ex/s",
        "GFLOP/s",
        "%peak",
        "mm GFLOP/s",
        "mm%pk",
        "mm share",
        "re-est",
        "peak",
        n = PEAK_SIZE,
    );
    let head = format!("{peaks}{head}");
    show(&head);
    out.push_str(&head);
    for &batch in &opts.batches {
        let (rows, costs) = measure_batch(batch, opts)?;
        let mut text = String::new();
        for row in &rows {
            let _ = writeln!(
                text,
                "{:<12} {:>6} {:>10.0} {:>8.1} {:>6.0}% {:>10.1} {:>6.0}% {:>7.0}% {:>6.1}% {:>6.1}",
                row.label,
                row.batch,
                row.examples_per_second,
                row.gflops,
                100.0 * row.fraction_of_peak,
                row.matmul_gflops,
                100.0 * row.matmul_fraction_of_peak,
                100.0 * row.matmul_share,
                100.0 * row.reestimate_overhead,
                row.peak_gflops,
            );
        }
        if !costs.is_empty() {
            let rounds: Vec<String> = costs
                .iter()
                .map(|c| format!("{:+.1}%", 100.0 * c))
                .collect();
            let _ = writeln!(
                text,
                "re-estimating every minibatch at batch {batch}: paper {:+.1}% time over \
                 paper-never (median of rounds {})",
                100.0 * median(costs.clone()),
                rounds.join(", "),
            );
        }
        show(&text);
        out.push_str(&text);
    }
    let foot = "GFLOP/s counts matrix-multiply FLOPs only (forward 2·W, backward 4·W less the \
                input layer's errors, α compensation, output check); mm = time inside the \
                matrix products only; re-est = time inside re-estimation over the rest of the \
                step.\n";
    show(foot);
    out.push_str(foot);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Shortcuts, UnitKind};

    fn paper_topology() -> Topology {
        let kinds = vec![
            UnitKind::Input,
            UnitKind::Tanh,
            UnitKind::Tanh,
            UnitKind::Softmax,
        ];
        Topology::new(vec![784, 800, 800, 10], kinds, Shortcuts::All, None).unwrap()
    }

    #[test]
    fn flops_count_the_step_the_compensation_and_the_check() {
        let topology = paper_topology();
        let w = (784 * 800 + 784 * 800 + 784 * 10 + 800 * 800 + 800 * 10 + 800 * 10) as f64;
        // Errors of the hidden layers: from layer 2 into layer 1 (800×800, 10×800) and from
        // the output into layer 2 (10×800).
        let hidden_out = (800 * 800 + 800 * 10 + 800 * 10) as f64;
        let (per_example, per_batch) = flops(&topology, false, 0);
        assert_eq!(per_example, 4.0 * w + 2.0 * hidden_out);
        assert_eq!(per_batch, 0.0);
        // α of layer 1 moves onto W[2][0] and W[3][0]; α of layer 2 onto W[3][0] and W[3][1].
        let compensation = 2.0
            * (800.0 * 800.0 * 784.0
                + 10.0 * 800.0 * 784.0
                + 10.0 * 800.0 * 784.0
                + 10.0 * 800.0 * 800.0);
        let (_, per_batch) = flops(&topology, true, 20);
        assert_eq!(per_batch, compensation + 2.0 * w * 20.0);
    }

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(Vec::new()).is_nan());
    }
}
