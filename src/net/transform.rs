//! The function-preserving re-estimation of α, β, γ (docs/method.md): data moments of every
//! transformed unit, the closed-form targets, and the compensation of the other weights so that
//! the network computes exactly the same function before and after.

use std::any::Any;
use std::cell::RefCell;

use ndarray::linalg::general_mat_vec_mul;
use ndarray::{Array1, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::kernels::{self, matmul};
use super::network::{contiguous_mut, Network, Workspace};
use super::reparam::{Change, Reparam};
use crate::real::Real;

/// Which of α, β, γ are active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub alpha: bool,
    pub beta: bool,
    pub gamma: bool,
}

impl Flags {
    pub const NONE: Flags = Flags {
        alpha: false,
        beta: false,
        gamma: false,
    };

    pub fn any(&self) -> bool {
        self.alpha || self.beta || self.gamma
    }

    pub fn get(&self, which: Param) -> bool {
        match which {
            Param::Alpha => self.alpha,
            Param::Beta => self.beta,
            Param::Gamma => self.gamma,
        }
    }

    pub fn set(&mut self, which: Param, on: bool) {
        match which {
            Param::Alpha => self.alpha = on,
            Param::Beta => self.beta = on,
            Param::Gamma => self.gamma = on,
        }
    }

    /// `αβγ`-style label with a dash for each inactive parameter.
    pub fn label(&self) -> String {
        [(self.alpha, 'α'), (self.beta, 'β'), (self.gamma, 'γ')]
            .iter()
            .map(|&(on, c)| if on { c } else { '-' })
            .collect()
    }
}

/// One of the three transformation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Param {
    Alpha,
    Beta,
    Gamma,
}

impl Param {
    pub const ALL: [Param; 3] = [Param::Alpha, Param::Beta, Param::Gamma];

    pub fn symbol(self) -> char {
        match self {
            Param::Alpha => 'α',
            Param::Beta => 'β',
            Param::Gamma => 'γ',
        }
    }
}

/// The two normalisations of γ in the authors' code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GammaForm {
    /// γ = (E[g²]·E[g'²] + ε)^(−1/4): geometric mean of output and slope spread set to 1.
    Product,
    /// γ = (E[g²] + ε)^(−1/2): unit RMS output.
    Rms,
}

/// What keeps γ from blowing the network up into saturation (docs/method.md, "What γ can go
/// wrong with"). Every control leaves each re-estimation function-preserving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GammaControl {
    /// The papers' rule: γ from the closed form, capped by ε only; momentum buffers untouched.
    Off,
    /// The momentum buffers of a unit's outgoing weights are rescaled with the weights when γ
    /// changes, so that the momentum carries the same step of the network function.
    Momentum,
    /// As `momentum`, and each unit's outgoing weight steps are divided by γ^p
    /// (`transforms.gamma_step_power`): the step of the function grows like γ^(2−p), not γ².
    Step,
    /// γ bounded by `transforms.gamma_bound` (compensated like any other change).
    Bound,
    /// The papers' rule, watched: when the smoothed training loss jumps (a blow-up begins),
    /// the network and momentum of one to two dozen minibatches earlier come back and the
    /// rate is halved (src/train/rollback.rs). The default: chosen by measurement among
    /// these (docs/method.md).
    #[default]
    Rollback,
}

impl GammaControl {
    pub const ALL: [GammaControl; 5] = [
        GammaControl::Off,
        GammaControl::Momentum,
        GammaControl::Step,
        GammaControl::Bound,
        GammaControl::Rollback,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GammaControl::Off => "off",
            GammaControl::Momentum => "momentum",
            GammaControl::Step => "step",
            GammaControl::Bound => "bound",
            GammaControl::Rollback => "rollback",
        }
    }

    /// Whether the momentum buffers follow γ's rescaling of the outgoing weights.
    pub fn rescales_momentum(self) -> bool {
        matches!(self, GammaControl::Momentum | GammaControl::Step)
    }

    /// Whether each unit's outgoing weight steps are divided by a power of its γ.
    pub fn divides_steps(self) -> bool {
        self == GammaControl::Step
    }

    /// Whether a jump of the training loss rolls the network back.
    pub fn rolls_back(self) -> bool {
        self == GammaControl::Rollback
    }
}

/// How α, β, γ are estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub flags: Flags,
    pub gamma_form: GammaForm,
    pub gamma_epsilon: f64,
    pub gamma_control: GammaControl,
    /// Upper bound on every re-estimated γ under `GammaControl::Bound` (ignored otherwise).
    pub gamma_bound: f64,
}

