"""ltmlp.torch.SGD: the authors' recipe as src/train/optimizer.rs and schedule.rs do it.

Heavy-ball momentum without a (1 - mu) factor, v <- g + lambda w + mu v, and
w <- w - eta_t * s * v, where a shortcut from layer k to layer l has the step scale
s = 2^-(l-k-1); biases are decayed too and may have a momentum of their own. Schedules:
"constant", and "paper" (mu rises linearly from momentum_initial to momentum over
burn_in_epochs, then eta is multiplied by rate_decay after every epoch).
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch

SCHEDULES = ("constant", "paper")


class SGD(torch.optim.Optimizer):
    """SGD(model_or_params, lr, momentum=0.0, ...).

    Given a TransformedMLP, its `sgd_groups()` carry the shortcut step scales; given plain
    parameters (or groups), every step scale is 1 (a group may set "step_scale" and
    "is_bias"). Call `end_epoch()` after every epoch for the paper schedule.
    `set_learning_rate(lr)` makes the rate lr from now on (the step scales multiply it and the
    schedule's later decay goes on from it) and `set_momentum(m)` holds the momentum at m over
    the schedule's ramp, as the Rust trainer's steering does.
    """

    def __init__(
        self,
        model_or_params: Union[torch.nn.Module, Iterable[Any]],
        lr: float,
        momentum: float = 0.0,
        *,
        bias_momentum: Optional[float] = None,
        weight_decay: float = 0.0,
        schedule: str = "constant",
        momentum_initial: float = 0.5,
        burn_in_epochs: int = 50,
        rate_decay: float = 0.9,
        momentum_reset_after_burn_in: bool = False,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule = {schedule!r}: use one of {', '.join(SCHEDULES)}")
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not (value >= 0.0 and value == value):
                raise ValueError(f"{name} = {value}: it must be a number >= 0")
        own_groups = getattr(model_or_params, "sgd_groups", None)
        groups: Iterable[Any] = own_groups() if callable(own_groups) else model_or_params  # type: ignore[assignment]
        super().__init__(groups, {"lr": float(lr), "step_scale": 1.0, "is_bias": False})
        self.base_lr = float(lr)
        self.base_momentum = float(momentum)
        self.bias_momentum = None if bias_momentum is None else float(bias_momentum)
        self.weight_decay = float(weight_decay)
        self.schedule = schedule
        self.momentum_initial = float(momentum_initial)
        self.burn_in_epochs = int(burn_in_epochs)
        self.rate_decay = float(rate_decay)
        self.momentum_reset_after_burn_in = bool(momentum_reset_after_burn_in)
        self.momentum_override: Optional[float] = None
        self.epoch = 0
        self._publish()

    def set_learning_rate(self, lr: float) -> None:
        """The rate is lr from now on, and the schedule's later decay multiplies it (the Rust
        trainer's rule): the base rate becomes lr over the schedule's present factor, so that
        each group's "lr" shows lr (times its step scale) and scaling it scales the rate."""
        if not (lr > 0.0 and lr != float("inf")):
            raise ValueError(f"learning rate {lr}: it must be a finite number > 0")
        factor = self.learning_rate() / self.base_lr if self.base_lr > 0.0 else 1.0
        self.base_lr = float(lr) / factor if factor > 0.0 else float(lr)
        self._publish()

    def set_momentum(self, momentum: float) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum {momentum}: it must be in [0, 1)")
        self.momentum_override = float(momentum)
        self._publish()

    def end_epoch(self) -> None:
        """One more completed epoch (the paper schedule's clock)."""
        self.epoch += 1
        self._publish()

    def learning_rate(self) -> float:
        """eta_t: the base rate after the schedule (before the step scales)."""
        if self.schedule == "paper":
            decays = max(0, self.epoch + 1 - self.burn_in_epochs)
            return self.base_lr * self.rate_decay**decays
        return self.base_lr

    def momentum(self) -> float:
        """mu_t of the weights."""
        if self.momentum_override is not None:
            return self.momentum_override
        if self.schedule == "paper":
            if self.epoch >= self.burn_in_epochs:
                return self.momentum_initial if self.momentum_reset_after_burn_in else self.base_momentum
            progress = self.epoch / max(1, self.burn_in_epochs)
            return self.momentum_initial + (self.base_momentum - self.momentum_initial) * progress
        return self.base_momentum

    def _publish(self) -> None:
        """Each group's effective "lr" and "momentum", for whoever reads the groups."""
        eta, mu = self.learning_rate(), self.momentum()
        for g in self.param_groups:
            g["lr"] = eta * g.get("step_scale", 1.0)
            g["momentum"] = self.bias_momentum if g.get("is_bias") and self.bias_momentum is not None else mu

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        eta, mu = self.learning_rate(), self.momentum()
        # One pass of multi-tensor (foreach) operations per momentum: on a GPU a launch per
        # operation, not per parameter.
        by_momentum: Dict[float, Tuple[List[Any], List[Any], List[Any], List[Any]]] = {}
        for group in self.param_groups:
            is_bias = group.get("is_bias", False)
            group_mu = self.bias_momentum if is_bias and self.bias_momentum is not None else mu
            step = eta * group.get("step_scale", 1.0)
            lists = by_momentum.setdefault(group_mu, ([], [], [], []))
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                for into, value in zip(lists, (p, p.grad, state["velocity"], -step)):
                    into.append(value)
        for group_mu, (params, grads, velocities, steps) in by_momentum.items():
            if not params:
                continue
            # v <- mu v + g (+ lambda w), then w <- w - eta s v.
            torch._foreach_mul_(velocities, group_mu)
            torch._foreach_add_(velocities, grads)
            if self.weight_decay != 0.0:
                torch._foreach_add_(velocities, params, alpha=self.weight_decay)
            torch._foreach_add_(params, torch._foreach_mul(velocities, steps))
        return loss

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        state["ltmlp"] = {
            "base_lr": self.base_lr,
            "base_momentum": self.base_momentum,
            "momentum_override": self.momentum_override,
            "epoch": self.epoch,
        }
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("ltmlp", None)
        super().load_state_dict(state_dict)
        if extra:
            self.base_lr = extra["base_lr"]
            self.base_momentum = extra["base_momentum"]
            self.momentum_override = extra["momentum_override"]
            self.epoch = extra["epoch"]
        self._publish()
