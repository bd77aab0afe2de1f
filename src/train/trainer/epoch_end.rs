//! The end of an epoch: the evaluation of the training, validation and test splits, the
//! epoch-end update of the update policy, and the epoch's metrics — one split after another,
//! shared in chunks among threads, or overlapped with the next epoch's steps on a copy of the
//! network.
//!
//! Every way gives the same numbers: each split is summed in the same chunks in the same
//! order, and a decision taken before the evaluation's result (the paper rule's, which reads
//! the validation error) is checked against it and taken again from the epoch's end when the
//! result contradicts it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use ndarray::Array2;

use super::{Divergence, Trainer, TrainerState};
use crate::confusion::{Confusion, EpochConfusion, MAX_TRAINING_CLASSES};
use crate::data::{Dataset, Examples, Targets};
use crate::net::{BatchLoss, Flags, Network, Target, Workspace};
use crate::preset::Task;
use crate::protocol::{EpochMetrics, SplitR2, TransformCause, TransformEvent};
use crate::real::Real;
use crate::stats::LayerStats;

/// One split of the end-of-epoch evaluation: its first `rows` examples, and whether to count
/// its confusion matrix (whole splits labelled with classes only).
#[derive(Clone, Copy)]
struct SplitJob<'a, T: Real> {
    split: &'a Examples<T>,
    rows: usize,
    count: bool,
}

/// A split's loss sums, with its confusion matrix when it was counted.
type Evaluated = (BatchLoss, Option<Confusion>);

/// The three splits' results; no test result when the test split is the monitored one (it was
/// evaluated as the validation split).
#[derive(Debug, PartialEq)]
struct Evaluations {
    train: Evaluated,
    validation: Evaluated,
    test: Option<Evaluated>,
}

impl Evaluations {
    fn validation_error(&self, classify: bool) -> Option<f64> {
        classify.then(|| self.validation.0.error_percent())
    }
}

/// What is evaluated at an epoch's end: fixed for the run, so that it can go to another thread.
#[derive(Clone, Copy)]
struct EvaluationPlan {
    task: Task,
    classes: usize,
    /// The first rows of the training split that are evaluated.
    train_rows: usize,
    /// Count confusion matrices of the validation and test splits.
    counting: bool,
    with_test: bool,
}

/// The most threads an evaluation is shared among: each holds a workspace of its own.
const MAX_EVALUATION_WORKERS: usize = 4;

/// One chunk of an evaluation: rows `start..end` of split `split` (0 training, 1 validation,
/// 2 test).
#[derive(Clone, Copy)]
struct Chunk {
    split: usize,
    start: usize,
    end: usize,
}

