"""Reading `ltmlp run --trace FILE` (format in docs/pytorch.md) and retracing the run
with TransformedMLP and ltmlp.torch.SGD: the same initial network, minibatches, re-estimations
and updates, so that the losses and alpha, beta, gamma can be compared step by step.
"""

import json
import math
import os
from typing import Any, Dict, List, Optional

from .idx import Prepared

try:
    import tomllib
except ImportError:  # Python before 3.11: the same parser as a package
    tomllib = None  # type: ignore[assignment]

TRACE_FORMAT = "ltmlp-trace-1"
#: Probabilities are clamped here before the log, as the Rust side does.
MIN_PROBABILITY = 1e-30


class TraceError(ValueError):
    """A trace that cannot be read or retraced."""


class Trace:
    """A trace's header (with its preset as `config`), its step lines, and where its initial
    network is."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, encoding="utf-8") as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
        except OSError as e:
            raise TraceError(f"{path}: cannot read: {e.strerror}") from None
        if not lines:
            raise TraceError(f"{path}: empty; write it with `ltmlp run PRESET --trace {path}`")
        try:
            self.header = json.loads(lines[0])
            steps = [json.loads(line) for line in lines[1:]]
        except json.JSONDecodeError as e:
            raise TraceError(f"{path}: line {e.lineno}: not JSON ({e.msg})") from None
        # A step taken again replaces its earlier line and every line after it: the trainer
        # begins an epoch on an assumed decision of the paper rule while the last one is still
        # being evaluated, and retakes it from the epoch's end when the evaluation contradicts it.
        self.steps: List[Dict[str, Any]] = []
        for line in steps:
            del self.steps[line["step"] :]
            if len(self.steps) != line["step"]:
                raise TraceError(f"{path}: step {line['step']} follows step {len(self.steps) - 1}; the trace is incomplete")
            self.steps.append(line)
        if self.header.get("format") != TRACE_FORMAT:
            raise TraceError(f"{path}: format {self.header.get('format')!r}, expected {TRACE_FORMAT!r}")
        if tomllib is None:
            raise TraceError(f"{path}: reading a trace needs Python 3.11 or later (tomllib)")
        self.config = tomllib.loads(self.header["config"])
        self.init = os.path.join(os.path.dirname(path), self.header["init"])
        self.flags = {name for name, on in self.header["flags"].items() if on}


class Retrace:
    """Trains a TransformedMLP (float64) as the traced run did: call `step(line)` with each
    step line; `evaluate()` gives an epoch's metrics as metrics.jsonl has them."""

    def __init__(self, trace: Trace, data: Prepared, device: str = "cpu") -> None:
        import torch

        from ltmlp.torch.sgd import SGD
        from ltmlp.torch.transformed import TransformedMLP

        self.torch, self.trace, self.device = torch, trace, device
        c = trace.config
        train, transforms = c["train"], c["transforms"]
        if train.get("input_noise", 0.0) != 0.0:
            raise TraceError(f"{trace.path}: train.input_noise = {train['input_noise']}: the noise cannot be retraced; run with --set train.input_noise=0")
        if c["model"].get("task", "classify") != "classify":
            raise TraceError(f"{trace.path}: model.task = {c['model']['task']!r}: only classification is retraced")
        self.policy, self.every = transforms["policy"], max(1, int(transforms.get("every", 1)))
        self.paper_threshold = float(transforms.get("paper_threshold", 1.0))
        if self.policy not in ("every", "sample", "paper", "never"):
            raise TraceError(f"{trace.path}: transforms.policy = {self.policy!r}: retraced are every, sample, paper and never")
        if "gamma" in trace.flags and transforms.get("gamma_control", "rollback") != "off":
            raise TraceError(f"{trace.path}: transforms.gamma_control = {transforms.get('gamma_control')!r}: retraced is the papers' rule only; run with --set transforms.gamma_control=off")
        if train.get("optimizer", "sgd") != "sgd" or train.get("schedule") not in ("constant", "paper"):
            raise TraceError(f"{trace.path}: retraced are SGD with the constant and paper schedules")

        def as_tensor(a: Any) -> Any:
            return torch.as_tensor(a, dtype=torch.float64, device=device)

        self.x = {name: as_tensor(split[0]) for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test))}
        self.y = {name: torch.as_tensor(split[1], device=device) for name, split in (("train", data.train), ("validation", data.validation), ("test", data.test))}
        self.monitor_test = c["data"].get("monitor", "validation") == "test"
        self.train_eval_size = int(train.get("train_eval_size", len(data.train[0])))
        self.sample = self.x["train"][trace.header["sample"]] if trace.header["sample"] else None
        self.model = TransformedMLP.from_export(trace.init, dtype=torch.float64, device=device)
        self.model.flags = set(trace.flags)
        self.model.gamma_form = transforms.get("gamma_form", "product")
        self.model.gamma_epsilon = transforms.get("gamma_epsilon", {"product": 1e-4, "rms": 1e-2}[self.model.gamma_form])
        self.optimizer = SGD(
            self.model,
            lr=train["learning_rate"],
            momentum=train["momentum"],
            bias_momentum=train.get("bias_momentum"),
            weight_decay=train.get("weight_decay", 0.0),
            schedule=train["schedule"],
            momentum_initial=train.get("momentum_initial", 0.5),
            burn_in_epochs=train.get("burn_in_epochs", 50),
            rate_decay=train.get("rate_decay", 0.9),
            momentum_reset_after_burn_in=train.get("momentum_reset_after_burn_in", False),
        )
        self.iteration = 0
        self.epoch = 0
        self.batch_size = int(train["batch_size"])
        self.iterations_per_epoch = trace.header["iterations_per_epoch"]
        self.validation_error: Optional[float] = None
        #: Each completed epoch's `evaluate()`, taken before its epoch-end update.
        self.evaluations: List[Dict[str, Any]] = []

    def paper_every_batch(self) -> bool:
        """Whether the paper rule re-estimates on every minibatch (src/train/policy.rs)."""
        return self.epoch == 0 or self.validation_error is None or self.validation_error > self.paper_threshold

    def due(self) -> Optional[str]:
        """Where this step's re-estimation takes its data, if it has one (src/train/policy.rs)."""
        if not self.model.flags or self.policy == "never":
            return None
        if self.policy == "paper":
            return "batch" if self.paper_every_batch() else None
        if self.iteration % self.every:
            return None
        return "sample" if self.policy == "sample" else "batch"

    def end_epoch(self) -> None:
        """The epoch's evaluation, then the paper rule's epoch-end update: a re-estimation on
        the whole training set (noise off) once the validation error is at most the threshold."""
        evaluation = self.evaluate()
        self.evaluations.append(evaluation)
        self.validation_error = evaluation["validation_error"]
        if self.model.flags and self.policy == "paper" and not self.paper_every_batch():
            self.model.reestimate(self.x["train"], keep_for_step=False, chunk=self.batch_size)
        self.epoch += 1
        self.optimizer.end_epoch()

    def step(self, line: Dict[str, Any]) -> Dict[str, Any]:
        """One minibatch of the traced run; returns what the trace line records."""
        torch, model = self.torch, self.model
        model.train()
        index = torch.as_tensor(line["indices"], device=self.device)
        x, y = self.x["train"][index], self.y["train"][index]
        due = self.due()
        rate, momentum = self.optimizer.learning_rate(), self.optimizer.momentum()
        if due == "sample":
            assert self.sample is not None  # the sample policy's trace names its sample
            model.reestimate(self.sample, keep_for_step=False)
        elif due == "batch":
            model.reestimate(x)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        # The line's alpha, beta, gamma are the step's: before an epoch-end update.
        transforms = self.transforms()
        if self.iteration % self.iterations_per_epoch == 0:
            self.end_epoch()
        return {
            "loss": loss.item(),
            "errors": int((logits.argmax(1) != y).sum()),
            "rate": rate,
            "momentum": momentum,
            "bias_momentum": momentum if self.optimizer.bias_momentum is None else self.optimizer.bias_momentum,
            "reestimated": due,
            **transforms,
        }

    def transforms(self) -> Dict[str, List[Any]]:
        """alpha, beta, gamma of every transformed layer, as lists."""
        out: Dict[str, List[Any]] = {"alpha": [], "beta": [], "gamma": []}
        for l in self.model.transformed_layers():
            u = self.model.unit(l)
            for name in out:
                out[name].append(getattr(u, name).tolist())
        return out

    def evaluate(self) -> Dict[str, Any]:
        """An epoch's losses and error rates (percent) and the alpha, beta, gamma ranges per
        layer, under metrics.jsonl's names."""
        torch, model = self.torch, self.model
        model.eval()
        out: Dict[str, Any] = {}
        splits = [("train", self.train_eval_size), ("validation", None)]
        if not self.monitor_test:
            splits.append(("test", None))
        with torch.no_grad():
            for name, rows in splits:
                x, y = self.x[name][:rows], self.y[name][:rows]
                p = model.outputs(x)
                picked = p.gather(1, y[:, None]).clamp(min=MIN_PROBABILITY)
                out[f"{name}_loss"] = -torch.log(picked).sum().item() / max(1, len(y))
                out[f"{name}_error"] = 100.0 * (p.argmax(1) != y).sum().item() / max(1, len(y))
        out["layers"] = [
            {name: {"min": getattr(model.unit(l), name).min().item(), "max": getattr(model.unit(l), name).max().item()} for name in ("alpha", "beta", "gamma")}
            | {"layer": l}
            for l in model.transformed_layers()
        ]
        model.train()
        return out


def relative_gap(a: Any, b: Any) -> float:
    """|a - b| / max(|a|, |b|, tiny) for numbers, the largest over nested lists."""
    if isinstance(a, list):
        return max((relative_gap(u, v) for u, v in zip(a, b)), default=0.0)
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    return float(abs(a - b) / max(abs(a), abs(b), 1e-300))