impl Settings {
    /// The largest γ a re-estimation may set (+∞ unless the control bounds it).
    fn gamma_limit(&self) -> f64 {
        match self.gamma_control {
            GammaControl::Bound => self.gamma_bound,
            _ => f64::INFINITY,
        }
    }
}

/// Why a transformation cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransformError {
    #[error(
        "α on layer {layer} needs a shortcut from layer {from} to layer {to} to keep the network \
         function unchanged; use model.shortcuts = \"all\" or switch α off"
    )]
    MissingShortcut {
        layer: usize,
        from: usize,
        to: usize,
    },
    #[error(
        "α, β, γ are off on a {0} run: its pre-activations are normalised per batch or per \
         example, so the compensation that keeps the function unchanged does not hold; \
         compare with the variants ab and abg instead"
    )]
    Normalised(&'static str),
    #[error(
        "{} cannot be switched on under {optimizer}: the compensation mixes weights across \
         layers and {optimizer}'s state cannot follow it; use train.optimizer = \"sgd\" with \
         ab or abg",
        param.symbol()
    )]
    CannotFollow {
        optimizer: &'static str,
        param: Param,
    },
}

/// Data sums of one transformed layer: for every unit, Σ t, Σ x, Σ d, Σ t², Σ x², Σ t·x, Σ d²
/// with t = tanh x and d = 1 − t². These suffice for every closed form, for any α and β, so one
/// forward pass gives them all (compensation never changes a pre-activation).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMoments {
    pub count: f64,
    pub t: Vec<f64>,
    pub x: Vec<f64>,
    pub d: Vec<f64>,
    pub tt: Vec<f64>,
    pub xx: Vec<f64>,
    pub tx: Vec<f64>,
    pub dd: Vec<f64>,
}

impl LayerMoments {
    pub fn new(units: usize) -> Self {
        let zeros = || vec![0.0; units];
        LayerMoments {
            count: 0.0,
            t: zeros(),
            x: zeros(),
            d: zeros(),
            tt: zeros(),
            xx: zeros(),
            tx: zeros(),
            dd: zeros(),
        }
    }

    /// Adds a batch of pre-activations and their tanh values (one example per row).
    pub fn accumulate<T: Real>(&mut self, x: ArrayView2<T>, t: ArrayView2<T>) {
        kernels::vectorised(
            #[inline(always)]
            || self.accumulate_rows(x, t),
        );
    }

    #[inline(always)]
    fn accumulate_rows<T: Real>(&mut self, x: ArrayView2<T>, t: ArrayView2<T>) {
        let n = self.t.len();
        match (x.as_slice(), t.as_slice()) {
            (Some(x), Some(t)) => self.add_rows(n, x, t),
            _ => {
                // Strided rows (never from a workspace): the same sums, through copies.
                for (xr, tr) in x.outer_iter().zip(t.outer_iter()) {
                    let (xr, tr) = (xr.to_vec(), tr.to_vec());
                    self.add_rows(n, &xr, &tr);
                }
            }
        }
    }

    /// Adds whole rows of `n` units. Four rows at a time share one load and store of the 7n
    /// sums (which do not fit the L1 cache); each sum still takes the rows in order, so the
    /// result is the same as row by row.
    #[inline(always)]
    pub(crate) fn add_rows<T: Real>(&mut self, n: usize, x: &[T], t: &[T]) {
        const ROWS: usize = 4;
        let whole = x.len() / (ROWS * n).max(1) * ROWS * n;
        let blocks = x[..whole].chunks_exact(ROWS * n);
        for (xb, tb) in blocks.zip(t[..whole].chunks_exact(ROWS * n)) {
            self.add_block::<ROWS, T>(n, xb, tb);
        }
        for (xr, tr) in x[whole..].chunks_exact(n).zip(t[whole..].chunks_exact(n)) {
            self.add_block::<1, T>(n, xr, tr);
        }
    }

