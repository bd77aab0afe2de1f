//! The training loop, one minibatch at a time: batching with input noise, forward pass,
//! scheduled re-estimation of α, β, γ, backward pass, SGD step, epoch evaluation and
//! statistics. It knows nothing about threads or terminals; `session` drives it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::{s, Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

use super::adam::AdamSettings;
use super::guard::{self, GuardMode, GuardSection};
use super::kfac::KfacSettings;
use super::muon::MuonSettings;
use super::optimizer::{FollowRules, Optimize, Optimizer, StepSettings};
use super::policy::{Policy, UpdateSource};
use super::rollback::{self, Rollback};
use super::schedule::{Schedule, When};
use crate::data::{BatchOrder, Class, Dataset, Targets};
use crate::net::{
    BatchLoss, Flags, Moments, Network, Param, Reparam, Settings, Target, TransformError, Workspace,
};
use crate::preset::{Resolved, Task};
use crate::protocol::{TransformCause, TransformEvent};
use crate::real::Real;
use crate::stats::{layer_stats, LayerStats, Thresholds};

mod epoch_end;
pub use epoch_end::{target_of, CompletedEpoch, EpochEnding, PendingEpoch};

/// Rows per chunk when evaluating whole splits.
const EVAL_CHUNK: usize = 500;

/// Why training cannot go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("diverged at iteration {iteration} (epoch {epoch}): {reason}; the last good parameters are kept")]
pub struct Divergence {
    pub iteration: u64,
    pub epoch: usize,
    pub reason: String,
}

/// Everything a checkpoint must hold to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct TrainerState<T: Real> {
    pub net: Network<T>,
    pub optimizer: Optimizer<T>,
    pub order: BatchOrder,
    pub noise_rng: Pcg64Mcg,
    pub flags: Flags,
    pub rate_scale: f64,
    pub momentum_override: Option<f64>,
    pub iteration: u64,
    pub epoch: usize,
    pub last_validation_error: Option<f64>,
    pub pending_events: Vec<TransformEvent>,
    pub train_seconds: f64,
    /// The part of `train_seconds` spent re-estimating α, β, γ.
    pub reestimate_seconds: f64,
    pub examples_seen: u64,
    /// The last minibatch (an on-demand re-estimation right after resuming uses it).
    pub batch_input: Array2<T>,
    /// The blow-up watch of `GammaControl::Rollback` and its kept states (empty otherwise).
    pub rollback: Rollback<T>,
}

