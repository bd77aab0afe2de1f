"""Forward hooks on a model's activation modules, attached only for the probe batch's forward
pass (so the training steps in between run without them), and the explicit tap `probe` for
activations called as functions (`F.relu(x)`), which no hook can see."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from .stats import UnitStats, broadcast_units, measure

#: The activation modules hooked, and the kind each is measured as (docs/pytorch.md).
MODULE_KINDS: Tuple[Tuple[type, str], ...] = (
    (nn.Tanh, "tanh"),
    (nn.Sigmoid, "sigmoid"),
    (nn.ReLU, "relu"),
    (nn.GELU, "gelu"),
    (nn.SiLU, "silu"),
)


def kind_of(module: nn.Module) -> Optional[str]:
    """The kind `module` is measured as, or None when it is not an activation we hook."""
    if type(module).__name__ == "TransformedTanh":
        return "transformed_tanh"
    if callable(getattr(module, "ltmlp_slope", None)):
        return "custom"
    for cls, kind in MODULE_KINDS:
        if isinstance(module, cls):
            if kind == "gelu" and getattr(module, "approximate", "none") == "tanh":
                return "gelu_tanh"
            return kind
    return None


def transforms_of(module: nn.Module) -> Optional[Dict[str, torch.Tensor]]:
    """A transformed unit's per-unit alpha, beta, gamma tensors (None for other modules)."""
    found = {k: getattr(module, k) for k in ("alpha", "beta", "gamma") if isinstance(getattr(module, k, None), torch.Tensor)}
    return found or None


def module_slope(module: nn.Module, kind: str, x: torch.Tensor, y: torch.Tensor) -> Optional[torch.Tensor]:
    """A module's own slope: its `ltmlp_slope(input, output)`, or for a TransformedTanh
    without one, gamma * (1 - tanh(x)^2 + alpha)."""
    own = getattr(module, "ltmlp_slope", None)
    if callable(own):
        slope: torch.Tensor = own(x, y)
        return slope
    if kind == "transformed_tanh":
        t = transforms_of(module) or {}
        t_x = torch.tanh(x)
        alpha = broadcast_units(t["alpha"], x) if "alpha" in t else 0.0
        gamma = broadcast_units(t["gamma"], x) if "gamma" in t else 1.0
        return gamma * (1.0 - t_x * t_x + alpha)
    return None


class Measurement:
    """The layers measured in one probe forward pass, in the order they ran."""

    def __init__(self) -> None:
        self.layers: List[UnitStats] = []
        self.kinds: Dict[str, str] = {}
        self._seen: Dict[str, int] = {}

    def unique(self, name: str) -> str:
        """`name`, or `name#2`, `name#3`… for the second and later call of one module (one
        `nn.ReLU()` used at several places is several layers)."""
        count = self._seen.get(name, 0) + 1
        self._seen[name] = count
        return name if count == 1 else f"{name}#{count}"

    def add(self, name: str, kind: str, stats: UnitStats) -> None:
        self.kinds[name] = kind
        self.layers.append(stats)


#: The measurement the probe forward pass is filling, for `probe` taps; None between probes.
_active: Optional[Measurement] = None


def probe(name: str, output: torch.Tensor, pre: Optional[torch.Tensor] = None, kind: str = "relu") -> torch.Tensor:
    """An explicit tap for an activation called as a function: `y = probe("h1", F.relu(z),
    pre=z, kind="relu")`. Returns `output` unchanged; only during a watched run's probe pass
    does it measure (its cost otherwise is one comparison). `kind`: tanh, sigmoid, relu,
    gelu, gelu_tanh or silu; `pre`, the activation's input, gives the input spread and the
    slope of gelu and silu."""
    measurement = _active
    if measurement is not None:
        unique = measurement.unique(name)
        measurement.add(unique, kind, measure(unique, kind, pre, output))
    return output


class Hooks:
    """The activation modules of one model, hooked during `run(model_call)` only."""

    def __init__(self, model: nn.Module) -> None:
        self.modules: List[Tuple[str, nn.Module, str]] = [
            (name or type(module).__name__, module, kind)
            for name, module in model.named_modules()
            if (kind := kind_of(module)) is not None
        ]

    def run(self, forward: Callable[[], Any]) -> Tuple[Any, Measurement]:
        """Calls `forward()` with every hook and the `probe` taps attached; returns its
        output and what was measured."""
        global _active
        measurement = Measurement()
        handles = []
        inputs: Dict[int, torch.Tensor] = {}

        def before(name: str, module: nn.Module) -> Callable[..., None]:
            def hook(_module: nn.Module, args: Tuple[Any, ...]) -> None:
                if args and isinstance(args[0], torch.Tensor):
                    # An in-place activation overwrites its input: keep a copy.
                    x = args[0]
                    inputs[id(module)] = x.detach().clone() if getattr(module, "inplace", False) else x.detach()

            return hook

        def after(name: str, module: nn.Module, kind: str) -> Callable[..., None]:
            def hook(_module: nn.Module, _args: Tuple[Any, ...], output: Any) -> None:
                if not isinstance(output, torch.Tensor):
                    return
                x = inputs.pop(id(module), None)
                y = output.detach()
                own = module_slope(module, kind, x, y) if x is not None else None
                unique = measurement.unique(name)
                measurement.add(unique, kind, measure(unique, kind, x, y, own, transforms_of(module)))

            return hook

        try:
            for name, module, kind in self.modules:
                handles.append(module.register_forward_pre_hook(before(name, module)))
                handles.append(module.register_forward_hook(after(name, module, kind)))
            _active = measurement
            output = forward()
        finally:
            _active = None
            for handle in handles:
                handle.remove()
        return output, measurement
