"""Small stand-ins for the tests: a hidden unit with per-unit alpha, beta, gamma buffers
named as the engine's `TransformedTanh`, and a model that switches and re-estimates them
through the interface `watch` looks for (`transform_toggles`, `switch`, `transforms_on`,
`reestimate`)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn


class TransformedTanh(nn.Module):
    """gamma * (tanh(x) + alpha * x + beta), per unit along dim 1."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.register_buffer("alpha", torch.linspace(-0.5, 0.25, units))
        self.register_buffer("beta", torch.linspace(0.0, 0.3, units))
        self.register_buffer("gamma", torch.linspace(1.0, 2.0, units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * (torch.tanh(x) + self.alpha * x + self.beta)


class Switchable(nn.Module):
    """An MLP with one TransformedTanh layer whose alpha and beta switch on and off; it
    records each switch and re-estimation so a test can see them arrive."""

    def __init__(self, inputs: int = 4, hidden: int = 6, outputs: int = 2) -> None:
        super().__init__()
        self.first = nn.Linear(inputs, hidden)
        self.unit = TransformedTanh(hidden)
        self.last = nn.Linear(hidden, outputs)
        self.on: Dict[str, bool] = {"alpha": True, "beta": True}
        self.calls: List[Tuple[str, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.unit(self.first(x)))

    def transform_toggles(self) -> Tuple[str, ...]:
        return ("alpha", "beta")

    def transforms_on(self) -> Dict[str, bool]:
        return dict(self.on)

    def switch(self, name: str, on: bool) -> None:
        self.on[name] = on
        self.calls.append(("switch", name, str(on)))
        if not on:
            getattr(self.unit, name).zero_()

    def reestimate(self, x: torch.Tensor) -> None:
        self.calls.append(("reestimate", str(tuple(x.shape))))