impl EvaluationPlan {
    fn jobs<'a, T: Real>(&self, data: &'a Dataset<T>) -> [Option<SplitJob<'a, T>>; 3] {
        let job = |split: &'a Examples<T>, rows, count| {
            let count = count && matches!(split.targets(), Targets::Classes(_));
            Some(SplitJob { split, rows, count })
        };
        [
            job(&data.train, self.train_rows, false),
            job(&data.validation, data.validation.len(), self.counting),
            if self.with_test {
                job(&data.test, data.test.len(), self.counting)
            } else {
                None
            },
        ]
    }

    /// The three splits cut into chunks of the workspaces' capacity, the chunks shared among
    /// one thread per workspace (this one and one more per further workspace), and each
    /// split's chunk results summed in chunk order: the numbers of [`Network::evaluate`] over
    /// each whole split, however many workspaces.
    fn run_in_chunks<T: Real>(
        &self,
        net: &Network<T>,
        data: &Dataset<T>,
        workspaces: &mut [&mut Workspace<T>],
    ) -> Evaluations {
        let jobs = self.jobs(data);
        let chunk = workspaces
            .iter()
            .map(|ws| ws.capacity())
            .min()
            .unwrap_or(1)
            .max(1);
        let chunks: Vec<Chunk> = jobs
            .iter()
            .enumerate()
            .flat_map(|(split, job)| {
                let rows = job.map_or(0, |j| j.rows);
                (0..rows.div_ceil(chunk)).map(move |k| Chunk {
                    split,
                    start: k * chunk,
                    end: ((k + 1) * chunk).min(rows),
                })
            })
            .collect();
        let mut decoded: [Option<Array2<T>>; 3] = [None, None, None];
        let targets: Vec<Option<Target<'_, T>>> = jobs
            .iter()
            .zip(decoded.iter_mut())
            .map(|(job, decoded)| job.map(|j| target_of(self.task, j.split, j.rows, decoded)))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |ws: &mut Workspace<T>| {
            crate::net::kernels::on_one_thread(|| {
                let mut losses = Vec::new();
                let mut confusions: [Option<Confusion>; 3] = [None, None, None];
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&c) = chunks.get(index) else {
                        break;
                    };
                    let job = jobs[c.split].expect("chunks are made of present splits");
                    let rows = crate::data::RowRange(job.split, c.start, c.end);
                    let loss = match (job.count, job.split.targets()) {
                        (true, Targets::Classes(labels)) => {
                            let confusion = confusions[c.split]
                                .get_or_insert_with(|| Confusion::new(self.classes));
                            let labels = &labels[c.start..c.end];
                            net.evaluate_confusion(&rows, labels, ws, &mut confusion.counts)
                        }
                        _ => {
                            let target = targets[c.split].expect("each present split has one");
                            net.evaluate(&rows, target.rows(c.start, c.end), ws)
                        }
                    };
                    losses.push((index, loss));
                }
                (losses, confusions)
            })
        };
        let results = std::thread::scope(|scope| {
            let (mine, others) = workspaces
                .split_first_mut()
                .expect("at least one workspace");
            let handles: Vec<_> = others
                .iter_mut()
                .map(|ws| scope.spawn(|| work(ws)))
                .collect();
            let mut results = vec![work(mine)];
            results.extend(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }));
            results
        });
        let mut losses = vec![BatchLoss::default(); chunks.len()];
        let mut confusions: Vec<Option<Confusion>> = jobs
            .iter()
            .map(|job| {
                job.filter(|j| j.count)
                    .map(|_| Confusion::new(self.classes))
            })
            .collect();
        for (worker_losses, worker_confusions) in results {
            for (index, loss) in worker_losses {
                losses[index] = loss;
            }
            for (total, part) in confusions.iter_mut().zip(worker_confusions) {
                if let (Some(total), Some(part)) = (total.as_mut(), part) {
                    for (row, part_row) in total.counts.iter_mut().zip(part.counts) {
                        for (count, add) in row.iter_mut().zip(part_row) {
                            *count += add;
                        }
                    }
                }
            }
        }
        let mut sums = [BatchLoss::default(); 3];
        for (c, loss) in chunks.iter().zip(losses) {
            sums[c.split].add(loss);
        }
        let mut confusions = confusions.into_iter();
        let mut split = |k: usize| (sums[k], confusions.next().flatten());
        let (train, validation, test) = (split(0), split(1), split(2));
        Evaluations {
            train,
            validation,
            test: jobs[2].is_some().then_some(test),
        }
    }
}

/// What an epoch's metrics take from the moment it ended, beside the evaluations.
struct EpochEnd {
    /// The epoch's number, from 1.
    epoch: usize,
    iteration: u64,
    elapsed_seconds: f64,
    layers: Vec<LayerStats>,
    learning_rate: f64,
    momentum: f64,
    examples_per_second: f64,
    flags: Flags,
    transform_events: Vec<TransformEvent>,
}