    /// Adds ROWS consecutive rows of `n` units.
    #[inline(always)]
    fn add_block<const ROWS: usize, T: Real>(&mut self, n: usize, x: &[T], t: &[T]) {
        let xr: [&[T]; ROWS] = std::array::from_fn(|r| &x[r * n..(r + 1) * n]);
        let tr: [&[T]; ROWS] = std::array::from_fn(|r| &t[r * n..(r + 1) * n]);
        let (st, sx, sd) = (&mut self.t[..n], &mut self.x[..n], &mut self.d[..n]);
        let (stt, sxx, stx, sdd) = (
            &mut self.tt[..n],
            &mut self.xx[..n],
            &mut self.tx[..n],
            &mut self.dd[..n],
        );
        for j in 0..n {
            let (mut a, mut b, mut c) = (st[j], sx[j], sd[j]);
            let (mut e, mut f, mut g, mut h) = (stt[j], sxx[j], stx[j], sdd[j]);
            for r in 0..ROWS {
                let (xv, tv) = (xr[r][j].f64(), tr[r][j].f64());
                let dv = 1.0 - tv * tv;
                a += tv;
                b += xv;
                c += dv;
                e += tv * tv;
                f += xv * xv;
                g += tv * xv;
                h += dv * dv;
            }
            (st[j], sx[j], sd[j]) = (a, b, c);
            (stt[j], sxx[j], stx[j], sdd[j]) = (e, f, g, h);
        }
        self.count += ROWS as f64;
    }

    /// Adds another batch's sums to these.
    pub fn add(&mut self, other: &LayerMoments) {
        self.count += other.count;
        for (mine, theirs) in [
            (&mut self.t, &other.t),
            (&mut self.x, &other.x),
            (&mut self.d, &other.d),
            (&mut self.tt, &other.tt),
            (&mut self.xx, &other.xx),
            (&mut self.tx, &other.tx),
            (&mut self.dd, &other.dd),
        ] {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }

    /// The closed-form α, β (docs/method.md) of unit j for the active flags.
    fn alpha_beta(&self, j: usize, flags: Flags) -> (f64, f64) {
        let n = self.count.max(1.0);
        let alpha = if flags.alpha { -self.d[j] / n } else { 0.0 };
        let beta = if flags.beta {
            -(self.t[j] + alpha * self.x[j]) / n
        } else {
            0.0
        };
        (alpha, beta)
    }

    /// E[g²] and E[g'²] of unit j for g = tanh x + α·x + β, before γ.
    pub fn output_and_slope_power(&self, j: usize, alpha: f64, beta: f64) -> (f64, f64) {
        let n = self.count.max(1.0);
        let (et, ex, ed) = (self.t[j] / n, self.x[j] / n, self.d[j] / n);
        let m2 = self.tt[j] / n
            + alpha * alpha * self.xx[j] / n
            + beta * beta
            + 2.0 * alpha * self.tx[j] / n
            + 2.0 * beta * et
            + 2.0 * alpha * beta * ex;
        let d2 = self.dd[j] / n + 2.0 * alpha * ed + alpha * alpha;
        (m2.max(0.0), d2.max(0.0))
    }
}

/// Moments of every transformed layer (`None` elsewhere).
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub layers: Vec<Option<LayerMoments>>,
}

impl Moments {
    pub fn new<T: Real>(net: &Network<T>) -> Self {
        Moments {
            layers: (0..=net.depth())
                .map(|l| {
                    net.transforms[l]
                        .as_ref()
                        .map(|_| LayerMoments::new(net.topology.size(l)))
                })
                .collect(),
        }
    }

    /// Clears the sums for reuse (no allocation).
    pub fn reset(&mut self) {
        for m in self.layers.iter_mut().flatten() {
            m.count = 0.0;
            for v in [
                &mut m.t, &mut m.x, &mut m.d, &mut m.tt, &mut m.xx, &mut m.tx, &mut m.dd,
            ] {
                v.fill(0.0);
            }
        }
    }

    /// Adds the batch of the last forward pass in `ws`.
    pub fn accumulate<T: Real>(&mut self, ws: &Workspace<T>) {
        for (l, moments) in self.layers.iter_mut().enumerate() {
            if let Some(m) = moments {
                m.accumulate(ws.pre_activation(l), ws.tanh(l));
            }
        }
    }

    /// Moments of one batch, computed with a forward pass.
    pub fn of_batch<T: Real>(
        net: &Network<T>,
        input: ArrayView2<T>,
        ws: &mut Workspace<T>,
    ) -> Self {
        let mut moments = Moments::new(net);
        let chunk = ws.capacity().max(1);
        let mut start = 0;
        while start < input.nrows() {
            let end = (start + chunk).min(input.nrows());
            net.forward(input.slice(ndarray::s![start..end, ..]), ws);
            moments.accumulate(ws);
            start = end;
        }
        moments
    }
}