/// One training run's complete state.
pub struct Trainer<T: Real> {
    pub net: Network<T>,
    data: Arc<Dataset<T>>,
    task: Task,
    settings: Settings,
    policy: Policy,
    schedule: Schedule,
    thresholds: Thresholds,
    optimizer: Optimizer<T>,
    adam: AdamSettings,
    muon: MuonSettings,
    kfac: KfacSettings,
    guard: GuardSection,
    /// Per layer and unit: collapsed at the guard's last look (warnings go out on a change).
    guard_seen: Vec<Vec<bool>>,
    ws: Workspace<T>,
    /// Large enough for the probes from the start: a forward pass over more rows than a
    /// workspace holds replaces it with a larger one, and the evaluation is cut into chunks of
    /// its capacity — every evaluation workspace must keep the same capacity throughout, so
    /// that the splits are cut (and summed) alike on any thread and in any order.
    eval_ws: Workspace<T>,
    /// The other threads' workspaces when an evaluation's chunks are shared among threads
    /// (made at the first such evaluation, with `eval_ws`'s capacity).
    side_ws: Vec<Workspace<T>>,
    /// The workspace of an evaluation overlapped with the next epoch (back from its thread).
    overlap_ws: Option<Workspace<T>>,
    /// Overlap each epoch's evaluation with the next epoch, and share the last one's among the
    /// free cores (`train.parallel_evaluation`, when [`evaluation_has_a_free_core`]).
    parallel_evaluation: bool,
    moments: Moments,
    order: BatchOrder,
    noise_rng: Pcg64Mcg,
    batch_indices: Vec<usize>,
    batch_clean: Array2<T>,
    batch_input: Array2<T>,
    batch_labels: Vec<Class>,
    /// The minibatch's regression targets (no columns for other tasks).
    batch_values: Array2<T>,
    sample: Array2<T>,
    /// The training examples of `sample` (the `sample` policy's; empty otherwise).
    pub sample_indices: Vec<usize>,
    /// `ltmlp run --trace FILE`: a line per step (src/train/trace.rs).
    pub trace: Option<super::trace::Trace>,
    /// Why the trace stopped, for the session to log (the trainer has no event channel).
    pub trace_failure: Option<String>,
    check_rows: usize,
    check_before: Array2<T>,
    probe_rows: usize,
    /// The first validation rows, decoded once: the output-change check and the statistics
    /// probe read them at every re-estimation and snapshot.
    probe: Arc<Array2<T>>,
    /// The workspace of statistics probes measured on another thread (back from it).
    stats_ws: Option<Workspace<T>>,
    input_noise: f64,
    weight_decay: f64,
    train_eval_size: usize,
    /// The validation split is the test set: evaluate it once.
    monitor_test: bool,
    /// p of `GammaControl::Step`: each unit's outgoing steps are divided by γ^p.
    gamma_step_power: f64,
    /// The loss watch and kept states of `GammaControl::Rollback`.
    rollback: Rollback<T>,
    /// User multiplier on the scheduled learning rate.
    rate_scale: f64,
    momentum_override: Option<f64>,
    pub iteration: u64,
    /// Completed epochs.
    pub epoch: usize,
    pub iterations_per_epoch: u64,
    /// Iterations of the whole run (the budget schedule's progress without a time budget).
    total_iterations: u64,
    time_budget_seconds: Option<f64>,
    last_validation_error: Option<f64>,
    pending_events: Vec<TransformEvent>,
    pub train_seconds: f64,
    /// The part of `train_seconds` spent re-estimating α, β, γ within minibatch steps
    /// (epoch-end and on-demand re-estimations are outside `train_seconds`).
    pub reestimate_seconds: f64,
    pub examples_seen: u64,
    /// Seconds spent on epoch-end re-estimations, outside the steps (kept through rollbacks and
    /// restores: it counts time spent, not progress).
    pub reestimate_outside_steps: f64,
}

/// The statistics probe (the first validation rows) and its thresholds: shared, so that a copy
/// of the network can be measured on another thread.
#[derive(Clone)]
pub struct StatsProbe<T: Real> {
    probe: Arc<Array2<T>>,
    rows: usize,
    thresholds: Thresholds,
}

impl<T: Real> StatsProbe<T> {
    /// Statistics of every hidden layer of `net` on the probe.
    pub fn measure(&self, net: &Network<T>, ws: &mut Workspace<T>) -> Vec<LayerStats> {
        let probe = self.probe.slice(s![..self.rows, ..]);
        layer_stats(net, probe, ws, self.thresholds)
    }
}

/// How many runs this process trains at once (a sweep's `--jobs`): the evaluation's core budget.
static CONCURRENT_RUNS: AtomicUsize = AtomicUsize::new(1);

/// Declares how many runs this process trains at once (a sweep's local workers: `--jobs`).
pub fn set_concurrent_runs(runs: usize) {
    CONCURRENT_RUNS.store(runs.max(1), Ordering::Relaxed);
}

/// How many runs this process trains at once.
fn concurrent_runs() -> usize {
    CONCURRENT_RUNS.load(Ordering::Relaxed)
}

/// Whether the side-by-side evaluation has a core to itself: the products use one thread and
/// the machine has at least two cores per run trained at once. With `--jobs` equal to the
/// cores, three evaluation threads per run would crowd the other runs' training steps.
fn evaluation_has_a_free_core(threads: usize) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads == 1 && cores >= 2 * concurrent_runs()
}

/// Minibatches in an epoch of `train_examples` examples (the last one may be short).
pub fn iterations_per_epoch(train_examples: u64, batch_size: usize) -> u64 {
    train_examples.div_ceil(batch_size as u64).max(1)
}