/// An epoch whose evaluation runs on a copy of the network, on a core of its own, while the
/// next epoch trains; [`Trainer::complete_epoch`] takes its result.
pub struct PendingEpoch<T: Real> {
    /// The evaluations and the epoch-end statistics, measured on `before`'s network.
    evaluation: JoinHandle<(Evaluations, Vec<LayerStats>, Workspace<T>)>,
    /// The state when the epoch's last step was done, before the epoch-end update; its network
    /// is the one evaluated.
    before: Arc<TrainerState<T>>,
    /// The state after the epoch-end update, taken on the validation error of the epoch before.
    after: TrainerState<T>,
    assumed_error: Option<f64>,
    plan: EvaluationPlan,
    end: EpochEnd,
}

impl<T: Real> PendingEpoch<T> {
    /// Whether the evaluation is done (taking its result will not wait).
    pub fn is_ready(&self) -> bool {
        self.evaluation.is_finished()
    }
}

/// How an epoch's end went when its evaluation was overlapped.
pub enum EpochEnding<T: Real> {
    /// The evaluation runs; training may go on.
    Pending(Box<PendingEpoch<T>>),
    /// The epoch ended one step after another (an epoch-end update failed on the assumed error,
    /// or no thread could be started).
    Done(Box<Result<EpochMetrics, Divergence>>),
}

/// A pending epoch, completed.
pub struct CompletedEpoch<T: Real> {
    pub metrics: EpochMetrics,
    /// The training state right after that epoch's end: for checkpoints, rollbacks and an
    /// early stop.
    pub state: TrainerState<T>,
    /// The validation error contradicted a decision taken before it was known: the trainer
    /// went back to that epoch's end, and the steps taken since will be taken again.
    pub went_back: bool,
}

impl<T: Real> Trainer<T> {
    /// Whether epoch ends may overlap their evaluation with the next epoch's steps: when the
    /// splits would be evaluated side by side (a core is free).
    pub fn overlaps_evaluation(&self) -> bool {
        self.parallel_evaluation
    }

    fn evaluation_plan(&self) -> EvaluationPlan {
        EvaluationPlan {
            task: self.task,
            classes: self.data.classes,
            train_rows: self.train_eval_size.min(self.data.train.len()),
            counting: self.classify() && self.data.classes <= MAX_TRAINING_CLASSES,
            with_test: !self.monitor_test,
        }
    }

    /// The end-of-epoch evaluation now: its chunks shared among
    /// [`Trainer::evaluation_workers`] threads, each with its own workspace and products on
    /// one thread, or one after another.
    fn evaluate_now(&mut self, plan: EvaluationPlan) -> Evaluations {
        let data = Arc::clone(&self.data);
        let workers = self.evaluation_workers();
        if workers > 1 {
            if let Some(ws) = self.overlap_ws.take() {
                self.side_ws.push(ws);
            }
        }
        while self.side_ws.len() < workers - 1 {
            let ws = self.spare_workspace();
            self.side_ws.push(ws);
        }
        let mut workspaces: Vec<&mut Workspace<T>> = std::iter::once(&mut self.eval_ws)
            .chain(self.side_ws.iter_mut())
            .take(workers)
            .collect();
        plan.run_in_chunks(&self.net, &data, &mut workspaces)
    }

    /// A workspace with the evaluation workspace's capacity, so that it cuts the splits (and
    /// the probe) into the chunks that one does.
    pub(super) fn spare_workspace(&self) -> Workspace<T> {
        Workspace::new(&self.net.topology, self.eval_ws.capacity())
    }

