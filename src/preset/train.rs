//! `[train]`: optimizer, schedule, precision and budget of a run, Adam's constants with their
//! defaults, and the section's own checks.

use serde::{Deserialize, Serialize};

use super::{Invalid, Section};
use crate::net::{Flags, Param};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Learning rate and momentum stay as set.
    Constant,
    /// The paper demo's: momentum ramps over the burn-in, then the rate decays every epoch.
    Paper,
    /// The authors' time-budget trainer: the rate is constant for the first half of the budget
    /// (`time_budget_seconds` of training, or else all epochs), then falls linearly to zero;
    /// with `warmup_fraction`, it first grows exponentially from rate/100.
    Budget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_schedule")]
    pub schedule: ScheduleKind,
    #[serde(default = "default_momentum_initial")]
    pub momentum_initial: f64,
    #[serde(default = "default_burn_in")]
    pub burn_in_epochs: usize,
    #[serde(default = "default_rate_decay")]
    pub rate_decay: f64,
    /// Reproduce the authors' code, which drops momentum back to `momentum_initial` after burn-in.
    #[serde(default)]
    pub momentum_reset_after_burn_in: bool,
    /// Constant momentum of the biases (the authors' demo keeps them at the final momentum
    /// while the weights follow the ramp); unset: the same as the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_momentum: Option<f64>,
    /// Budget schedule: the fraction of the budget over which the rate grows from rate/100
    /// (the authors' autoencoder warm-up used 0.01).
    #[serde(default)]
    pub warmup_fraction: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// Standard deviation of the Gaussian noise added to each minibatch's inputs.
    #[serde(default)]
    pub input_noise: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// Threads for the matrix products.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Clean training examples evaluated each epoch for the reported training loss.
    #[serde(default = "default_train_eval")]
    pub train_eval_size: usize,
    /// While the matrix products use one thread and the machine has two cores per run trained
    /// at once (a sweep's `--jobs`): evaluate each epoch on a copy of the network on the free
    /// core while the next epoch trains (the last epoch's chunks shared among the free cores),
    /// and measure the statistics probes there too when no γ guard acts on them. The numbers
    /// are the same either way.
    #[serde(default = "default_parallel_evaluation")]
    pub parallel_evaluation: bool,
    /// Stop after this many seconds of training steps (evaluation not counted), with a final
    /// evaluation; for comparisons at a fixed time budget.
    pub time_budget_seconds: Option<f64>,
    /// Save a checkpoint every N epochs (0: only at the end, on request and on signals).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Write TensorBoard events (`events.out.tfevents.*`) in the run folder while it trains.
    /// An output option, not part of the experiment: never written to `config.toml` or a
    /// sweep's plan cells, so a run or sweep with it is the same as one without.
    #[serde(default, skip_serializing)]
    pub tensorboard: bool,
    /// On divergence, go back to the state at the end of the last epoch and halve the
    /// learning rate, at most this many times (0: stop at the first divergence).
    #[serde(default)]
    pub divergence_rollbacks: usize,
    /// Early stopping: stop after this many epochs without a better validation result
    /// (error for classifiers, loss otherwise). Unset: train all epochs.
    #[serde(default)]
    pub patience: Option<usize>,
    /// `sgd` (heavy-ball momentum, the papers') or `adam`.
    #[serde(default, skip_serializing_if = "OptimizerKind::is_sgd")]
    pub optimizer: OptimizerKind,
    /// Adam's β1, β2 and ε (defaults 0.9, 0.999, 1e-8); Adam ignores the momentum keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_beta1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_beta2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adam_epsilon: Option<f64>,
    /// Adam: apply `weight_decay` to the weights directly (AdamW) instead of to the gradient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decoupled_weight_decay: bool,
    /// Muon's rate for the weight matrices into hidden layers (default 0.02); it follows the
    /// schedule as `learning_rate` does, which the rest of the network takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muon_learning_rate: Option<f64>,
    /// Muon's momentum of those matrices (default 0.95, constant); the rest take `momentum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muon_momentum: Option<f64>,
    /// Muon: orthogonalise g + μ·m (Nesterov, the default) instead of m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muon_nesterov: Option<bool>,
    /// K-FAC's Tikhonov damping λ: each factor gets √λ on its diagonal (default 0.1: with
    /// 1e-3 and 1e-2 the steps along the pixels' small input variances overshoot, measured in
    /// docs/second-order.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfac_damping: Option<f64>,
    /// K-FAC: steps between two refreshes of the factors' running averages (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfac_stats_every: Option<usize>,
    /// K-FAC: steps between two inversions of the factors (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfac_update_every: Option<usize>,
    /// K-FAC: weight of the past in the factors' running averages (default 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfac_decay: Option<f64>,
}

