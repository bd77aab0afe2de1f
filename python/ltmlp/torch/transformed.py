"""TransformedMLP: the Rust engine's network in PyTorch (docs/method.md).

Every layer l receives every earlier layer k (the shortcuts), hidden units compute
f(x) = gamma * (tanh x + alpha x + beta) with alpha, beta, gamma per unit, re-estimated from a
batch in closed form with the function-preserving compensation of the later layers' weights and
biases, exactly as src/net/transform.rs does it.
"""

import math
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import torch
from torch import nn

# Which parameters each variant starts with (the presets' `variant`): one list, the export's.
from .export import VARIANT_FLAGS as VARIANTS

#: The transformation parameters, in the order the toggles list them.
PARAMS = ("alpha", "beta", "gamma")
#: The gamma forms and their default epsilon (src/preset/transforms.rs).
GAMMA_EPSILON = {"product": 1e-4, "rms": 1e-2}
#: Half-width of the uniform bias initialisation (the authors' bias_init_scale).
BIAS_INIT_SCALE = 0.5


class TransformError(ValueError):
    """A transformation that cannot be applied without changing the network function."""


class TransformedTanh(nn.Module):
    """y = gamma * (tanh x + alpha x + beta), per unit; alpha, beta, gamma are buffers (not
    learned by gradient descent: re-estimated and compensated by TransformedMLP)."""

    alpha: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor

    def __init__(self, units: int, dtype: Optional[torch.dtype] = None, device: Any = None) -> None:
        super().__init__()
        kw: Dict[str, Any] = {"dtype": dtype, "device": device}
        self.register_buffer("alpha", torch.zeros(units, **kw))
        self.register_buffer("beta", torch.zeros(units, **kw))
        self.register_buffer("gamma", torch.ones(units, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * (torch.tanh(x) + self.alpha * x + self.beta)

    def ltmlp_slope(self, input: torch.Tensor, output: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The per-element slope f'(x) = gamma * (1 - tanh^2 x + alpha)."""
        t = torch.tanh(input)
        return self.gamma * (1.0 - t * t + self.alpha)

    def extra_repr(self) -> str:
        return f"{self.alpha.numel()} units"


class _Moments:
    """Per-unit sums over a batch of x, t = tanh x and d = 1 - t^2 (always float64): enough for
    every closed form, for any alpha and beta (compensation never changes a pre-activation)."""

    def __init__(self, x: torch.Tensor, t: torch.Tensor) -> None:
        """Sums of the pre-activations x and their tanh values t (one example per row), in
        the network's precision (torch's pairwise sums; float64 sums of a float32 batch would
        copy it whole, a fifth of a step), kept in float64 from there on."""
        f64 = torch.float64

        def total(v: torch.Tensor) -> torch.Tensor:
            return v.sum(0).to(f64)

        self.count = float(x.shape[0])
        self.t, self.x = total(t), total(x)
        tt = t * t
        self.tt = total(tt)
        d = tt.neg_().add_(1.0)
        self.d = total(d)
        self.xx = total(x * x)
        self.tx = total(t * x)
        self.dd = total(d.mul_(d))

    def add(self, other: "_Moments") -> None:
        self.count += other.count
        for name in ("t", "x", "d", "tt", "xx", "tx", "dd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def alpha_beta(self, flags: Set[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        n = max(self.count, 1.0)
        alpha = -self.d / n if "alpha" in flags else torch.zeros_like(self.d)
        beta = -(self.t + alpha * self.x) / n if "beta" in flags else torch.zeros_like(self.d)
        return alpha, beta

    def output_and_slope_power(self, alpha: torch.Tensor, beta: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """E[g^2] and E[g'^2] for g = tanh x + alpha x + beta, before gamma."""
        n = max(self.count, 1.0)
        et, ex, ed = self.t / n, self.x / n, self.d / n
        m2 = (
            self.tt / n
            + alpha * alpha * self.xx / n
            + beta * beta
            + 2.0 * alpha * self.tx / n
            + 2.0 * beta * et
            + 2.0 * alpha * beta * ex
        )
        d2 = self.dd / n + 2.0 * alpha * ed + alpha * alpha
        return m2.clamp(min=0.0), d2.clamp(min=0.0)


class _FullPrecisionProducts:
    """Within it, float32 matrix products are computed in float32 even where TF32 is allowed
    (its 10-bit mantissa would make the compensation inexact by ~1e-3 of each change)."""

    def __enter__(self) -> None:
        self.saved = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")

    def __exit__(self, *exc: Any) -> None:
        torch.set_float32_matmul_precision(self.saved)


class _CachedPreActivation(torch.autograd.Function):
    """x_l = b_l + sum_k y_k W[l][k]^T whose forward returns the pre-activations already
    computed by the re-estimation's pass (compensation leaves them unchanged) and whose backward
    is that of the sum: re-estimating on the training minibatch then costs no second forward
    pass, as in the Rust trainer."""

    @staticmethod
    def forward(ctx: Any, cached: torch.Tensor, bias: torch.Tensor, *pairs: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*pairs)
        return cached.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
        pairs = ctx.saved_tensors
        grads: List[Optional[torch.Tensor]] = [None, grad.sum(0) if ctx.needs_input_grad[1] else None]
        for i in range(0, len(pairs), 2):
            w, y = pairs[i], pairs[i + 1]
            grads.append(grad.t() @ y if ctx.needs_input_grad[2 + i] else None)
            grads.append(grad @ w if ctx.needs_input_grad[3 + i] else None)
        return tuple(grads)


class TransformedMLP(nn.Module):
    """The Rust engine's multi-layer perceptron with shortcut connections and transformed tanh
    units.

    sizes: [n_0, ..., n_L]; shortcuts: "all" (every earlier layer feeds every layer) or
    "adjacent"; variant: "none", "ab" or "abg" (which of alpha, beta, gamma are re-estimated);
    output: "softmax" (classification; forward returns the logits x_L) or "linear"; bottleneck:
    a hidden layer of linear units that no connection skips (the autoencoder); gamma_form:
    "product" or "rms", gamma_epsilon their epsilon (default 1e-4 and 1e-2).

    Initialisation as in the authors' code: adjacent weights Glorot-uniform, shortcut weights
    zero, biases uniform in +-0.5, alpha = beta = 0, gamma = 1 (from `seed` when given).
    """

    flags: Set[str]
    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(
        self,
        sizes: Sequence[int],
        shortcuts: str = "all",
        variant: str = "none",
        *,
        output: str = "softmax",
        bottleneck: Optional[int] = None,
        gamma_form: str = "product",
        gamma_epsilon: Optional[float] = None,
        dtype: torch.dtype = torch.float32,
        device: Any = None,
        seed: Optional[int] = None,
    ) -> None:
        super().__init__()
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes {sizes}: a network needs an input and an output layer, each of at least one unit")
        if shortcuts not in ("all", "adjacent"):
            raise ValueError(f'shortcuts = {shortcuts!r}: use "all" or "adjacent"')
        if variant not in VARIANTS:
            raise ValueError(f"variant = {variant!r}: use one of {', '.join(VARIANTS)}")
        if output not in ("softmax", "linear"):
            raise ValueError(f'output = {output!r}: use "softmax" or "linear"')
        if gamma_form not in GAMMA_EPSILON:
            raise ValueError(f'gamma_form = {gamma_form!r}: use "product" or "rms"')
        depth = len(sizes) - 1
        if bottleneck is not None and not 0 < bottleneck < depth:
            raise ValueError(f"bottleneck = {bottleneck}: it must be a hidden layer, 1 to {depth - 1}")
        kinds = ["input"] + ["tanh"] * (depth - 1) + [output]
        if bottleneck is not None:
            kinds[bottleneck] = "linear"
        connections = [
            (l, k)
            for l in range(1, depth + 1)
            for k in range(l)
            if (shortcuts == "all" or k + 1 == l)
            and not (bottleneck is not None and k < bottleneck < l)
        ]
        self._build(sizes, kinds, connections, dtype, device)
        self.flags = set(VARIANTS[variant])
        self.variant = variant
        self.gamma_form = gamma_form
        self.gamma_epsilon = GAMMA_EPSILON[gamma_form] if gamma_epsilon is None else float(gamma_epsilon)
        self.initialise(seed)
        if "alpha" in self.flags:
            self._check_alpha_possible()

    def _build(self, sizes: Sequence[int], kinds: Sequence[str], connections: Sequence[Tuple[int, int]],
               dtype: torch.dtype, device: Any) -> None:
        self.sizes, self.kinds = list(sizes), list(kinds)
        self.connections = sorted(connections)
        kw: Dict[str, Any] = {"dtype": dtype, "device": device}
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(sizes[l], **kw)) for l in range(1, len(sizes))]
        )
        self.weights = nn.ParameterDict(
            {f"{l}_{k}": nn.Parameter(torch.zeros(sizes[l], sizes[k], **kw)) for l, k in self.connections}
        )
        self.units = nn.ModuleDict(
            {str(l): TransformedTanh(sizes[l], **kw) for l in range(1, len(sizes) - 1) if kinds[l] == "tanh"}
        )
        self.register_buffer("input_mean", torch.zeros(sizes[0], **kw))
        self.register_buffer("input_std", torch.ones(sizes[0], **kw))
        self.classes: Optional[List[int]] = None
        # No transformation active, the product form of gamma, nothing kept for a step.
        self.flags = set()
        self.variant = "none"
        self.gamma_form, self.gamma_epsilon = "product", GAMMA_EPSILON["product"]
        self._cache: Optional[Tuple[torch.Tensor, int, List[torch.Tensor], Tuple[int, ...]]] = None
        self._last_batch: Optional[torch.Tensor] = None

    # ---- structure -------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    def weight(self, l: int, k: int) -> torch.Tensor:
        """W[l][k] (n_l x n_k); a KeyError where layer k does not feed layer l."""
        if f"{l}_{k}" not in self.weights:
            raise KeyError(f"layer {k} does not feed layer {l} in this network")
        weight: torch.Tensor = self.weights[f"{l}_{k}"]
        return weight

    def bias(self, l: int) -> torch.Tensor:
        bias: torch.Tensor = self.biases[l - 1]
        return bias

    def sources(self, l: int) -> List[int]:
        return [k for (m, k) in self.connections if m == l]

    def targets(self, l: int) -> List[int]:
        return [m for (m, k) in self.connections if k == l]

    def transformed_layers(self) -> List[int]:
        return [int(l) for l in self.units]

    def unit(self, l: int) -> TransformedTanh:
        """Layer l's TransformedTanh (hidden tanh layers only)."""
        unit = self.units[str(l)]
        assert isinstance(unit, TransformedTanh)
        return unit

    def initialise(self, seed: Optional[int] = None) -> None:
        """Glorot-uniform adjacent weights, zero shortcuts, biases uniform in +-0.5, plain tanh."""
        gen = torch.Generator(device="cpu")
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        with torch.no_grad():
            for l, k in self.connections:
                w = self.weight(l, k)
                if k + 1 == l:
                    limit = math.sqrt(6.0 / (self.sizes[l] + self.sizes[k]))
                    values = (torch.rand(w.shape, generator=gen, dtype=torch.float64) * 2 - 1) * limit
                    w.copy_(values)
                else:
                    w.zero_()
            for b in self.biases:
                b.copy_((torch.rand(b.shape, generator=gen, dtype=torch.float64) * 2 - 1) * BIAS_INIT_SCALE)
            for l in self.transformed_layers():
                u = self.unit(l)
                u.alpha.zero_()
                u.beta.zero_()
                u.gamma.fill_(1.0)

    # ---- forward ---------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer's pre-activations x_L (logits for softmax, the output for linear),
        for inputs already preprocessed ((raw - input_mean) / input_std, see `preprocess`)."""
        cached = self._take_cache(x)
        ys = [x]
        for l in range(1, self.depth + 1):
            sources = self.sources(l)
            if cached is not None:
                pairs: List[torch.Tensor] = []
                for k in sources:
                    pairs += [self.weight(l, k), ys[k]]
                pre: torch.Tensor = _CachedPreActivation.apply(cached[l], self.bias(l), *pairs)
            else:
                pre = self.bias(l)
                for k in sources:
                    pre = torch.addmm(pre, ys[k], self.weight(l, k).t())
            ys.append(self._activate(l, pre) if l < self.depth else pre)
        if self.training:
            self._last_batch = x.detach()
        return ys[-1]

    def _activate(self, l: int, pre: torch.Tensor) -> torch.Tensor:
        return self.unit(l)(pre) if str(l) in self.units else pre

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """y_L: softmax probabilities or the linear output."""
        z: torch.Tensor = self(x)
        return torch.softmax(z, dim=1) if self.kinds[-1] == "softmax" else z

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """(raw - input_mean) / input_std: the inputs the network was trained on."""
        return (raw - self.input_mean) / self.input_std

    @torch.no_grad()
    def pre_activations(self, x: torch.Tensor, moments: Optional[Dict[int, "_Moments"]] = None) -> List[torch.Tensor]:
        """x_l of every layer 1..L for a batch (index 0: the input), without autograd; with a
        dict `moments`, also each transformed layer's moment sums, from the same tanh values
        that the pass computes."""
        ys, xs = [x], [x]
        for l in range(1, self.depth + 1):
            pre = self.bias(l)
            for k in self.sources(l):
                pre = torch.addmm(pre, ys[k], self.weight(l, k).t())
            xs.append(pre)
            if l == self.depth:
                ys.append(pre)
            elif str(l) in self.units:
                u, t = self.unit(l), torch.tanh(pre)
                y = u.gamma * (t + u.alpha * pre + u.beta)
                if moments is not None:
                    moments[l] = _Moments(pre, t)
                ys.append(y)
            else:
                ys.append(pre)
        return xs

    # ---- the transformations ---------------------------------------------------------------

    def transform_toggles(self) -> Tuple[str, ...]:
        """The parameters this network can switch: alpha needs the shortcuts around every
        transformed layer; none without transformed layers."""
        if not self.units:
            return ()
        allowed = ["beta", "gamma"]
        if self._missing_shortcut() is None:
            allowed.insert(0, "alpha")
        return tuple(p for p in PARAMS if p in allowed)

    def transforms_on(self) -> Dict[str, bool]:
        return {p: p in self.flags for p in PARAMS}

    def switch(self, name: str, on: bool, batch: Optional[torch.Tensor] = None) -> None:
        """Switches alpha, beta or gamma on or off, keeping the network function: off sets the
        parameter to its neutral value (0, 0, 1) with compensation; on re-estimates from `batch`
        (default: the last training batch seen), or, with none seen yet, at the next
        `reestimate`."""
        if name not in PARAMS:
            raise TransformError(f"{name!r} is not a transformation: use one of {', '.join(PARAMS)}")
        if name not in self.transform_toggles():
            if not self.units:
                raise TransformError(f"{name} cannot be switched: this network has no transformed units")
            missing = self._missing_shortcut()
            assert missing is not None  # alpha is refused for exactly this reason
            l, k, m = missing
            raise TransformError(
                f"alpha on layer {l} needs a shortcut from layer {k} to layer {m} to keep the "
                'network function unchanged; use shortcuts="all" or leave alpha off'
            )
        if on:
            flags = self.flags | {name}
            data = batch if batch is not None else self._last_batch
            self.flags = flags
            if data is not None:
                self.reestimate(data, keep_for_step=False)
        else:
            self.flags = self.flags - {name}
            self._neutralise(name)

    @torch.no_grad()
    def moments(self, x: torch.Tensor, chunk: Optional[int] = None) -> Tuple[Dict[int, "_Moments"], Optional[List[torch.Tensor]]]:
        """Per-layer moment sums of a batch (in chunks of `chunk` rows), and its pre-activations
        when taken in one chunk."""
        rows = x.shape[0]
        chunk = rows if chunk is None else max(1, int(chunk))
        total: Optional[Dict[int, _Moments]] = None
        xs: Optional[List[torch.Tensor]] = None
        for start in range(0, rows, chunk):
            part: Dict[int, _Moments] = {}
            xs = self.pre_activations(x[start : start + chunk], part)
            if total is None:
                total = part
            else:
                for l in total:
                    total[l].add(part[l])
        return total or {}, (xs if chunk >= rows else None)

    @torch.no_grad()
    def reestimate(self, x: torch.Tensor, keep_for_step: bool = True, chunk: Optional[int] = None) -> None:
        """Re-estimates the active transformations from the batch x (alpha, beta layer by layer,
        then gamma), compensating every change so that the network function stays the same;
        inactive ones are set to their neutral values. With `keep_for_step`, the next training
        forward of the same tensor x reuses this pass's pre-activations (no second pass)."""
        moments, xs = self.moments(x, chunk)
        self.apply_moments(moments)
        self._cache = None
        if keep_for_step and xs is not None:
            self._cache = (x, x._version, xs, self._versions())
        self._last_batch = x.detach()

    @torch.no_grad()
    def apply_moments(self, moments: Dict[int, "_Moments"]) -> None:
        """The closed forms (docs/method.md) from per-layer moments, with compensation."""
        layers = self.transformed_layers()
        for l in layers:
            alpha, beta = moments[l].alpha_beta(self.flags)
            self.set_alpha_beta(l, alpha, beta)
        for l in layers:
            u = self.unit(l)
            if "gamma" in self.flags:
                m2, d2 = moments[l].output_and_slope_power(u.alpha.double(), u.beta.double())
                if self.gamma_form == "product":
                    gamma = (m2 * d2 + self.gamma_epsilon) ** -0.25
                else:
                    gamma = (m2 + self.gamma_epsilon) ** -0.5
                # With epsilon = 0 a dead unit would get gamma = inf: it keeps its gamma.
                usable = torch.isfinite(gamma) & (gamma > 0)
                gamma = torch.where(usable, gamma.to(u.gamma.dtype), u.gamma)
            else:
                gamma = torch.ones_like(u.gamma)
            self.set_gamma(l, gamma)

    @torch.no_grad()
    def set_alpha_beta(self, l: int, alpha: torch.Tensor, beta: torch.Tensor) -> None:
        """Replaces alpha and beta of layer l, pushing the linear part of the change onto the
        later layers: b_m += W[m][l] (gamma dalpha b_l + gamma dbeta) and
        W[m][k] += W[m][l] diag(gamma dalpha) W[l][k]."""
        u = self.unit(l)
        alpha = alpha.to(u.alpha.dtype)
        beta = beta.to(u.beta.dtype)
        d_alpha = (u.alpha - alpha) * u.gamma
        d_beta = (u.beta - beta) * u.gamma
        alpha_changed = bool((d_alpha != 0).any())
        if not alpha_changed and not bool((d_beta != 0).any()):
            return
        if alpha_changed:
            missing = self._missing_shortcut(layers=[l])
            if missing is not None:
                ml, k, m = missing
                raise TransformError(
                    f"alpha on layer {ml} needs a shortcut from layer {k} to layer {m} to keep "
                    'the network function unchanged; use shortcuts="all" or switch alpha off'
                )
        bias_shift = d_alpha * self.bias(l) + d_beta
        with _FullPrecisionProducts():
            for m in self.targets(l):
                w_ml = self.weight(m, l)
                self.bias(m).addmv_(w_ml, bias_shift)
                if alpha_changed:
                    scaled = w_ml * d_alpha
                    for k in self.sources(l):
                        self.weight(m, k).addmm_(scaled, self.weight(l, k))
        u.alpha.copy_(alpha)
        u.beta.copy_(beta)

    @torch.no_grad()
    def set_gamma(self, l: int, gamma: torch.Tensor) -> None:
        """Replaces gamma of layer l, rescaling every outgoing weight column by old/new."""
        u = self.unit(l)
        gamma = gamma.to(u.gamma.dtype)
        ratio = u.gamma / gamma
        if bool((ratio == 1).all()):
            return
        u.gamma.copy_(gamma)
        for m in self.targets(l):
            self.weight(m, l).mul_(ratio)

    def _neutralise(self, name: str) -> None:
        for l in self.transformed_layers():
            u = self.unit(l)
            if name == "alpha":
                self.set_alpha_beta(l, torch.zeros_like(u.alpha), u.beta.clone())
            elif name == "beta":
                self.set_alpha_beta(l, u.alpha.clone(), torch.zeros_like(u.beta))
            else:
                self.set_gamma(l, torch.ones_like(u.gamma))

    def _missing_shortcut(self, layers: Optional[Sequence[int]] = None) -> Optional[Tuple[int, int, int]]:
        """(l, k, m): the first transformed layer l with a target m that layer k < l feeding l
        does not reach, or None (alpha's compensation writes into W[m][k])."""
        for l in self.transformed_layers() if layers is None else layers:
            for m in self.targets(l):
                for k in self.sources(l):
                    if (m, k) not in self.connections:
                        return l, k, m
        return None

    def _check_alpha_possible(self) -> None:
        missing = self._missing_shortcut()
        if missing is not None:
            l, k, m = missing
            raise TransformError(
                f"alpha on layer {l} needs a shortcut from layer {k} to layer {m}; "
                'use shortcuts="all" or variant="none"'
            )

    def get_extra_state(self) -> Dict[str, Any]:
        """What `state_dict` (and so `torch.save`) keeps besides the tensors: the active
        transformations and the gamma form."""
        return {"flags": sorted(self.flags), "gamma_form": self.gamma_form, "gamma_epsilon": self.gamma_epsilon}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.flags = set(state["flags"])
        self.gamma_form = state["gamma_form"]
        self.gamma_epsilon = state["gamma_epsilon"]

    def _versions(self) -> Tuple[int, ...]:
        return tuple(p._version for p in self.parameters())

    def _take_cache(self, x: torch.Tensor) -> Optional[List[torch.Tensor]]:
        """The kept pre-activations if x is the batch just re-estimated on and nothing changed
        since (the cache is used once)."""
        cache, self._cache = self._cache, None
        if cache is None or not torch.is_grad_enabled():
            return None
        batch, version, xs, versions = cache
        if batch is x and x._version == version and self._versions() == versions:
            return xs
        return None

    # ---- optimizer groups and export -------------------------------------------------------

    def sgd_groups(self) -> List[Dict[str, Any]]:
        """Parameter groups for ltmlp.torch.SGD: one per weight block with its shortcut step
        scale 2^-(l-k-1), and the biases (their own momentum, if set)."""
        groups: List[Dict[str, Any]] = [
            {"params": [self.weight(l, k)], "step_scale": 0.5 ** (l - k - 1), "is_bias": False, "block": (l, k)}
            for l, k in self.connections
        ]
        groups.append({"params": list(self.biases), "step_scale": 1.0, "is_bias": True})
        return groups

    @classmethod
    def from_export(cls, path: str, dtype: torch.dtype = torch.float64, device: Any = None) -> "TransformedMLP":
        """The network of an `ltmlp export` safetensors file (see ltmlp.torch.export)."""
        from .export import load_network

        net: TransformedMLP = load_network(cls, path, dtype=dtype, device=device)
        return net

    def export(self, path: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Writes the network in the `ltmlp export` format (safetensors, float64)."""
        from .export import save_network

        save_network(self, path, metadata)
