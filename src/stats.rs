//! Per-layer and per-unit statistics of hidden units on a probe batch: output means and
//! variances, slopes, pre-activation spread, and which units are saturated or collapsed.

use serde::{Deserialize, Serialize};

use crate::net::{Network, UnitKind, Workspace};
use crate::real::Real;

/// Where "saturated" and "collapsed" start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Saturated: mean tanh′ below this.
    pub saturated_slope: f64,
    /// Collapsed: pre-activation std and output std both below this (docs/method.md).
    pub collapsed_std: f64,
    /// γ at or above this is "at its cap": ε outweighs the unit's own scale (m2·d2 ≤ ε in
    /// the product form, m2 ≤ ε in the RMS form); `None` when ε = 0 leaves γ unbounded.
    pub gamma_capped_above: Option<f64>,
}

impl Thresholds {
    /// The γ level where ε equals the unit's own scale: (2ε)^(−1/4) or (2ε)^(−1/2).
    pub fn gamma_cap_level(form: crate::net::GammaForm, epsilon: f64) -> Option<f64> {
        let exponent = match form {
            crate::net::GammaForm::Product => -0.25,
            crate::net::GammaForm::Rms => -0.5,
        };
        (epsilon > 0.0).then(|| (2.0 * epsilon).powf(exponent))
    }
}

/// Smallest and largest value of a per-unit parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Range {
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub min: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub max: f64,
}

impl Range {
    /// The smallest and largest of `values` (±∞ inverted when there are none).
    pub fn of(values: impl Iterator<Item = f64>) -> Range {
        values.fold(
            Range {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            },
            |r, v| Range {
                min: r.min.min(v),
                max: r.max.max(v),
            },
        )
    }
}

/// Per-unit values of one layer (not written to metrics files: too large).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnitStats {
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub mean_out: Vec<f64>,
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub mean_slope: Vec<f64>,
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub std_out: Vec<f64>,
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub std_pre: Vec<f64>,
    /// Mean of tanh′(x), the saturation measure.
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub tanh_slope: Vec<f64>,
    pub saturated: Vec<bool>,
    pub collapsed: Vec<bool>,
    /// The unit's α, β and γ (0, 0, 1 for units without a transformation).
    #[serde(default)]
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub alpha: Vec<f64>,
    #[serde(default)]
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub beta: Vec<f64>,
    #[serde(default)]
    #[serde(deserialize_with = "crate::nan_json::vec")]
    pub gamma: Vec<f64>,
    /// What the γ guard did to the unit: its γ bounded ("cap") or held at 1 ("off").
    #[serde(default)]
    pub guarded: Vec<Option<GuardMark>>,
}

/// The γ guard's mark on a unit, for the unit view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardMark {
    /// γ bounded by the guard's cap.
    Capped,
    /// γ held at 1.
    Off,
}

/// Summary of one hidden layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub layer: usize,
    pub kind: UnitKind,
    pub units: usize,
    /// Mean over units of each unit's mean output.
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub mean_out: f64,
    /// Mean over units of each unit's mean slope f′.
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub mean_slope: f64,
    /// Mean over units of each unit's output variance.
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub var_out: f64,
    /// Mean over units of each unit's pre-activation standard deviation.
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub std_pre: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub saturated_fraction: f64,
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub collapsed_fraction: f64,
    /// Units whose γ is held by its cap rather than by their own scale (none without γ).
    #[serde(default)]
    #[serde(deserialize_with = "crate::nan_json::f64")]
    pub gamma_capped_fraction: f64,
    pub alpha: Range,
    pub beta: Range,
    pub gamma: Range,
    #[serde(skip)]
    pub per_unit: UnitStats,
}

/// Statistics of every hidden layer on `probe`, using `ws` for the forward pass.
pub fn layer_stats<T: Real>(
    net: &Network<T>,
    probe: ndarray::ArrayView2<T>,
    ws: &mut Workspace<T>,
    thresholds: Thresholds,
) -> Vec<LayerStats> {
    net.forward(probe, ws);
    net.topology
        .hidden_layers()
        .map(|l| one_layer(net, ws, l, thresholds))
        .collect()
}

fn one_layer<T: Real>(net: &Network<T>, ws: &Workspace<T>, l: usize, th: Thresholds) -> LayerStats {
    let kind = net.topology.kind(l);
    let x = ws.pre_activation(l);
    let y = ws.activation(l);
    let units = x.ncols();
    let n = x.nrows().max(1) as f64;
    let tr = net.transforms[l].as_ref();
    let mut u = UnitStats::default();
    for j in 0..units {
        let (mut sx, mut sxx, mut sy, mut syy, mut sd, mut sslope) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (alpha, gamma) = tr.map_or((0.0, 1.0), |t| (t.alpha[j].f64(), t.gamma[j].f64()));
        u.alpha.push(alpha);
        u.beta.push(tr.map_or(0.0, |t| t.beta[j].f64()));
        u.gamma.push(gamma);
        u.guarded.push(tr.and_then(|t| {
            if t.gamma_fixed[j] {
                Some(GuardMark::Off)
            } else if t.gamma_max[j].f64().is_finite() {
                Some(GuardMark::Capped)
            } else {
                None
            }
        }));
        for i in 0..x.nrows() {
            let (xv, yv) = (x[[i, j]].f64(), y[[i, j]].f64());
            sx += xv;
            sxx += xv * xv;
            sy += yv;
            syy += yv * yv;
            if kind == UnitKind::Tanh {
                let t = ws.tanh(l)[[i, j]].f64();
                let d = 1.0 - t * t;
                sd += d;
                sslope += gamma * (d + alpha);
            } else {
                sd += 1.0;
                sslope += 1.0;
            }
        }
        let std_pre = (sxx / n - (sx / n).powi(2)).max(0.0).sqrt();
        let std_out = (syy / n - (sy / n).powi(2)).max(0.0).sqrt();
        u.mean_out.push(sy / n);
        u.mean_slope.push(sslope / n);
        u.std_out.push(std_out);
        u.std_pre.push(std_pre);
        u.tanh_slope.push(sd / n);
        u.saturated
            .push(kind == UnitKind::Tanh && sd / n < th.saturated_slope);
        u.collapsed
            .push(std_pre < th.collapsed_std && std_out < th.collapsed_std);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / units.max(1) as f64;
    let fraction = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / units.max(1) as f64;
    let capped = tr.map_or(0, |t| {
        th.gamma_capped_above.map_or(0, |level| {
            t.gamma.iter().filter(|g| g.f64() >= level).count()
        })
    });
    let range = |pick: fn(&crate::net::Transform<T>) -> &ndarray::Array1<T>| {
        tr.map_or(Range::default(), |t| {
            Range::of(pick(t).iter().map(|v| v.f64()))
        })
    };
    LayerStats {
        layer: l,
        kind,
        units,
        mean_out: mean(&u.mean_out),
        mean_slope: mean(&u.mean_slope),
        var_out: u.std_out.iter().map(|s| s * s).sum::<f64>() / units.max(1) as f64,
        std_pre: mean(&u.std_pre),
        saturated_fraction: fraction(&u.saturated),
        collapsed_fraction: fraction(&u.collapsed),
        gamma_capped_fraction: capped as f64 / units.max(1) as f64,
        alpha: range(|t| &t.alpha),
        beta: range(|t| &t.beta),
        gamma: range(|t| &t.gamma),
        per_unit: u,
    }
}