/// Which optimizer trains the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Sgd,
    Adam,
    /// Newton–Schulz orthogonalised momentum on the hidden layers' matrices (Jordan 2024).
    Muon,
    /// Kronecker-factored approximate natural gradient (Martens & Grosse 2015).
    Kfac,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 4] = [
        OptimizerKind::Sgd,
        OptimizerKind::Adam,
        OptimizerKind::Muon,
        OptimizerKind::Kfac,
    ];

    fn is_sgd(&self) -> bool {
        *self == OptimizerKind::Sgd
    }

    /// The preset's name (`train.optimizer`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Muon => "muon",
            OptimizerKind::Kfac => "kfac",
        }
    }

    /// The optimizer's usual written name, for messages and the dashboard.
    pub fn title(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::Muon => "Muon",
            OptimizerKind::Kfac => "K-FAC",
        }
    }

    /// Whether this optimizer's state can follow the compensation of a change of `which`: the
    /// one rule behind the preset's refusal, the trainer's switches and the dashboard's hint.
    /// SGD's momentum lives in the weights' coordinates and is carried (or, under the papers'
    /// rule, left) as the weights are, and so is Muon's; K-FAC's factors are mapped exactly
    /// through β and γ and refreshed where α changes the errors (src/train/kfac.rs); Adam's
    /// per-weight second moments have no transformation that matches a compensation mixing
    /// weights across layers.
    pub fn can_follow(self, which: Param) -> bool {
        let _ = which;
        match self {
            OptimizerKind::Sgd | OptimizerKind::Muon | OptimizerKind::Kfac => true,
            OptimizerKind::Adam => false,
        }
    }

    /// Whether it can follow every parameter `flags` switches on.
    pub fn can_follow_all(self, flags: Flags) -> bool {
        Param::ALL
            .into_iter()
            .all(|p| !flags.get(p) || self.can_follow(p))
    }
}

/// Adam's constants (the preset's `train.adam_*` keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamSettings {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Weight decay λ: added to the gradient (L2, as in Adam's paper) or, decoupled, applied
    /// to the weights directly as w −= η·λ·w (AdamW).
    pub decay: f64,
    pub decoupled: bool,
}

/// Muon's settings (the preset's `train.muon_*` keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MuonSettings {
    /// Muon's rate over the schedule's base rate: the hidden matrices step at the scheduled
    /// rate times this.
    pub rate_ratio: f64,
    pub momentum: f64,
    pub nesterov: bool,
}

/// K-FAC's settings (the preset's `train.kfac_*` keys).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KfacSettings {
    pub damping: f64,
    pub stats_every: usize,
    pub update_every: usize,
    pub decay: f64,
}

impl TrainSection {
    /// K-FAC's settings, the defaults filled in.
    pub fn kfac_settings(&self) -> KfacSettings {
        KfacSettings {
            damping: self.kfac_damping.unwrap_or(0.1),
            stats_every: self.kfac_stats_every.unwrap_or(10),
            update_every: self.kfac_update_every.unwrap_or(100),
            decay: self.kfac_decay.unwrap_or(0.95),
        }
    }

    /// K-FAC's damping, schedule and decay, where set.
    fn check_kfac(&self) -> Result<(), Invalid> {
        if let Some(damping) = self.kfac_damping {
            if !(damping.is_finite() && damping >= 0.0) {
                return Invalid::at(
                    "train.kfac_damping",
                    format!("{damping} must be zero or positive, e.g. 0.1"),
                );
            }
        }
        for (key, value) in [
            ("train.kfac_stats_every", self.kfac_stats_every),
            ("train.kfac_update_every", self.kfac_update_every),
        ] {
            if value == Some(0) {
                return Invalid::at(key, "must be at least 1 step, e.g. 10 or 100");
            }
        }
        match self.kfac_decay {
            Some(value) if !is_fraction(value) => Invalid::at(
                "train.kfac_decay",
                format!("{value} must be in [0, 1), e.g. 0.95"),
            ),
            _ => Ok(()),
        }
    }

    /// Muon's settings, the defaults filled in (0.02, 0.95, Nesterov: Jordan 2024).
    pub fn muon_settings(&self) -> MuonSettings {
        MuonSettings {
            rate_ratio: self.muon_learning_rate.unwrap_or(0.02) / self.learning_rate,
            momentum: self.muon_momentum.unwrap_or(0.95),
            nesterov: self.muon_nesterov.unwrap_or(true),
        }
    }

