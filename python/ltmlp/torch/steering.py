"""What a viewer's command does to a PyTorch model and optimizer: the learning rate and
momentum on every parameter group (or through the optimizer's own `set_learning_rate` /
`set_momentum`), the transformations' switches and re-estimation on models that have them.
Which commands a run declares follows from the same tests (`supported`), so the host refuses
the others before they reach Python."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, cast

import torch
from torch import nn


def learning_rate(optimizer: Optional[torch.optim.Optimizer]) -> float:
    if optimizer is None or not optimizer.param_groups:
        return float("nan")
    return float(optimizer.param_groups[0].get("lr", float("nan")))


def momentum(optimizer: Optional[torch.optim.Optimizer]) -> float:
    """The momentum of the first parameter group: SGD's `momentum`, Adam's `betas[0]`."""
    if optimizer is None or not optimizer.param_groups:
        return float("nan")
    group = optimizer.param_groups[0]
    if "momentum" in group:
        return float(group["momentum"])
    if "betas" in group:
        return float(group["betas"][0])
    return float("nan")


def has_momentum(optimizer: Optional[torch.optim.Optimizer]) -> bool:
    if optimizer is None:
        return False
    if callable(getattr(optimizer, "set_momentum", None)):
        return True
    return bool(optimizer.param_groups) and all(
        "momentum" in g or "betas" in g for g in optimizer.param_groups
    )


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    own = getattr(optimizer, "set_learning_rate", None)
    if callable(own):
        own(rate)
        return
    for group in optimizer.param_groups:
        group["lr"] = rate


def set_momentum(optimizer: torch.optim.Optimizer, value: float) -> None:
    own = getattr(optimizer, "set_momentum", None)
    if callable(own):
        own(value)
        return
    for group in optimizer.param_groups:
        if "momentum" in group:
            group["momentum"] = value
        elif "betas" in group:
            group["betas"] = (value, group["betas"][1])


class Transformable(Protocol):
    """What a model needs for the `toggle` command (TransformedMLP has it)."""

    def transform_toggles(self) -> Sequence[str]: ...

    def transforms_on(self) -> Mapping[str, bool]: ...

    def switch(self, name: str, on: bool) -> None: ...


class Reestimator(Protocol):
    """What a model needs for the `reestimate` command."""

    def reestimate(self, x: Any) -> None: ...


def transformable(model: nn.Module) -> Optional[Transformable]:
    """The model, or its first submodule, that switches transformations (`transform_toggles`,
    `switch`, `transforms_on`); None when there is none."""
    for module in model.modules():
        if all(callable(getattr(module, m, None)) for m in ("transform_toggles", "switch", "transforms_on")):
            return cast(Transformable, module)
    return None


def flags(model: nn.Module) -> Optional[Dict[str, bool]]:
    """Which transformations are on (`{"alpha": bool, "beta": bool, "gamma": bool}`, the
    protocol's `flags`), read from the model's `transforms_on()`; None for a model without
    transformations."""
    owner = transformable(model)
    if owner is None:
        return None
    on = owner.transforms_on()
    return {name: bool(on.get(name, False)) for name in ("alpha", "beta", "gamma")}


def reestimator(model: nn.Module) -> Optional[Reestimator]:
    """The model, or its first submodule, with `reestimate(x)`."""
    for module in model.modules():
        if callable(getattr(module, "reestimate", None)):
            return cast(Reestimator, module)
    return None


def supported(model: nn.Module, optimizer: Optional[torch.optim.Optimizer]) -> List[str]:
    """The commands this model and optimizer can carry out, by their wire names."""
    commands = ["pause", "resume", "step", "stop", "checkpoint"]
    if optimizer is not None:
        commands += ["set_learning_rate", "scale_learning_rate", "set"]
        if has_momentum(optimizer):
            commands.append("set_momentum")
    if transformable(model) is not None:
        commands.append("toggle")
    if reestimator(model) is not None:
        commands.append("reestimate")
    return commands


def live_settings(optimizer: Optional[torch.optim.Optimizer]) -> List[Dict[str, Any]]:
    """The declared live settings (`ltmlp ctl DIR set KEY=VALUE`)."""
    if optimizer is None:
        return []
    settings = [
        {"key": "train.learning_rate", "type": "float", "min": 0.0, "max": 1000.0,
         "value": repr(learning_rate(optimizer)), "about": "the optimizer's learning rate, every parameter group"},
    ]
    if has_momentum(optimizer):
        settings.append(
            {"key": "train.momentum", "type": "float", "min": 0.0, "max": 0.999999,
             "value": repr(momentum(optimizer)), "about": "SGD's momentum, or Adam's beta1, every parameter group"}
        )
    return settings


def toggle(model: nn.Module, name: str) -> Tuple[bool, str]:
    """Switches transformation `name` (function-preserving, by the model's own `switch`)."""
    owner = transformable(model)
    if owner is None:
        return False, "this model has no transformations to switch"
    toggles = tuple(owner.transform_toggles())
    if name not in toggles:
        return False, f"this model switches {', '.join(toggles) or 'nothing'}, not {name}"
    on = not bool(owner.transforms_on().get(name, False))
    owner.switch(name, on)
    return True, f"{name} {'on' if on else 'off'}"


def reestimate(model: nn.Module, batch: Any) -> Tuple[bool, str]:
    """Re-estimates the transformations on `batch` (the run's probe batch)."""
    owner = reestimator(model)
    if owner is None:
        return False, "this model has no transformations to re-estimate"
    with torch.no_grad():
        owner.reestimate(batch)
    return True, "re-estimated on the probe batch"