    /// How many threads evaluate an epoch's splits when nothing else runs: the cores this run
    /// may use (at most [`MAX_EVALUATION_WORKERS`]) when its products use one thread and a core is
    /// free, else the products' threads.
    fn evaluation_workers(&self) -> usize {
        if self.parallel_evaluation {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / super::concurrent_runs()).clamp(2, MAX_EVALUATION_WORKERS)
        } else {
            crate::net::kernels::threads().min(MAX_EVALUATION_WORKERS)
        }
    }

    /// What the metrics take from the moment the epoch's last step was done, with the
    /// statistics measured then.
    fn epoch_end(&self, elapsed_seconds: f64, layers: Vec<LayerStats>) -> EpochEnd {
        EpochEnd {
            epoch: self.epoch + 1,
            iteration: self.iteration,
            elapsed_seconds,
            layers,
            learning_rate: self.learning_rate(),
            momentum: self.momentum(),
            examples_per_second: self.examples_per_second(),
            flags: self.settings.flags,
            transform_events: Vec::new(),
        }
    }

    fn check_validation(&self, evaluations: &Evaluations) -> Result<(), Divergence> {
        let loss = evaluations.validation.0.mean();
        if loss.is_finite() {
            Ok(())
        } else {
            Err(self.divergence(format!("validation loss is {loss}")))
        }
    }

    /// The epoch-end update on the epoch's validation error (the paper rule's re-estimation on
    /// the training set, when due); the epoch counts as done. Its transformation events.
    fn close_epoch(
        &mut self,
        validation_error: Option<f64>,
    ) -> Result<Vec<TransformEvent>, Divergence> {
        self.last_validation_error = validation_error;
        if self.settings.flags.any() {
            if let Some(source) = self.policy.at_epoch_end(self.epoch, validation_error) {
                let started = Instant::now();
                let result = self.reestimate_from(source, TransformCause::Scheduled);
                self.reestimate_outside_steps += started.elapsed().as_secs_f64();
                result
                    .map(|_| ())
                    .map_err(|e| self.divergence(e.to_string()))?;
            }
        }
        self.epoch += 1;
        Ok(self.take_transform_events())
    }

    /// Ends the epoch: evaluation on the three splits, statistics, and the epoch-end update.
    /// Call when [`Trainer::at_epoch_boundary`] holds.
    pub fn finish_epoch(&mut self, elapsed_seconds: f64) -> Result<EpochMetrics, Divergence> {
        let plan = self.evaluation_plan();
        let evaluations = self.evaluate_now(plan);
        self.check_validation(&evaluations)?;
        let layers = self.layer_stats();
        let mut end = self.epoch_end(elapsed_seconds, layers);
        end.transform_events = self.close_epoch(evaluations.validation_error(self.classify()))?;
        Ok(self.metrics(plan, end, evaluations))
    }

    /// Ends the epoch with its evaluation on another thread: the epoch-end update is taken on
    /// the last known validation error, and [`Trainer::complete_epoch`] checks it. Call when
    /// [`Trainer::at_epoch_boundary`] holds and [`Trainer::overlaps_evaluation`].
    pub fn end_epoch_overlapped(&mut self, elapsed_seconds: f64) -> EpochEnding<T> {
        let plan = self.evaluation_plan();
        let before = Arc::new(self.snapshot());
        let assumed_error = self.last_validation_error;
        // The statistics are measured with the evaluations, on the same copy of the network.
        let mut end = self.epoch_end(elapsed_seconds, Vec::new());
        match self.close_epoch(assumed_error) {
            Ok(events) => end.transform_events = events,
            Err(_) => return self.finish_in_turn(before, elapsed_seconds),
        }
        let after = self.snapshot();
        let stats = self.stats_probe();
        let mut ws = self
            .overlap_ws
            .take()
            .or_else(|| self.side_ws.pop())
            .unwrap_or_else(|| self.spare_workspace());
        let (data, state) = (Arc::clone(&self.data), Arc::clone(&before));
        let spawned = std::thread::Builder::new()
            .name("ltmlp-evaluation".into())
            .spawn(move || {
                let evaluations = plan.run_in_chunks(&state.net, &data, &mut [&mut ws]);
                let layers = stats.measure(&state.net, &mut ws);
                (evaluations, layers, ws)
            });
        match spawned {
            Ok(evaluation) => EpochEnding::Pending(Box::new(PendingEpoch {
                evaluation,
                before,
                after,
                assumed_error,
                plan,
                end,
            })),
            Err(_) => self.finish_in_turn(before, elapsed_seconds),
        }
    }

    /// Back to the epoch's end, and the epoch ended there without overlap.
    fn finish_in_turn(
        &mut self,
        before: Arc<TrainerState<T>>,
        elapsed_seconds: f64,
    ) -> EpochEnding<T> {
        self.restore(Arc::unwrap_or_clone(before));
        EpochEnding::Done(Box::new(self.finish_epoch(elapsed_seconds)))
    }

    /// Takes a pending epoch's evaluation (waiting for it) and gives its metrics. When the
    /// validation error contradicts the decision taken on the assumed one, or the validation
    /// loss is not finite, the trainer goes back to that epoch's end first, exactly as if it
    /// had waited there.
    pub fn complete_epoch(
        &mut self,
        pending: PendingEpoch<T>,
    ) -> Result<CompletedEpoch<T>, Divergence> {
        let PendingEpoch {
            evaluation,
            before,
            mut after,
            assumed_error,
            plan,
            mut end,
        } = pending;
        let (evaluations, layers, ws) = evaluation
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        self.overlap_ws = Some(ws);
        end.layers = layers;
        let error = evaluations.validation_error(self.classify());
        // The epoch that ended is number `end.epoch`, 0-based `end.epoch - 1` for the policy.
        let decided = |e| self.policy.decisions_after(end.epoch - 1, e);
        let went_back = self.settings.flags.any() && decided(assumed_error) != decided(error);
        let finite = evaluations.validation.0.mean().is_finite();
        if went_back || !finite {
            self.restore(Arc::unwrap_or_clone(before));
            self.check_validation(&evaluations)?;
            end.transform_events = self.close_epoch(error)?;
            after = self.snapshot();
        } else {
            self.last_validation_error = error;
            after.last_validation_error = error;
        }
        Ok(CompletedEpoch {
            metrics: self.metrics(plan, end, evaluations),
            state: after,
            went_back,
        })
    }

    fn metrics(&self, plan: EvaluationPlan, end: EpochEnd, e: Evaluations) -> EpochMetrics {
        let data = &self.data;
        let ((train, _), (validation, v)) = (e.train, e.validation);
        let (test, t) = e.test.unwrap_or_else(|| (validation, v.clone()));
        let confusion = match (v, t) {
            (Some(validation), Some(test)) => Some(Box::new(EpochConfusion {
                labels: data.class_labels.clone(),
                validation,
                test,
            })),
            _ => None,
        };
        let r2 = (self.task == Task::Regress).then(|| {
            let r2 = |loss: &BatchLoss, split: &Examples<T>, rows: usize| {
                1.0 - loss.reported / split.target_total_squares(0, rows)
            };
            SplitR2 {
                train: r2(&train, &data.train, plan.train_rows),
                validation: r2(&validation, &data.validation, data.validation.len()),
                test: r2(&test, &data.test, data.test.len()),
            }
        });
        // Regression reports the mean squared error per target value.
        let per_value = if self.task == Task::Regress {
            self.net.topology.size(self.net.depth()) as f64
        } else {
            1.0
        };
        let classify = self.classify();
        let error = |loss: &BatchLoss| classify.then(|| loss.error_percent());
        EpochMetrics {
            epoch: end.epoch,
            iteration: end.iteration,
            elapsed_seconds: end.elapsed_seconds,
            train_loss: train.mean() / per_value,
            train_error: error(&train),
            validation_loss: validation.mean() / per_value,
            validation_error: error(&validation),
            test_loss: test.mean() / per_value,
            test_error: error(&test),
            learning_rate: end.learning_rate,
            momentum: end.momentum,
            examples_per_second: end.examples_per_second,
            flags: end.flags,
            layers: end.layers,
            transform_events: end.transform_events,
            r2,
            wall: None,
            confusion,
        }
    }
}

