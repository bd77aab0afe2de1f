"""Unit statistics of one activation on the probe batch: per unit (per channel for
convolutions: every dimension but dim 1 is reduced) the mean output, mean slope f'(x), output
std, pre-activation std, and the saturated / dead flags by each activation's thresholds
(docs/pytorch.md, "What is measured")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch

#: Saturated: the unit's mean tanh'(x) (for sigmoid: sigma'(x) / 0.25) is below this, as ltmlp's
#: own `stats.saturated_slope`.
SATURATED_SLOPE = 0.1
#: Dead (ltmlp's "collapsed"): pre-activation std and output std both below this, as ltmlp's own
#: `stats.collapsed_std`; for ReLU also a unit that is zero on every probe example.
COLLAPSED_STD = 0.1

#: The activations measured, by the `kind` a layer is declared with.
KINDS = ("tanh", "transformed_tanh", "sigmoid", "relu", "gelu", "gelu_tanh", "silu")


def slope(kind: str, x: Optional[torch.Tensor], y: torch.Tensor) -> Optional[torch.Tensor]:
    """f'(x) elementwise for a known activation; None when it cannot be told (no input for
    an activation whose slope needs it)."""
    if kind == "tanh":
        return 1.0 - y * y
    if kind == "sigmoid":
        return y * (1.0 - y)
    if kind == "relu":
        return (y > 0).to(y.dtype) if x is None else (x > 0).to(y.dtype)
    if x is None:
        return None
    if kind == "gelu":
        cdf = 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
        pdf = torch.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
        return cdf + x * pdf
    if kind == "gelu_tanh":
        c = math.sqrt(2.0 / math.pi)
        u = torch.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1.0 + u) + 0.5 * x * (1.0 - u * u) * c * (1.0 + 3 * 0.044715 * x * x)
    if kind == "silu":
        s = torch.sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    return None


def broadcast_units(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-unit `values` shaped to broadcast along dim 1 of `like`."""
    shape = [1] * like.dim()
    shape[1] = -1
    return values.reshape(shape)


@dataclass
class UnitStats:
    """One layer's measurement, ready for a `layers` event."""

    name: str
    units: int
    mean_out: List[float]
    std_out: List[float]
    mean_slope: List[float]
    std_pre: List[float]
    saturated: List[bool]
    collapsed: List[bool]
    alpha: Optional[List[float]] = None
    beta: Optional[List[float]] = None
    gamma: Optional[List[float]] = None

    def layer_event(self) -> Dict[str, Any]:
        """This layer in the trainer's `layers` event (every figure; NaN becomes null)."""

        def mean(values: List[float]) -> Optional[float]:
            finite = [v for v in values if math.isfinite(v)]
            return sum(finite) / len(finite) if finite else None

        n = max(self.units, 1)
        per_unit: Dict[str, Any] = {
            "mean_out": finite_or_none(self.mean_out),
            "std_out": finite_or_none(self.std_out),
            "mean_slope": finite_or_none(self.mean_slope),
            "std_pre": finite_or_none(self.std_pre),
            "saturated": self.saturated,
            "collapsed": self.collapsed,
        }
        for name in ("alpha", "beta", "gamma"):
            values = getattr(self, name)
            if values is not None:
                per_unit[name] = finite_or_none(values)
        return {
            "name": self.name,
            "mean_out": mean(self.mean_out),
            "std_out": mean(self.std_out),
            "mean_slope": mean(self.mean_slope),
            "std_pre": mean(self.std_pre),
            "saturated_fraction": sum(self.saturated) / n,
            "collapsed_fraction": sum(self.collapsed) / n,
            "per_unit": per_unit,
        }


def finite_or_none(values: List[float]) -> List[Optional[float]]:
    """The protocol's floats: NaN and infinities (not measured) as None."""
    return [v if math.isfinite(v) else None for v in values]


def unit_dims(t: torch.Tensor) -> List[int]:
    """Every dimension but dim 1, the unit's (all of a 1-D tensor's)."""
    return [d for d in range(t.dim()) if d != 1] if t.dim() > 1 else [0]


def mean_of(t: torch.Tensor) -> torch.Tensor:
    """Per-unit mean over the samples, in float64."""
    return t.mean(dim=unit_dims(t)).double()


def var_mean(t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-unit variance (over the samples, not unbiased) and mean, in float64. Two passes
    (the mean, then the centred squares): on a CPU several times faster than
    `torch.var_mean` over a leading dimension, and as exact."""
    dims = unit_dims(t)
    mean = t.mean(dim=dims, keepdim=True)
    var = (t - mean).square().mean(dim=dims)
    return var.double(), mean.reshape(-1).double()


def measure(
    name: str,
    kind: str,
    x: Optional[torch.Tensor],
    y: torch.Tensor,
    unit_slope: Optional[torch.Tensor] = None,
    transforms: Optional[Dict[str, torch.Tensor]] = None,
) -> UnitStats:
    """The statistics of one activation from its input `x` (None: not seen) and output `y`.
    `unit_slope` overrides the kind's slope (a module's own `ltmlp_slope`); `transforms`
    holds a transformed unit's per-unit alpha, beta, gamma. Each figure is one reduction over
    the samples; tanh's and sigmoid's slopes follow from the output's mean and variance."""
    y = y.detach()
    x = x.detach() if x is not None else None
    if y.dim() == 1:
        y = y.reshape(-1, 1)
        x = x.reshape(-1, 1) if x is not None else None
    var_out, mean_out = var_mean(y)
    units = mean_out.shape[0]
    nan = torch.full((units,), float("nan"), dtype=torch.float64, device=mean_out.device)
    std_pre = var_mean(x)[0].sqrt() if x is not None else nan
    mean_square = var_out + mean_out * mean_out
    if unit_slope is not None:
        mean_slope = mean_of(unit_slope.detach())
    elif kind == "tanh":
        mean_slope = 1.0 - mean_square  # mean of 1 - y^2
    elif kind == "sigmoid":
        mean_slope = mean_out - mean_square  # mean of y (1 - y)
    else:
        f_slope = slope(kind, x, y)
        mean_slope = mean_of(f_slope) if f_slope is not None else nan
    std_out = var_out.sqrt()
    collapsed = (std_pre < COLLAPSED_STD) & (std_out < COLLAPSED_STD)
    if kind == "relu":
        # Zero on every probe example: no positive input (or output, without the input).
        active = mean_slope if x is not None else mean_of((y > 0).to(y.dtype))
        collapsed = collapsed | active.eq(0)
    if kind == "tanh":
        saturated = mean_slope < SATURATED_SLOPE
    elif kind == "transformed_tanh" and x is not None:
        # The tanh part of the unit, as ltmlp's own statistics: tanh'(x) = 1 - tanh(x)^2.
        t = torch.tanh(x)
        saturated = (1.0 - mean_of(t * t)) < SATURATED_SLOPE
    elif kind == "sigmoid":
        saturated = mean_slope / 0.25 < SATURATED_SLOPE
    else:
        # ReLU, GELU and SiLU have no upper saturation.
        saturated = torch.zeros(units, dtype=torch.bool, device=mean_out.device)
    stats = UnitStats(
        name=name,
        units=units,
        mean_out=mean_out.tolist(),
        std_out=std_out.tolist(),
        mean_slope=mean_slope.tolist(),
        std_pre=std_pre.tolist(),
        saturated=saturated.tolist(),
        collapsed=collapsed.tolist(),
    )
    if transforms:
        for key in ("alpha", "beta", "gamma"):
            if key in transforms:
                setattr(stats, key, transforms[key].detach().double().reshape(-1).tolist())
    return stats
