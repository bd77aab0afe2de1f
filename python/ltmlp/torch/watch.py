"""`watch(model, …)`: one PyTorch training hosted as an ltmlp run. `Run.step` between
minibatches measures the probe batch every N steps, reports progress and carries out what the
viewers asked; `Run.epoch` records an evaluation; `Run.close` (or the end of a `with` block)
ends the run with its state and reason. Every event goes to an `ltmlp host` child process,
which keeps the run folder; if that process dies, the run goes on and its evaluations are
re-sent to a new host on the same folder (docs/pytorch.md)."""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import time
import traceback
import warnings
from types import FrameType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .. import __version__
from ..host import HostError, HostLink
from . import steering
from .hooks import Hooks, Measurement

#: How often progress goes to the host, at most (seconds).
PROGRESS_EVERY_S = 0.25
#: How long a run waits between attempts to start a new host after one died (seconds).
RESTART_EVERY_S = 5.0
#: The checkpoint `checkpoint` writes when `watch` names no other, in the run folder.
CHECKPOINT_NAME = "torch_checkpoint.pt"
#: The default probe interval, in steps.
DEFAULT_EVERY = 200

Split = Union[None, float, Tuple[float, Optional[float]], Mapping[str, Optional[float]]]


def _user_level() -> int:
    """The `stacklevel` that names the user's line (their `run.step`) rather than this
    package's, for the frame that calls `warnings.warn`."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: Optional[FrameType] = sys._getframe(2)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level


class HostLost(UserWarning):
    """The `ltmlp host` process of a watched run died; the run goes on."""


def _figures(split: str, value: Split) -> Tuple[Optional[float], Optional[float]]:
    """(loss, error %) of one split given as a number, a (loss, error) pair or a mapping."""
    if value is None:
        return None, None
    if isinstance(value, Mapping):
        unknown = set(value) - {"loss", "error"}
        if unknown:
            raise ValueError(f"run.epoch({split}=…): unknown keys {sorted(unknown)}; give loss and error (%)")
        loss, error = value.get("loss"), value.get("error")
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"run.epoch({split}=…): give (loss, error %), not {len(value)} values")
        loss, error = value
    else:
        loss, error = value, None
    loss = None if loss is None else float(loss)
    error = None if error is None else float(error)
    if error is not None and not 0.0 <= error <= 100.0:
        raise ValueError(f"run.epoch({split}=…): the error is {error}; give it in % (0 to 100)")
    return loss, error


def _precision(model: nn.Module) -> str:
    names = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16"}
    for p in model.parameters():
        return names.get(p.dtype, str(p.dtype))
    return ""


def _device(model: nn.Module) -> Optional[torch.device]:
    for p in model.parameters():
        return p.device
    return None


def kept_records(run_dir: str) -> List[Dict[str, Any]]:
    """The evaluations the host recorded in `metrics.jsonl`: its whole lines, up to the first
    that is not a record (read only: the host keeps the file)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:
        try:
            record = json.loads(line)
        except ValueError:
            break
        if not isinstance(record, dict) or "epoch" not in record:
            break
        records.append(record)
    return records