/// What the first `rows` examples of `split` are evaluated against under `task`: their classes
/// or values, or (autoencoder) their own inputs, decoded into `decoded` when they are held as
/// bytes (only those rows: a training split is evaluated on a sample of its first rows).
pub fn target_of<'a, T: Real>(
    task: Task,
    split: &'a Examples<T>,
    rows: usize,
    decoded: &'a mut Option<Array2<T>>,
) -> Target<'a, T> {
    let target = match (task, split.targets()) {
        (Task::Autoencode, _) => match split.input_values() {
            Some(values) => Target::Values(values),
            None => return Target::Values(decoded.insert(split.rows(0, rows).into_owned()).view()),
        },
        (_, Targets::Classes(c)) => Target::Labels(c),
        (_, Targets::Values(v)) => Target::Values(v.view()),
    };
    target.rows(0, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataSource;
    use crate::preset::PresetFile;
    use crate::train::session::{AnyData, Experiment};

    /// A trainer of the default preset's recipe on a small f64 network, trained a few steps,
    /// whose splits are cut into several 500-row chunks.
    fn trained() -> Trainer<f64> {
        let overrides = [
            "model.hidden=[12, 12]",
            "train.precision=\"f64\"",
            "data.train_limit=2500",
            "data.validation_size=1200",
        ]
        .map(String::from);
        let resolved = PresetFile::builtin_default()
            .unwrap()
            .resolve(Some("abg"), &overrides)
            .unwrap();
        let raw = crate::data::load(&DataSource::Embedded).unwrap();
        let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
        let AnyData::F64(data) = exp.data else {
            panic!("f64 expected")
        };
        let net = Network::<f64>::init(exp.topology.clone(), 5);
        let mut trainer = Trainer::new(&resolved, data, net);
        for _ in 0..5 {
            trainer.step().unwrap();
        }
        trainer
    }

    /// Each split evaluated whole by [`Network::evaluate`] (or `evaluate_confusion`), one
    /// after another: the reference.
    fn whole_splits(
        plan: &EvaluationPlan,
        net: &Network<f64>,
        data: &Dataset<f64>,
        ws: &mut Workspace<f64>,
    ) -> Evaluations {
        let mut run = |job: SplitJob<'_, f64>| match (job.count, job.split.targets()) {
            (true, Targets::Classes(labels)) => {
                let mut confusion = Confusion::new(plan.classes);
                let loss = net.evaluate_confusion(job.split, labels, ws, &mut confusion.counts);
                (loss, Some(confusion))
            }
            _ => {
                let mut decoded = None;
                let target = target_of(plan.task, job.split, job.rows, &mut decoded);
                let inputs = crate::data::FirstRows(job.split, job.rows);
                (net.evaluate(&inputs, target, ws), None)
            }
        };
        let [train, validation, test] = plan.jobs(data);
        Evaluations {
            train: run(train.unwrap()),
            validation: run(validation.unwrap()),
            test: test.map(run),
        }
    }

    /// Cut into chunks and shared among 1, 2 or 3 threads (each split's chunk sums added in
    /// chunk order), an evaluation gives the bits of each split evaluated whole, confusion
    /// matrices included; with the test split left out too.
    #[test]
    fn chunks_shared_among_threads_sum_to_the_same_bits() {
        let mut trainer = trained();
        for with_test in [true, false] {
            let plan = EvaluationPlan {
                with_test,
                ..trainer.evaluation_plan()
            };
            assert!(plan.counting);
            let data = Arc::clone(&trainer.data);
            let capacity = trainer.eval_ws.capacity();
            assert!(
                data.train.len() > 2 * capacity,
                "the training split has 3+ chunks"
            );
            let alone = whole_splits(&plan, &trainer.net, &data, &mut trainer.eval_ws);
            for workers in [1, 2, 3] {
                let mut owned: Vec<Workspace<f64>> = (0..workers)
                    .map(|_| Workspace::new(&trainer.net.topology, capacity))
                    .collect();
                let mut workspaces: Vec<&mut Workspace<f64>> = owned.iter_mut().collect();
                let shared = plan.run_in_chunks(&trainer.net, &data, &mut workspaces);
                assert_eq!(shared, alone, "{workers} threads, test split {with_test}");
            }
        }
    }
}