impl<T: Real> Trainer<T> {
    pub fn new(resolved: &Resolved, data: Arc<Dataset<T>>, net: Network<T>) -> Self {
        let p = &resolved.preset;
        let batch = p.train.batch_size;
        let input_dim = data.input_dim();
        let output_dim = net.topology.size(net.depth());
        let seed = p.train.seed;
        let mut sample_rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5a3b_1e00);
        let mut sample_idx: Vec<usize> = (0..data.train.len()).collect();
        sample_idx.shuffle(&mut sample_rng);
        sample_idx.truncate(p.transforms.sample_size.min(data.train.len()));
        let sample = if p.transforms.policy == crate::preset::PolicyKind::Sample {
            data.train.select(&sample_idx).inputs().into_owned()
        } else {
            sample_idx.clear();
            Array2::zeros((0, input_dim))
        };
        let check_rows = p.transforms.check_samples.min(data.validation.len());
        let probe_rows = p.stats.probe_size.min(data.validation.len());
        let n_train = data.train.len() as u64;
        Trainer {
            task: p.model.task,
            settings: Settings {
                flags: resolved.flags,
                gamma_form: p.transforms.gamma_form,
                gamma_epsilon: p.transforms.gamma_epsilon(),
                gamma_control: p.transforms.gamma_control,
                gamma_bound: p.transforms.gamma_bound,
            },
            policy: Policy::new(&p.transforms),
            schedule: Schedule::new(&p.train),
            thresholds: Thresholds {
                saturated_slope: p.stats.saturated_slope,
                collapsed_std: p.stats.collapsed_std,
                gamma_capped_above: Thresholds::gamma_cap_level(
                    p.transforms.gamma_form,
                    p.transforms.gamma_epsilon(),
                ),
            },
            optimizer: Optimizer::new(p.train.optimizer, &net.topology),
            adam: p.train.adam_settings(),
            muon: p.train.muon_settings(),
            kfac: p.train.kfac_settings(),
            guard: p.guard,
            guard_seen: Vec::new(),
            ws: Workspace::new(&net.topology, batch),
            eval_ws: Workspace::new(
                &net.topology,
                EVAL_CHUNK.max(batch).max(probe_rows).max(check_rows),
            ),
            side_ws: Vec::new(),
            overlap_ws: None,
            parallel_evaluation: p.train.parallel_evaluation
                && evaluation_has_a_free_core(p.train.threads),
            moments: Moments::new(&net),
            order: BatchOrder::new(data.train.len(), p.data.shuffle, seed),
            noise_rng: Pcg64Mcg::seed_from_u64(seed ^ 0x0000_0015_e000),
            batch_indices: vec![0; batch],
            batch_clean: Array2::zeros((batch, input_dim)),
            batch_input: Array2::zeros((batch, input_dim)),
            batch_labels: vec![0; batch],
            batch_values: Array2::zeros((batch, data.train.target_dim())),
            sample,
            sample_indices: sample_idx,
            trace: None,
            trace_failure: None,
            check_rows,
            check_before: Array2::zeros((check_rows, output_dim)),
            probe_rows,
            probe: Arc::new(
                data.validation
                    .rows(0, check_rows.max(probe_rows))
                    .into_owned(),
            ),
            stats_ws: None,
            input_noise: p.train.input_noise,
            weight_decay: p.train.weight_decay,
            train_eval_size: p.train.train_eval_size,
            monitor_test: p.data.monitor == crate::preset::Monitor::Test,
            gamma_step_power: p.transforms.gamma_step_power,
            rollback: Rollback::default(),
            rate_scale: 1.0,
            momentum_override: None,
            iteration: 0,
            epoch: 0,
            iterations_per_epoch: iterations_per_epoch(n_train, batch),
            total_iterations: (p.train.epochs as u64)
                .saturating_mul(iterations_per_epoch(n_train, batch)),
            time_budget_seconds: p.train.time_budget_seconds,
            last_validation_error: None,
            pending_events: Vec::new(),
            train_seconds: 0.0,
            reestimate_seconds: 0.0,
            examples_seen: 0,
            reestimate_outside_steps: 0.0,
            net,
            data,
        }
    }

    /// A copy of the complete training state.
    pub fn snapshot(&self) -> TrainerState<T> {
        TrainerState {
            net: self.net.clone(),
            optimizer: self.optimizer.clone(),
            order: self.order.clone(),
            noise_rng: self.noise_rng.clone(),
            flags: self.settings.flags,
            rate_scale: self.rate_scale,
            momentum_override: self.momentum_override,
            iteration: self.iteration,
            epoch: self.epoch,
            last_validation_error: self.last_validation_error,
            pending_events: self.pending_events.clone(),
            train_seconds: self.train_seconds,
            reestimate_seconds: self.reestimate_seconds,
            examples_seen: self.examples_seen,
            batch_input: self.batch_input.clone(),
            rollback: self.rollback.clone(),
        }
    }

    /// Continues from a snapshot taken of a trainer built from the same preset and data.
    pub fn restore(&mut self, state: TrainerState<T>) {
        self.net = state.net;
        self.optimizer = state.optimizer;
        self.order = state.order;
        self.noise_rng = state.noise_rng;
        self.settings.flags = state.flags;
        self.rate_scale = state.rate_scale;
        self.momentum_override = state.momentum_override;
        self.iteration = state.iteration;
        self.epoch = state.epoch;
        self.last_validation_error = state.last_validation_error;
        self.pending_events = state.pending_events;
        self.train_seconds = state.train_seconds;
        self.reestimate_seconds = state.reestimate_seconds;
        self.examples_seen = state.examples_seen;
        if state.batch_input.dim() == self.batch_input.dim() {
            self.batch_input = state.batch_input;
        }
        self.rollback = state.rollback;
    }

    /// The last minibatch (noisy inputs) and its labels.
    pub fn last_batch(&self) -> (ArrayView2<'_, T>, &[Class]) {
        (self.batch_input.view(), &self.batch_labels)
    }

    /// The data this trainer trains on.
    pub fn data(&self) -> &Arc<Dataset<T>> {
        &self.data
    }

    /// Whether the output is a softmax classifier (otherwise a linear reconstruction).
    pub fn classify(&self) -> bool {
        self.task == Task::Classify
    }

    pub fn flags(&self) -> Flags {
        self.settings.flags
    }

    /// Where the schedules are: the epoch, and the fraction of the time budget (or, without
    /// one, of the run's iterations) used so far.
    fn when(&self) -> When {
        let progress = match self.time_budget_seconds {
            Some(budget) => self.train_seconds / budget,
            None => self.iteration as f64 / self.total_iterations.max(1) as f64,
        };
        When {
            epoch: self.epoch,
            progress,
        }
    }

    pub fn learning_rate(&self) -> f64 {
        self.schedule.learning_rate(self.when()) * self.rate_scale
    }

    pub fn momentum(&self) -> f64 {
        self.momentum_override
            .unwrap_or_else(|| self.schedule.momentum(self.when()))
    }

    /// The biases' momentum: their own constant one if the preset sets it, else the weights'.
    pub fn bias_momentum(&self) -> f64 {
        self.schedule
            .bias_momentum()
            .unwrap_or_else(|| self.momentum())
    }

    pub fn scale_learning_rate(&mut self, factor: f64) {
        if factor.is_finite() && factor > 0.0 {
            self.rate_scale *= factor;
        }
    }

    pub fn set_learning_rate(&mut self, rate: f64) {
        let scheduled = self.schedule.learning_rate(self.when());
        if rate.is_finite() && rate > 0.0 && scheduled > 0.0 {
            self.rate_scale = rate / scheduled;
        }
    }

    /// Holds the momentum at `momentum` over the schedule's ramp, once the preset's own rule
    /// for `train.momentum` (`super::tunables::retune` on `resolved`, this run's settings)
    /// accepts it; refused with the preset's message otherwise, nothing changed.
    pub fn set_momentum(&mut self, resolved: &Resolved, momentum: f64) -> Result<(), String> {
        super::tunables::retune(resolved, "train.momentum", &momentum.to_string())?;
        self.momentum_override = Some(momentum);
        Ok(())
    }

    /// Takes the live settings (`super::tunables`) of `p`, a validated preset of the same
    /// experiment: the schedule, noise, decay, update policy, γ's form and ε, and the run's
    /// length. The user's rate and momentum adjustments stay in force.
    pub fn retune(&mut self, p: &crate::preset::Preset) {
        self.schedule = Schedule::new(&p.train);
        self.input_noise = p.train.input_noise;
        self.weight_decay = p.train.weight_decay;
        self.muon = p.train.muon_settings();
        self.kfac = p.train.kfac_settings();
        self.policy = Policy::new(&p.transforms);
        self.settings.gamma_form = p.transforms.gamma_form;
        self.settings.gamma_epsilon = p.transforms.gamma_epsilon();
        if p.transforms.gamma_control != self.settings.gamma_control {
            // A control chosen mid-run starts its own watch: states kept under another
            // control (or before a switch away and back) are not gone back to.
            self.rollback = Rollback::default();
        }
        self.settings.gamma_control = p.transforms.gamma_control;
        self.settings.gamma_bound = p.transforms.gamma_bound;
        self.gamma_step_power = p.transforms.gamma_step_power;
        self.thresholds.gamma_capped_above =
            Thresholds::gamma_cap_level(p.transforms.gamma_form, p.transforms.gamma_epsilon());
        self.total_iterations = (p.train.epochs as u64).saturating_mul(self.iterations_per_epoch);
        self.guard = p.guard;
    }

    /// The γ guard's look at a statistics probe: acts on the collapsed units `[guard]` says to
    /// and records one event per unit (with the largest output change of all the actions).
    /// Returns how many units it acted on.
    pub fn guard(&mut self, layers: &[LayerStats]) -> Result<usize, TransformError> {
        let GuardSection { mode, gamma_cap } = self.guard;
        if mode == GuardMode::Off {
            return Ok(0);
        }
        let actions =
            guard::collapsed_units(&self.net, layers, mode, gamma_cap, &mut self.guard_seen);
        if actions.is_empty() {
            return Ok(0);
        }
        let seed = self.iteration ^ 0x6a09_e667;
        let change = if mode == GuardMode::Warn {
            0.0
        } else {
            let (change, reparam) = self.measure_change(|net| {
                Ok(guard::apply_to_network(
                    net, &actions, mode, gamma_cap, seed,
                ))
            })?;
            self.follow(&reparam);
            change
        };
        for a in &actions {
            let cause = TransformCause::Guard {
                layer: a.layer,
                unit: a.unit,
                action: mode,
            };
            self.record(cause, change);
        }
        Ok(actions.len())
    }

    /// How many transformation changes wait for the epoch's metrics.
    pub fn pending_event_count(&self) -> usize {
        self.pending_events.len()
    }

    /// The waiting transformation changes from index `from` on.
    pub fn pending_events_since(&self, from: usize) -> Vec<TransformEvent> {
        self.pending_events.get(from..).unwrap_or_default().to_vec()
    }

    /// Transformation changes since the last call.
    pub fn take_transform_events(&mut self) -> Vec<TransformEvent> {
        std::mem::take(&mut self.pending_events)
    }

    /// Whether the epoch just completed by the last step.
    pub fn at_epoch_boundary(&self) -> bool {
        self.iteration > 0 && self.iteration.is_multiple_of(self.iterations_per_epoch)
    }

    /// Fills the minibatch buffers with the next examples and adds input noise.
    fn load_batch(&mut self) {
        self.order.next_batch(&mut self.batch_indices);
        for (row, &i) in self.batch_indices.iter().enumerate() {
            self.data.train.fill_row(i, self.batch_clean.row_mut(row));
            match self.data.train.targets() {
                Targets::Classes(c) => self.batch_labels[row] = c[i],
                Targets::Values(v) => self.batch_values.row_mut(row).assign(&v.row(i)),
            }
        }
        self.batch_input.assign(&self.batch_clean);
        if self.input_noise > 0.0 {
            let sigma = self.input_noise;
            let rng = &mut self.noise_rng;
            self.batch_input.mapv_inplace(|v| {
                let z: f64 = StandardNormal.sample(rng);
                v + T::of(sigma * z)
            });
        }
    }

    /// One minibatch: forward, scheduled re-estimation, backward, update.
    pub fn step(&mut self) -> Result<BatchLoss, Divergence> {
        let started = Instant::now();
        if self.watches_for_blow_up() && self.rollback.is_empty() {
            self.rollback
                .keep(&self.net, &self.optimizer, self.iteration);
        }
        self.load_batch();
        let due = if self.settings.flags.any() {
            self.policy
                .within_step(self.iteration, self.epoch, self.last_validation_error)
        } else {
            None
        };
        if due == Some(UpdateSource::Sample) {
            let reestimate_started = Instant::now();
            let result = self.reestimate_from(UpdateSource::Sample, TransformCause::Scheduled);
            self.reestimate_seconds += reestimate_started.elapsed().as_secs_f64();
            result
                .map(|_| ())
                .map_err(|e| self.divergence(e.to_string()))?;
        }
        if due == Some(UpdateSource::CurrentBatch) {
            self.moments.reset();
            let moments = Some(&mut self.moments);
            self.net
                .forward_collecting(self.batch_input.view(), &mut self.ws, moments);
            self.reestimate_in_step()
                .map_err(|e| self.divergence(e.to_string()))?;
        } else {
            self.net
                .forward_train(self.batch_input.view(), &mut self.ws);
        }
        let target = match self.task {
            Task::Classify => Target::Labels(&self.batch_labels),
            Task::Autoencode => Target::Values(self.batch_clean.view()),
            Task::Regress => Target::Values(self.batch_values.view()),
        };
        let loss = self.net.output_delta(target, &mut self.ws);
        if !loss.objective.is_finite() {
            return self.roll_back_or_diverge(format!("training loss is {}", loss.objective));
        }
        self.net.backpropagate(&mut self.ws);
        // The gradient is δᵀ·y and the loss (so every activation) is finite: finite errors δ
        // mean a finite gradient, and checking δ costs far less than checking every weight's.
        if !self.ws.deltas_finite() {
            return self.roll_back_or_diverge("the gradient holds NaN or Inf".to_string());
        }
        let settings = StepSettings {
            rate: self.learning_rate(),
            momenta: (self.momentum(), self.bias_momentum()),
            decay: self.weight_decay,
            divide_by_gamma: (self.settings.flags.gamma
                && self.settings.gamma_control.divides_steps())
            .then_some(self.gamma_step_power),
            adam: self.adam,
            muon: self.muon,
            kfac: self.kfac,
        };
        self.optimizer.step(&mut self.net, &self.ws, &settings);
        self.net.update_running(&self.ws);
        self.trace_step(&loss, due, settings.rate, settings.momenta);
        self.iteration += 1;
        if self.watches_for_blow_up() {
            self.watch_for_blow_up(loss.mean());
        }
        self.examples_seen += self.batch_indices.len() as u64;
        self.train_seconds += started.elapsed().as_secs_f64();
        Ok(loss)
    }

    /// Writes the step's trace line (`ltmlp run --trace`); a trace that cannot be written is
    /// dropped with a warning, and training goes on.
    fn trace_step(
        &mut self,
        loss: &BatchLoss,
        due: Option<UpdateSource>,
        rate: f64,
        momenta: (f64, f64),
    ) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        let step = super::trace::TracedStep {
            iteration: self.iteration,
            epoch: self.epoch,
            indices: &self.batch_indices,
            loss,
            rate,
            momenta,
            reestimated: due.map(|d| match d {
                UpdateSource::Sample => "sample",
                _ => "batch",
            }),
            net: &self.net,
        };
        if let Err(e) = trace.step(step) {
            self.trace_failure = Some(format!("{e}; the trace stops here"));
            self.trace = None;
        }
    }

    /// Whether γ is on under `GammaControl::Rollback`.
    fn watches_for_blow_up(&self) -> bool {
        self.settings.flags.gamma && self.settings.gamma_control.rolls_back()
    }

    /// Under `GammaControl::Rollback`: goes back to a kept state at half the rate when the
    /// smoothed loss jumps, else keeps the state every `rollback::KEEP_EVERY` minibatches
    /// (and, in `step`, before the watch's first minibatch).
    fn watch_for_blow_up(&mut self, loss: f64) {
        if self.rollback.jumped(loss) {
            self.roll_back();
        } else if self.iteration.is_multiple_of(rollback::KEEP_EVERY) {
            self.rollback
                .keep(&self.net, &self.optimizer, self.iteration);
        }
    }

    /// Brings back the rollback's kept state at half the rate; false when none is kept.
    fn roll_back(&mut self) -> bool {
        let Some(kept) = self.rollback.take() else {
            return false;
        };
        self.net = kept.net;
        self.optimizer = kept.optimizer;
        self.rate_scale *= 0.5;
        self.record(TransformCause::Rollback { to: kept.iteration }, f64::NAN);
        true
    }

    /// A step whose loss or gradient is not finite: under `GammaControl::Rollback` with a kept
    /// state, the state comes back and the step counts with no examples; otherwise the run
    /// has diverged.
    fn roll_back_or_diverge(&mut self, reason: String) -> Result<BatchLoss, Divergence> {
        if !(self.watches_for_blow_up() && self.roll_back()) {
            return Err(self.divergence(reason));
        }
        self.iteration += 1;
        self.examples_seen += self.batch_indices.len() as u64;
        Ok(BatchLoss::default())
    }

    fn divergence(&self, reason: String) -> Divergence {
        Divergence {
            iteration: self.iteration,
            epoch: self.epoch,
            reason,
        }
    }

    /// Re-estimates from the moments that the step's forward pass collected, checks the output
    /// change on the minibatch's first rows and brings the cached activations up to date for
    /// the backward pass. The minibatch's outputs before the change are already in the
    /// workspace, so the check costs one forward pass of its rows, not two.
    fn reestimate_in_step(&mut self) -> Result<(), TransformError> {
        let started = Instant::now();
        let rows = self.check_rows.min(self.ws.rows());
        self.check_before
            .slice_mut(s![..rows, ..])
            .assign(&self.ws.output().slice(s![..rows, ..]));
        let result = self.net.reestimate(&self.moments, &self.settings);
        let outcome = result.map(|reparam| {
            self.follow(&reparam);
            let change = if rows == 0 {
                f64::NAN
            } else {
                let probe = self.batch_input.slice(s![..rows, ..]);
                self.net.forward(probe, &mut self.eval_ws);
                largest_difference(
                    self.check_before.slice(s![..rows, ..]),
                    self.eval_ws.output(),
                )
            };
            self.record(TransformCause::Scheduled, change);
            self.net.refresh_activations(&mut self.ws);
        });
        self.reestimate_seconds += started.elapsed().as_secs_f64();
        outcome
    }

    /// Applies a re-estimation from `moments`, measuring the output change on the check batch.
    fn apply_checked(
        &mut self,
        moments: &Moments,
        settings: Settings,
        cause: TransformCause,
    ) -> Result<TransformEvent, TransformError> {
        let (change, reparam) = self.measure_change(|net| net.reestimate(moments, &settings))?;
        self.follow(&reparam);
        Ok(self.record(cause, change))
    }

    /// The optimizer follows a reparametrisation the network has just made.
    fn follow(&mut self, reparam: &Reparam<T>) {
        let rules = FollowRules {
            momentum_follows_gamma: self.settings.gamma_control.rescales_momentum(),
        };
        self.optimizer.follow(&self.net, reparam, rules);
    }

    /// Runs `change` on the network and returns the largest output change on the check batch
    /// (NaN when no check batch is configured) with what `change` returned.
    fn measure_change<R>(
        &mut self,
        change: impl FnOnce(&mut Network<T>) -> Result<R, TransformError>,
    ) -> Result<(f64, R), TransformError> {
        let rows = self.check_rows;
        if rows == 0 {
            let made = change(&mut self.net)?;
            return Ok((f64::NAN, made));
        }
        let probe = self.probe.slice(s![..rows, ..]);
        self.net.forward(probe, &mut self.eval_ws);
        self.check_before.assign(&self.eval_ws.output());
        let made = change(&mut self.net)?;
        self.net.forward(probe, &mut self.eval_ws);
        let difference = largest_difference(self.check_before.view(), self.eval_ws.output());
        Ok((difference, made))
    }

    fn record(&mut self, cause: TransformCause, change: f64) -> TransformEvent {
        let event = TransformEvent {
            iteration: self.iteration,
            cause,
            flags: self.settings.flags,
            max_output_change: change,
        };
        self.pending_events.push(event);
        event
    }

    /// Moments from the given source, using the evaluation workspace.
    fn moments_from(&mut self, source: UpdateSource) -> Moments {
        match source {
            UpdateSource::Sample => {
                Moments::of_batch(&self.net, self.sample.view(), &mut self.eval_ws)
            }
            UpdateSource::CurrentBatch => {
                // Outside a step: the last minibatch's inputs, with the current weights.
                Moments::of_batch(&self.net, self.batch_input.view(), &mut self.eval_ws)
            }
            UpdateSource::TrainingSetWithNoise => {
                let mut moments = Moments::new(&self.net);
                let n = self.data.train.len();
                let chunk = self.batch_input.nrows();
                let mut start = 0;
                while start < n {
                    let end = (start + chunk).min(n);
                    let rows = end - start;
                    let mut buf = self.batch_input.slice_mut(s![..rows, ..]);
                    self.data.train.fill_rows(start, buf.view_mut());
                    let sigma = self.input_noise;
                    let rng = &mut self.noise_rng;
                    buf.mapv_inplace(|v| {
                        let z: f64 = StandardNormal.sample(rng);
                        v + T::of(sigma * z)
                    });
                    self.net.forward(buf.view(), &mut self.eval_ws);
                    moments.accumulate(&self.eval_ws);
                    start = end;
                }
                moments
            }
        }
    }

    fn reestimate_from(
        &mut self,
        source: UpdateSource,
        cause: TransformCause,
    ) -> Result<TransformEvent, TransformError> {
        let moments = self.moments_from(source);
        self.apply_checked(&moments, self.settings, cause)
    }

    /// Re-estimates the active transformations now (the user's request).
    pub fn reestimate_now(&mut self) -> Result<TransformEvent, TransformError> {
        let source = self.policy.on_demand_source();
        self.reestimate_from(source, TransformCause::Manual)
    }

    /// Switches one of α, β, γ; the network function is preserved. On failure nothing changes.
    pub fn toggle(&mut self, which: Param) -> Result<TransformEvent, TransformError> {
        let on = !self.settings.flags.get(which);
        if on && !self.optimizer.can_follow(which) {
            return Err(TransformError::CannotFollow {
                optimizer: self.optimizer.kind().title(),
                param: which,
            });
        }
        let mut settings = self.settings;
        settings.flags.set(which, on);
        let cause = TransformCause::Switch { param: which, on };
        let (change, reparam) = if on {
            let moments = self.moments_from(self.policy.on_demand_source());
            self.measure_change(|net| net.reestimate(&moments, &settings))?
        } else {
            self.measure_change(|net| net.neutralise(which))?
        };
        self.follow(&reparam);
        self.settings = settings;
        Ok(self.record(cause, change))
    }

    /// The statistics probe, to measure a copy of the network on another thread.
    pub fn stats_probe(&self) -> StatsProbe<T> {
        StatsProbe {
            probe: Arc::clone(&self.probe),
            rows: self.probe_rows,
            thresholds: self.thresholds,
        }
    }

    /// A workspace for probes measured on another thread: with the capacity of the evaluation
    /// workspace, so that they cut the probe as [`Trainer::layer_stats`] does.
    pub fn stats_workspace(&mut self) -> Workspace<T> {
        self.stats_ws
            .take()
            .unwrap_or_else(|| self.spare_workspace())
    }

    /// Takes back a probe's workspace, for the next one.
    pub fn keep_stats_workspace(&mut self, ws: Workspace<T>) {
        self.stats_ws = Some(ws);
    }

    /// Statistics of every hidden layer on the probe batch.
    pub fn layer_stats(&mut self) -> Vec<LayerStats> {
        self.stats_probe().measure(&self.net, &mut self.eval_ws)
    }

    pub fn examples_per_second(&self) -> f64 {
        if self.train_seconds > 0.0 {
            self.examples_seen as f64 / self.train_seconds
        } else {
            0.0
        }
    }
}

/// The largest absolute difference between two equally shaped output batches.
fn largest_difference<T: Real>(before: ArrayView2<T>, after: ArrayView2<T>) -> f64 {
    before
        .iter()
        .zip(after.iter())
        .fold(0.0f64, |m, (a, b)| m.max((a.f64() - b.f64()).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep with as many jobs as cores leaves no core for side-by-side evaluation.
    #[test]
    fn evaluation_leaves_the_cores_to_concurrent_runs() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        set_concurrent_runs(cores);
        assert!(!evaluation_has_a_free_core(1));
        set_concurrent_runs(1);
        assert_eq!(evaluation_has_a_free_core(1), cores >= 2);
        assert!(!evaluation_has_a_free_core(2));
    }
}