class Run:
    """A watched PyTorch training; see `watch`."""

    def __init__(
        self,
        model: nn.Module,
        run_dir: str,
        *,
        probe: Any,
        epochs: int,
        every: int = DEFAULT_EVERY,
        optimizer: Optional[torch.optim.Optimizer] = None,
        settings: Optional[Mapping[str, Any]] = None,
        resume: Union[bool, int] = False,
        checkpoint: Optional[str] = None,
        name: Optional[str] = None,
        task: str = "classify",
        data: str = "",
        variant: str = "",
        batch_size: int = 0,
        iterations_per_epoch: int = 0,
        force: bool = False,
        on_host_loss: str = "restart",
        binary: Optional[str] = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"watch(every={every}): give the probe interval in steps, 1 or more")
        if epochs < 1:
            raise ValueError(f"watch(epochs={epochs}): give the planned number of epochs, 1 or more")
        if on_host_loss not in ("restart", "stop"):
            raise ValueError(f"watch(on_host_loss={on_host_loss!r}): give 'restart' or 'stop'")
        self.model = model
        self.dir = str(run_dir)
        self.optimizer = optimizer
        self.every = every
        self.epochs = epochs
        self.batch_size = batch_size
        self.on_host_loss = on_host_loss
        self.checkpoint_path = checkpoint or os.path.join(self.dir, CHECKPOINT_NAME)
        device = _device(model)
        self.probe_batch = probe.to(device) if isinstance(probe, torch.Tensor) and device is not None else probe
        self.hooks = Hooks(model)
        self.iteration = 0
        self.epochs_done = 0
        self.stopped = False
        self.reason: Optional[str] = None
        self.paused = False
        self._steps_allowed = 0
        self._closed = False
        self._warned_host_lost = False
        self._next_restart = 0.0
        self._epoch_events: List[Tuple[Optional[Dict[str, Any]], Dict[str, Any]]] = []
        self._latest_layers: Optional[Dict[str, Any]] = None
        # What a toggle or re-estimation adds to its answer (`_transform`).
        self._transformed: Dict[str, Any] = {}
        self._loss_sum: Union[float, torch.Tensor] = 0.0
        self._loss_count = 0
        self._examples_since = 0
        self._examples_total = 0
        # The examples and training seconds at the last evaluation, for the epoch's examples/s.
        self._epoch_start: Tuple[int, float] = (0, 0.0)
        self._rate: Optional[float] = None
        self._train_seconds = 0.0
        self._clock = time.monotonic()
        self._last_progress = self._clock

        resume_from: Optional[int] = None
        if resume is True:
            resume_from = self._load_checkpoint()
        elif resume is not False:
            resume_from = int(resume)
            records = kept_records(self.dir)
            if len(records) < resume_from:
                raise ValueError(
                    f"watch(resume={resume_from}): {self.dir}/metrics.jsonl holds {len(records)} "
                    f"evaluations; give at most {len(records)}"
                )
            if resume_from > 0:
                self.iteration = int(records[resume_from - 1].get("iteration", 0))
        if resume_from is not None:
            self.epochs_done = resume_from

        output, first = self._probe_pass()
        self._layer_kinds = dict(first.kinds)
        self.declaration = self._declare(output, first, settings, name, task, data, variant,
                                         batch_size, iterations_per_epoch, resume_from)
        self._declared = {layer["name"] for layer in self.declaration["layers"]}
        self._resume_from = resume_from
        self.link = HostLink(self.dir, self.declaration, force=force, binary=binary)
        self._send_layers(first)
        atexit.register(self._at_exit)
        # Training time starts now, not before the host's start.
        self._clock = self._last_progress = time.monotonic()

    # -- the declaration ---------------------------------------------------------------

    def _declare(self, output: Any, first: Measurement, settings: Optional[Mapping[str, Any]],
                 name: Optional[str], task: str, data: str, variant: str, batch_size: int,
                 iterations_per_epoch: int, resume_from: Optional[int]) -> Dict[str, Any]:
        probe = self.probe_batch[0] if isinstance(self.probe_batch, (tuple, list)) else self.probe_batch
        inputs = int(probe.shape[1]) if isinstance(probe, torch.Tensor) and probe.dim() > 1 else 1
        outputs = int(output.shape[1]) if isinstance(output, torch.Tensor) and output.dim() > 1 else 1
        layers = [{"name": "input", "units": inputs, "kind": "input"}]
        for stats in first.layers:
            kind = first.kinds[stats.name]
            # The dashboard draws `tanh` as the tanh it is; every other word as linear.
            word = "tanh" if kind in ("tanh", "transformed_tanh") else kind
            layers.append({"name": stats.name, "units": stats.units, "kind": word})
        layers.append({"name": "output", "units": outputs, "kind": "softmax" if task == "classify" else "linear"})
        names = [layer["name"] for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"watch: a module is named `input` or `output`; the run's layer names must be unique: {names}")
        config: Dict[str, Any] = {
            "torch.model": type(self.model).__name__,
            "torch.every": self.every,
            "torch.probe_examples": int(probe.shape[0]) if isinstance(probe, torch.Tensor) else 0,
            "torch.optimizer": type(self.optimizer).__name__ if self.optimizer is not None else None,
        }
        on = steering.flags(self.model)
        for param, value in (on or {}).items():
            # The switches at the start, shown with the run (`run.json`).
            config[f"transforms.{param}"] = value
        for key, value in (settings or {}).items():
            config[str(key)] = value if isinstance(value, (int, float, str, bool, list)) or value is None else str(value)
        transformable = steering.transformable(self.model)
        declaration: Dict[str, Any] = {
            "protocol": 1,
            "producer": name or f"torch-{type(self.model).__name__}",
            "version": f"ltmlp.torch {__version__}, torch {torch.__version__}",
            "layers": layers,
            "epochs": self.epochs,
            "iterations_per_epoch": iterations_per_epoch,
            "batch_size": batch_size,
            "weights": sum(p.numel() for p in self.model.parameters()),
            "task": task,
            "data": data,
            "variant": variant or ("torch" if transformable is None else "torch-transformed"),
            "precision": _precision(self.model),
            "optimizer": "adam" if isinstance(self.optimizer, torch.optim.Adam) else "sgd",
            "commands": steering.supported(self.model, self.optimizer),
            "settings": steering.live_settings(self.optimizer),
            "config": config,
        }
        if resume_from is not None:
            declaration["resume_from"] = resume_from
        return declaration

    def _load_checkpoint(self) -> int:
        path = self.checkpoint_path
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"watch(resume=True): no checkpoint at {path}; the run's `checkpoint` command "
                f"writes one there, or give resume=N after loading your own checkpoint of epoch N"
            )
        saved = torch.load(path, map_location=_device(self.model) or "cpu", weights_only=False)
        if not isinstance(saved, dict) or "model" not in saved or "epoch" not in saved:
            raise ValueError(f"{path}: not a checkpoint of ltmlp.torch (it needs `model` and `epoch`)")
        self.model.load_state_dict(saved["model"])
        if self.optimizer is not None and saved.get("optimizer") is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
        self.iteration = int(saved.get("iteration", 0))
        return int(saved["epoch"])

    # -- measuring ---------------------------------------------------------------------

    def _probe_pass(self) -> Tuple[Any, Measurement]:
        """The probe batch through the model in eval mode, without gradients, every
        activation hooked; the model's mode is restored after."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                batch = self.probe_batch
                call = (lambda: self.model(*batch)) if isinstance(batch, (tuple, list)) else (lambda: self.model(batch))
                return self.hooks.run(call)
        finally:
            self.model.train(was_training)

    def measure(self) -> None:
        """Measures the probe batch now and sends the statistics (`step` does so every
        `every` steps, `epoch` at each evaluation)."""
        _, measurement = self._probe_pass()
        self._send_layers(measurement)

    def _send_layers(self, measurement: Measurement) -> None:
        layers = [s.layer_event() for s in measurement.layers if s.name in self._declared]
        self._latest_layers = {"layers": {"iteration": self.iteration, "layers": layers}}
        self._send(self._latest_layers, clean_floats=False)

    # -- the training loop ---------------------------------------------------------------

    def step(self, loss: Union[None, float, torch.Tensor] = None, examples: Optional[int] = None) -> bool:
        """Call once per minibatch, after the optimizer's step: counts it, measures the probe
        batch every `every` steps, reports progress, and carries out the viewers' commands
        (a pause waits here until resume). `examples`: the minibatch's size (default:
        `watch`'s `batch_size`), for examples/s. Returns False once the run is stopped
        (`stop`, or the host lost with `on_host_loss="stop"`): leave the loop then."""
        if self._closed:
            return False
        now = time.monotonic()
        self._train_seconds += now - self._clock
        self._clock = now
        self.iteration += 1
        counted = examples if examples is not None else self.batch_size
        self._examples_since += counted
        self._examples_total += counted
        if loss is not None:
            # Kept on the device: no synchronisation until progress is sent.
            self._loss_sum = self._loss_sum + (loss.detach() if isinstance(loss, torch.Tensor) else float(loss))
            self._loss_count += 1
        if self.iteration % self.every == 0:
            self.measure()
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._progress(now)
        self._serve()
        self._clock = time.monotonic()
        return not self.stopped

    def _progress(self, now: float) -> None:
        span = now - self._last_progress
        loss = float(self._loss_sum) / self._loss_count if self._loss_count else None
        if self._examples_since and span > 0:
            self._rate = self._examples_since / span
        self._send({"progress": {
            "epoch": self.epochs_done,
            "iteration": self.iteration,
            "batch_loss": loss,
            "learning_rate": steering.learning_rate(self.optimizer),
            "momentum": steering.momentum(self.optimizer),
            "examples_per_second": self._rate,
            "elapsed_seconds": self._train_seconds,
        }})
        self._loss_sum, self._loss_count, self._examples_since = 0.0, 0, 0
        self._last_progress = now

    def epoch(self, train: Split = None, valid: Split = None, test: Split = None) -> None:
        """Records an evaluation: each split as a loss, a (loss, error %) pair or a mapping
        with `loss` and `error`. Epochs count from 1, one call per epoch."""
        if self._closed:
            raise RuntimeError("run.epoch after the run was closed")
        train_loss, train_error = _figures("train", train)
        valid_loss, valid_error = _figures("valid", valid)
        test_loss, test_error = _figures("test", test)
        self.measure()
        self.epochs_done += 1
        examples, seconds = self._examples_total - self._epoch_start[0], self._train_seconds - self._epoch_start[1]
        self._epoch_start = (self._examples_total, self._train_seconds)
        event = {"epoch": {
            "epoch": self.epochs_done,
            "iteration": self.iteration,
            "train_loss": train_loss,
            "train_error": train_error,
            "validation_loss": valid_loss,
            "validation_error": valid_error,
            "test_loss": test_loss,
            "test_error": test_error,
            "learning_rate": steering.learning_rate(self.optimizer),
            "momentum": steering.momentum(self.optimizer),
            "examples_per_second": examples / seconds if examples and seconds > 0 else None,
            "elapsed_seconds": self._train_seconds,
            "flags": steering.flags(self.model),
        }}
        self._epoch_events.append((self._latest_layers, event))
        self._send(event)
        self._serve()

    def log(self, text: str) -> None:
        """A line in the run's log (the dashboard's log panel)."""
        self._send({"log": str(text)})

    def probe(self, name: str, output: torch.Tensor, pre: Optional[torch.Tensor] = None, kind: str = "relu") -> torch.Tensor:
        """The explicit tap for functional activations; see `ltmlp.torch.probe`."""
        from .hooks import probe as tap

        return tap(name, output, pre=pre, kind=kind)

    # -- commands ------------------------------------------------------------------------

    def _serve(self) -> None:
        """Carries out every command that came; while paused, waits for the next one."""
        while True:
            self._check_host()
            if self.stopped:
                return
            command = self.link.next_command(0.05 if self.paused and self._steps_allowed == 0 else 0.0)
            if command is None:
                if not self.paused or self._steps_allowed > 0:
                    self._steps_allowed = max(0, self._steps_allowed - 1) if self.paused else 0
                    return
                continue
            ok, message = self._carry_out(command["command"])
            self._send({"ack": dict(self._transformed, id=command["id"], ok=ok, message=message,
                                    iteration=self.iteration)})
            self._transformed = {}
            if ok:
                self._position()

    def _position(self) -> None:
        """A progress event without a loss: viewers see the rate, momentum and examples/s of
        now (while paused too, and as the run's last word for its summary)."""
        self._send({"progress": {
            "epoch": self.epochs_done,
            "iteration": self.iteration,
            "batch_loss": None,
            "learning_rate": steering.learning_rate(self.optimizer),
            "momentum": steering.momentum(self.optimizer),
            "examples_per_second": self._rate,
            "elapsed_seconds": self._train_seconds,
        }})

    def _carry_out(self, body: Any) -> Tuple[bool, str]:
        """One command: (ok, what was done or why not)."""
        try:
            return self._apply(body)
        except Exception as e:  # a command must never end the training
            return False, f"{type(e).__name__}: {e}"

    def _apply(self, body: Any) -> Tuple[bool, str]:
        optimizer = self.optimizer
        if body == "pause":
            if not self.paused:
                self.paused = True
                self._position()  # the state change dated where it happened
                self._send({"state": "paused"})
            return True, f"paused at iteration {self.iteration}"
        if body == "resume":
            if self.paused:
                self.paused = False
                self._position()
                self._send({"state": "running"})
            return True, "running"
        if body == "step":
            self._steps_allowed += 1
            return True, "one minibatch"
        if body == "stop":
            self.stopped = True
            self.reason = "stopped on request"
            return True, f"stopping at iteration {self.iteration}"
        if body == "checkpoint":
            return True, self.save_checkpoint()
        if body == "reestimate":
            return self._transform(lambda: steering.reestimate(self.model, self.probe_batch))
        if isinstance(body, dict) and len(body) == 1:
            (key, value), = body.items()
            if key == "toggle":
                return self._transform(lambda: steering.toggle(self.model, str(value)))
            if optimizer is not None and key == "set_learning_rate":
                steering.set_learning_rate(optimizer, float(value))
                return True, f"learning rate → {float(value):g}"
            if optimizer is not None and key == "scale_learning_rate":
                rate = steering.learning_rate(optimizer) * float(value)
                steering.set_learning_rate(optimizer, rate)
                return True, f"learning rate → {rate:g}"
            if optimizer is not None and key == "set_momentum" and steering.has_momentum(optimizer):
                steering.set_momentum(optimizer, float(value))
                return True, f"momentum → {float(value):g}"
            if optimizer is not None and key == "set":
                setting, text = value["key"], value["value"]
                if setting == "train.learning_rate":
                    return self._apply({"set_learning_rate": float(text)})
                if setting == "train.momentum":
                    return self._apply({"set_momentum": float(text)})
                return False, f"ltmlp.torch has no live setting {setting}"
        return False, f"ltmlp.torch does not carry out {json.dumps(body)}"

    def _transform(self, change: Callable[[], Tuple[bool, str]]) -> Tuple[bool, str]:
        """A toggle or re-estimation, with what its answer tells the viewers: the switches
        after it and the largest change of any output on the probe batch (function-preserving
        means about 1e-6 in f32, 1e-12 in f64)."""
        before, _ = self._probe_pass()
        ok, message = change()
        if ok:
            after, _ = self._probe_pass()
            self._transformed = {"flags": steering.flags(self.model)}
            if isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor) and before.shape == after.shape:
                self._transformed["max_output_change"] = float((after - before).abs().max())
        return ok, message

    def save_checkpoint(self, path: Optional[str] = None) -> str:
        """`torch.save` of the model's and the optimizer's state, the epochs done and the
        iteration (written to a temporary name, then renamed); returns what was done."""
        path = path or self.checkpoint_path
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "epoch": self.epochs_done,
            "iteration": self.iteration,
            "ltmlp_torch": __version__,
        }
        partial = path + ".partial"
        torch.save(state, partial)
        os.replace(partial, path)
        return f"checkpoint after epoch {self.epochs_done}, iteration {self.iteration}: {path}"

    # -- the host ------------------------------------------------------------------------

    def _send(self, event: Dict[str, Any], clean_floats: bool = True) -> None:
        if not self.link.send(event, clean_floats):
            self._check_host()

    def _check_host(self) -> None:
        """Notices a dead host: warns once, then stops the run or starts a new host on the
        same folder and re-sends every evaluation it did not record."""
        if self.link.alive:
            return
        if not self._warned_host_lost:
            self._warned_host_lost = True
            what = "the run stops" if self.on_host_loss == "stop" else (
                "training goes on; a new host is started on the same folder and given what it missed")
            warnings.warn(f"ltmlp.torch: {self.link.why_gone()}; {what}", HostLost,
                          stacklevel=_user_level())
        if self.on_host_loss == "stop":
            if not self.stopped:
                self.stopped = True
                self.reason = f"the host was lost: {self.link.why_gone()}"
            return
        now = time.monotonic()
        if now < self._next_restart:
            return
        self._next_restart = now + RESTART_EVERY_S
        self._restart()

    def _restart(self) -> bool:
        """A new host on the same folder through the host's resume, given every evaluation
        the folder lacks, the latest statistics and the state; False if it could not start."""
        self.link.close()
        kept = min(len(kept_records(self.dir)), len(self._epoch_events) + (self._resume_from or 0))
        declaration = dict(self.declaration, resume_from=kept)
        try:
            link = HostLink(self.dir, declaration, binary=self.link.binary)
        except HostError as e:
            print(f"ltmlp.torch: a new host could not start ({e}); trying again in {RESTART_EVERY_S:.0f} s",
                  file=sys.stderr)
            return False
        self.link = link
        base = self._resume_from or 0
        for layers, event in self._epoch_events:
            if event["epoch"]["epoch"] > kept:
                if layers is not None:
                    link.send(layers)
                link.send(event)
        if self._latest_layers is not None:
            link.send(self._latest_layers)
        if self.paused:
            link.send({"state": "paused"})
        link.send({"log": f"ltmlp.torch: a new host took over after the last one was lost; "
                          f"{max(0, base + len(self._epoch_events) - kept)} evaluations re-sent"})
        return True

    # -- the end -------------------------------------------------------------------------

    def close(self, state: Optional[str] = None, reason: Optional[str] = None) -> Optional[int]:
        """Ends the run: `finished` when every planned epoch was recorded, else `stopped`
        with the reason; returns the host's exit status."""
        if self._closed:
            return None
        if state is None:
            if self.stopped:
                state, reason = "stopped", self.reason
            elif self.epochs_done >= self.epochs:
                state = "finished"
            else:
                state = "stopped"
                reason = reason or f"the script closed the run after epoch {self.epochs_done} of {self.epochs}"
        if not self.link.alive:
            # Either way the folder is completed: a new host records the end.
            self._restart()
        if self._examples_total and self._train_seconds > 0:
            # The summary's examples/s is the last progress event's: the whole run's average.
            self._rate = self._examples_total / self._train_seconds
            self._position()
        self._closed = True
        atexit.unregister(self._at_exit)
        return self.link.finish({
            "state": state,
            "reason": reason,
            "iterations": self.iteration,
            "train_seconds": self._train_seconds,
        })

    def _at_exit(self) -> None:
        self.close("stopped", "the script exited without closing the run (run.close())")

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, kind: Any, error: Any, tb: Any) -> None:
        if error is None:
            self.close()
            return
        where = traceback.extract_tb(tb)[-1] if tb is not None else None
        at = f" ({os.path.basename(where.filename)}:{where.lineno})" if where is not None else ""
        self.close("stopped", f"the script raised {kind.__name__}: {error}{at}")


def watch(model: nn.Module, dir: str, *, probe: Any, epochs: int, every: int = DEFAULT_EVERY,
          optimizer: Optional[torch.optim.Optimizer] = None, settings: Optional[Mapping[str, Any]] = None,
          resume: Union[bool, int] = False, **options: Any) -> Run:
    """Hosts the training of `model` as the ltmlp run in folder `dir` (docs/pytorch.md).

    probe: the batch measured every `every` steps (a tensor, or a tuple of the model's
    arguments); epochs: the planned length; optimizer: steered by the viewers' rate and
    momentum commands and saved by `checkpoint`; settings: the script's own settings, shown
    with the run and used by `ltmlp report` to group runs; resume: True continues the folder
    from the run's checkpoint (loaded into model and optimizer), N continues it after epoch N
    from a checkpoint you loaded yourself. Further options: checkpoint (path), name, task
    (classify, autoencode, regress), data, variant, batch_size, iterations_per_epoch, force,
    on_host_loss ("restart" or "stop"), binary."""
    return Run(model, dir, probe=probe, epochs=epochs, every=every, optimizer=optimizer,
               settings=settings, resume=resume, **options)