thread_local! {
    /// The W[m][l]·diag(Δα) matrix of the α compensation, kept between calls so that
    /// re-estimating every minibatch allocates no matrix.
    static SCRATCH: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on a scratch matrix of shape `dim` (contents unspecified). The storage is kept and
/// only grows, so the blocks of different shapes that one re-estimation visits share it.
fn with_scratch<T: Real, R>(dim: (usize, usize), f: impl FnOnce(&mut ArrayViewMut2<T>) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !slot.as_ref().is_some_and(|b| b.is::<Vec<T>>()) {
            *slot = Some(Box::new(Vec::<T>::new()));
        }
        let storage = slot
            .as_mut()
            .and_then(|b| b.downcast_mut::<Vec<T>>())
            .expect("the scratch storage was just made with this type");
        let len = dim.0 * dim.1;
        if storage.len() < len {
            storage.resize(len, T::zero());
        }
        let mut view = ArrayViewMut2::from_shape(dim, &mut storage[..len])
            .expect("the scratch storage holds exactly rows × columns values");
        f(&mut view)
    })
}

/// Closed-form γ for output power m2 and slope power d2.
fn gamma_for(m2: f64, d2: f64, settings: &Settings) -> f64 {
    match settings.gamma_form {
        GammaForm::Product => (m2 * d2 + settings.gamma_epsilon).powf(-0.25),
        GammaForm::Rms => (m2 + settings.gamma_epsilon).powf(-0.5),
    }
}

impl<T: Real> Network<T> {
    /// Re-estimates α, β (in layer order), then γ, from `moments`, compensating every change;
    /// returns the record of the changes. Parameters whose flag is off are set to their
    /// neutral value (0, 0, 1).
    pub fn reestimate(
        &mut self,
        moments: &Moments,
        settings: &Settings,
    ) -> Result<Reparam<T>, TransformError> {
        self.refuse_if_normalised(settings.flags)?;
        let mut record = Reparam::new();
        let layers: Vec<usize> = self.topology.transformed_layers().collect();
        for &l in &layers {
            let Some(m) = moments.layers[l].as_ref() else {
                continue;
            };
            let (alpha, beta): (Vec<T>, Vec<T>) = (0..m.t.len())
                .map(|j| {
                    let (a, b) = m.alpha_beta(j, settings.flags);
                    (T::of(a), T::of(b))
                })
                .unzip();
            record.extend(self.set_alpha_beta(l, &Array1::from(alpha), &Array1::from(beta))?);
        }
        for &l in &layers {
            let (Some(m), Some(tr)) = (moments.layers[l].as_ref(), self.transforms[l].as_ref())
            else {
                continue;
            };
            let gamma: Array1<T> = (0..m.t.len())
                .map(|j| {
                    if settings.flags.gamma && tr.gamma_fixed[j] {
                        tr.gamma_max[j]
                    } else if settings.flags.gamma {
                        let (m2, d2) =
                            m.output_and_slope_power(j, tr.alpha[j].f64(), tr.beta[j].f64());
                        let gamma = gamma_for(m2, d2, settings);
                        // With ε = 0 a dead unit would get γ = ∞; keep its current γ instead.
                        if gamma.is_finite() && gamma > 0.0 {
                            T::of(gamma.min(settings.gamma_limit())).min(tr.gamma_max[j])
                        } else {
                            tr.gamma[j]
                        }
                    } else {
                        T::one()
                    }
                })
                .collect();
            record.extend(self.set_gamma(l, &gamma));
        }
        Ok(record)
    }

    /// α, β, γ assume pre-activations linear in the layers below; a normalised network's are
    /// not, so any active flag is refused there.
    fn refuse_if_normalised(&self, flags: Flags) -> Result<(), TransformError> {
        match self.topology.norm() {
            super::Norm::None => Ok(()),
            _ if !flags.any() => Ok(()),
            super::Norm::Batch => Err(TransformError::Normalised("batch-normalised (bn)")),
            super::Norm::Layer => Err(TransformError::Normalised("layer-normalised (ln)")),
        }
    }

    /// Sets one parameter of every transformed layer to its neutral value (α = 0, β = 0 or
    /// γ = 1), compensating the change; returns the record of the changes.
    pub fn neutralise(&mut self, which: Param) -> Result<Reparam<T>, TransformError> {
        let mut record = Reparam::new();
        let layers: Vec<usize> = self.topology.transformed_layers().collect();
        for l in layers {
            let Some(tr) = self.transforms[l].as_ref() else {
                continue;
            };
            let n = tr.alpha.len();
            let change = match which {
                Param::Alpha => {
                    let beta = tr.beta.clone();
                    self.set_alpha_beta(l, &Array1::zeros(n), &beta)?
                }
                Param::Beta => {
                    let alpha = tr.alpha.clone();
                    self.set_alpha_beta(l, &alpha, &Array1::zeros(n))?
                }
                Param::Gamma => self.set_gamma(l, &Array1::ones(n)),
            };
            record.extend(change);
        }
        Ok(record)
    }