    /// Muon's rate and momentum, where set.
    fn check_muon(&self) -> Result<(), Invalid> {
        if let Some(rate) = self.muon_learning_rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Invalid::at(
                    "train.muon_learning_rate",
                    format!("{rate} is not a positive number; use e.g. 0.02"),
                );
            }
        }
        match self.muon_momentum {
            Some(value) if !is_fraction(value) => Invalid::at(
                "train.muon_momentum",
                format!("{value} must be in [0, 1), e.g. 0.95"),
            ),
            _ => Ok(()),
        }
    }

    /// Adam's constants, the defaults filled in.
    pub fn adam_settings(&self) -> AdamSettings {
        AdamSettings {
            beta1: self.adam_beta1.unwrap_or(0.9),
            beta2: self.adam_beta2.unwrap_or(0.999),
            epsilon: self.adam_epsilon.unwrap_or(1e-8),
            decay: self.weight_decay,
            decoupled: self.decoupled_weight_decay,
        }
    }

    /// Sizes, rate and momenta: what every step uses.
    fn check_steps(&self) -> Result<(), Invalid> {
        if self.epochs == 0 {
            return Invalid::at("train.epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return Invalid::at("train.batch_size", "must be at least 1, e.g. 100");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Invalid::at(
                "train.learning_rate",
                format!(
                    "{} is not a positive number; use e.g. 0.1",
                    self.learning_rate
                ),
            );
        }
        for (key, value) in [
            ("train.momentum", Some(self.momentum)),
            ("train.momentum_initial", Some(self.momentum_initial)),
            ("train.bias_momentum", self.bias_momentum),
        ] {
            match value {
                Some(value) if !is_fraction(value) => {
                    return Invalid::at(key, format!("{value} must be in [0, 1), e.g. 0.9"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adam's constants, where set.
    fn check_adam(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("train.adam_beta1", self.adam_beta1),
            ("train.adam_beta2", self.adam_beta2),
        ] {
            match value {
                Some(value) if !is_fraction(value) => {
                    return Invalid::at(
                        key,
                        format!("{value} must be in [0, 1), e.g. 0.9 or 0.999"),
                    );
                }
                _ => {}
            }
        }
        match self.adam_epsilon {
            Some(eps) if !(eps.is_finite() && eps > 0.0) => Invalid::at(
                "train.adam_epsilon",
                format!("{eps} is not a positive number; use e.g. 1e-8"),
            ),
            _ => Ok(()),
        }
    }

    /// The schedule's warm-up and decay.
    fn check_schedule(&self) -> Result<(), Invalid> {
        let warmup = self.warmup_fraction;
        if !(warmup.is_finite() && (0.0..0.5).contains(&warmup)) {
            return Invalid::at(
                "train.warmup_fraction",
                format!("{warmup} must be in [0, 0.5), e.g. 0.01 (the first 1% of the budget)"),
            );
        }
        if warmup > 0.0 && self.schedule != ScheduleKind::Budget {
            return Invalid::at(
                "train.warmup_fraction",
                "applies only to schedule = \"budget\"; set the schedule or remove the warm-up",
            );
        }
        Ok(())
    }

    /// Evaluation size, regularisation, time budget, patience and threads.
    fn check_run(&self) -> Result<(), Invalid> {
        if self.train_eval_size == 0 {
            return Invalid::at(
                "train.train_eval_size",
                "must be at least 1: it is the number of clean training examples evaluated \
                 each epoch for the reported training loss, e.g. 10000",
            );
        }
        if !(self.rate_decay.is_finite() && self.rate_decay > 0.0 && self.rate_decay <= 1.0) {
            return Invalid::at(
                "train.rate_decay",
                format!("{} must be in (0, 1], e.g. 0.9", self.rate_decay),
            );
        }
        for (key, value) in [
            ("train.weight_decay", self.weight_decay),
            ("train.input_noise", self.input_noise),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Invalid::at(key, format!("{value} must be zero or positive"));
            }
        }
        if let Some(budget) = self.time_budget_seconds {
            if !(budget.is_finite() && budget > 0.0) {
                return Invalid::at(
                    "train.time_budget_seconds",
                    format!("{budget} must be a positive number of seconds"),
                );
            }
        }
        if self.patience == Some(0) {
            return Invalid::at(
                "train.patience",
                "must be at least 1 epoch, e.g. 5 (leave it out to train every epoch)",
            );
        }
        if self.threads == 0 || self.threads > 256 {
            return Invalid::at(
                "train.threads",
                format!("{} must be between 1 and 256", self.threads),
            );
        }
        Ok(())
    }
}

impl Section for TrainSection {
    fn rules(&self) -> Result<(), Invalid> {
        self.check_steps()?;
        self.check_adam()?;
        self.check_muon()?;
        self.check_kfac()?;
        self.check_schedule()?;
        self.check_run()
    }
}

/// Whether `value` is a momentum or a decay rate: in [0, 1).
fn is_fraction(value: f64) -> bool {
    value.is_finite() && (0.0..1.0).contains(&value)
}

fn default_checkpoint_every() -> usize {
    1
}

fn default_momentum() -> f64 {
    0.9
}
fn default_schedule() -> ScheduleKind {
    ScheduleKind::Constant
}
fn default_momentum_initial() -> f64 {
    0.5
}
fn default_burn_in() -> usize {
    50
}
fn default_rate_decay() -> f64 {
    0.9
}
fn default_seed() -> u64 {
    1
}
fn default_precision() -> Precision {
    Precision::F32
}
fn default_parallel_evaluation() -> bool {
    true
}

fn default_threads() -> usize {
    1
}
fn default_train_eval() -> usize {
    10_000
}