    /// Replaces α and β of layer l, pushing the linear part of the change onto the biases and
    /// shortcut weights of later layers (docs/method.md):
    /// b_m += W[m][l]·(γ⊙Δα⊙b_l + γ⊙Δβ) and W[m][k] += W[m][l]·diag(γ⊙Δα)·W[l][k].
    /// Returns the record of the change (empty when nothing changed).
    pub fn set_alpha_beta(
        &mut self,
        l: usize,
        alpha: &Array1<T>,
        beta: &Array1<T>,
    ) -> Result<Reparam<T>, TransformError> {
        let mut record = Reparam::new();
        let Some(tr) = self.transforms[l].as_ref() else {
            return Ok(record);
        };
        let d_alpha: Array1<T> = (&tr.alpha - alpha) * &tr.gamma;
        let d_beta: Array1<T> = (&tr.beta - beta) * &tr.gamma;
        let alpha_changed = d_alpha.iter().any(|v| *v != T::zero());
        let beta_changed = d_beta.iter().any(|v| *v != T::zero());
        if !alpha_changed && !beta_changed {
            return Ok(record);
        }
        if alpha_changed {
            for m in self.topology.targets(l) {
                if let Some(k) = self
                    .topology
                    .sources(l)
                    .find(|&k| !self.topology.connects(m, k))
                {
                    return Err(TransformError::MissingShortcut {
                        layer: l,
                        from: k,
                        to: m,
                    });
                }
            }
        }
        let bias_shift: Array1<T> = &d_alpha * &self.params.biases[l] + &d_beta;
        let targets: Vec<usize> = self.topology.targets(l).collect();
        let sources: Vec<usize> = self.topology.sources(l).collect();
        for &m in &targets {
            let Some(w_ml) = self.params.weights[m][l].take() else {
                continue;
            };
            general_mat_vec_mul(
                T::one(),
                &w_ml,
                &bias_shift,
                T::one(),
                &mut self.params.biases[m],
            );
            if alpha_changed {
                with_scratch(w_ml.dim(), |scaled: &mut ArrayViewMut2<T>| {
                    kernels::scale_columns(
                        contiguous_mut(scaled),
                        Some(w_ml.as_slice().expect("parameters are in standard layout")),
                        d_alpha.as_slice().expect("an owned vector is contiguous"),
                    );
                    for &k in &sources {
                        let Some(mut w_mk) = self.params.weights[m][k].take() else {
                            continue;
                        };
                        if let Some(w_lk) = self.params.weights[l][k].as_ref() {
                            matmul(
                                T::one(),
                                &scaled.view(),
                                &w_lk.view(),
                                T::one(),
                                &mut w_mk.view_mut(),
                            );
                        }
                        self.params.weights[m][k] = Some(w_mk);
                    }
                });
            }
            self.params.weights[m][l] = Some(w_ml);
        }
        if let Some(tr) = self.transforms[l].as_mut() {
            tr.alpha.assign(alpha);
            tr.beta.assign(beta);
        }
        record.push(Change::Shift {
            layer: l,
            d_alpha: d_alpha.to_vec(),
            d_beta: d_beta.to_vec(),
            bias: self.params.biases[l].to_vec(),
        });
        Ok(record)
    }

    /// Replaces γ of layer l, rescaling the columns of every outgoing weight block by
    /// γ_old/γ_new; returns the record of the change (empty when γ stayed).
    pub fn set_gamma(&mut self, l: usize, gamma: &Array1<T>) -> Reparam<T> {
        let mut record = Reparam::new();
        let Some(tr) = self.transforms[l].as_mut() else {
            return record;
        };
        let ratio: Array1<T> = &tr.gamma / gamma;
        if ratio.iter().all(|&r| r == T::one()) {
            return record;
        }
        record.push(Change::Rescale {
            layer: l,
            before: tr.gamma.to_vec(),
            after: gamma.to_vec(),
        });
        tr.gamma.assign(gamma);
        let targets: Vec<usize> = self.topology.targets(l).collect();
        for m in targets {
            if let Some(w) = self.params.weights[m][l].as_mut() {
                let w = w
                    .as_slice_mut()
                    .expect("parameters are allocated in standard layout");
                let ratio = ratio.as_slice().expect("an owned vector is contiguous");
                kernels::scale_columns(w, None, ratio);
            }
        }
        record
    }
}
