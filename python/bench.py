#!/usr/bin/env python3
"""Times a training step of TransformedMLP against a plain torch MLP of the same shape.

Modes, per batch size, device and thread count, interleaved (each repetition times every mode
once, in turn), medians reported:

  plain   nn.Sequential of Linear and Tanh (no shortcuts), torch.optim.SGD with momentum
  never   TransformedMLP (every shortcut) and ltmlp.torch.SGD, transformations never re-estimated
  every   the same, alpha beta (gamma) re-estimated on every minibatch (model.reestimate(x))
  paper   the paper's rule once its error is low: a re-estimation over the whole training set
          (TRAIN_SET examples, in chunks of the batch) once per epoch, its cost spread over the
          epoch's steps

    PYTHONPATH=python python3 python/bench.py                       # CPU, 1 and 2 threads
    PYTHONPATH=python python3 python/bench.py --device cuda --dtype float32 --tf32

The goal (issue 32): `every` and `paper` at most 1.3x `never` at batch 1000.
"""

import argparse
import json
import statistics
import sys
import time

import os

import torch

# The checkout's package when ltmlp is not installed (an installed one, or PYTHONPATH, wins).
sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from ltmlp.torch import SGD, TransformedMLP  # noqa: E402

#: Examples per epoch of the paper's MNIST demo (the amortised epoch-end re-estimation).
TRAIN_SET = 60_000
#: Examples in the timed epoch-end re-estimation (scaled up to TRAIN_SET).
REESTIMATION_SAMPLE = 10_000


def plain_mlp(sizes, dtype, device):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Case:
    """One mode's model, optimizer and step."""

    def __init__(self, mode, sizes, variant, batch, dtype, device):
        self.mode, self.device = mode, device
        self.x = torch.randn(batch, sizes[0], dtype=dtype, device=device)
        self.y = torch.randint(0, sizes[-1], (batch,), device=device)
        if mode == "plain":
            self.model = plain_mlp(sizes, dtype, device)
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        else:
            self.model = TransformedMLP(sizes, variant=variant, dtype=dtype, device=device, seed=1)
            self.opt = SGD(self.model, lr=0.01, momentum=0.9)
            self.model.reestimate(self.x, keep_for_step=False)
        self.extra = 0.0
        if mode == "paper":
            sample = torch.randn(REESTIMATION_SAMPLE, sizes[0], dtype=dtype, device=device)
            self.sample, self.chunk = sample, batch

    def step(self):
        if self.mode == "every":
            self.model.reestimate(self.x)
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()

    def epoch_end_seconds(self):
        """The amortised share of one step in the epoch-end re-estimation."""
        sync(self.device)
        start = time.perf_counter()
        self.model.reestimate(self.sample, keep_for_step=False, chunk=self.chunk)
        sync(self.device)
        whole = (time.perf_counter() - start) * TRAIN_SET / REESTIMATION_SAMPLE
        return whole / (TRAIN_SET / self.chunk)


def time_steps(case, steps):
    sync(case.device)
    start = time.perf_counter()
    for _ in range(steps):
        case.step()
    sync(case.device)
    seconds = (time.perf_counter() - start) / steps
    if case.mode == "paper":
        seconds += case.epoch_end_seconds()
    return seconds


def bench(sizes, variant, batch, dtype, device, reps, steps, modes):
    cases = [Case(m, sizes, variant, batch, dtype, device) for m in modes]
    for c in cases:  # warm-up
        time_steps(c, 2)
    times = {m: [] for m in modes}
    for _ in range(reps):
        for c in cases:
            times[c.mode].append(time_steps(c, steps))
    return {m: statistics.median(t) for m, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="784-800-800-10")
    ap.add_argument("--variant", default="ab", choices=("ab", "abg"))
    ap.add_argument("--batches", default="100,1000")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="CPU thread counts (ignored on CUDA)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matrix products on CUDA")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="steps per timing")
    ap.add_argument("--modes", default="plain,never,every,paper")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here; use --device cpu")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    sizes = [int(n) for n in args.sizes.split("-")]
    dtype = getattr(torch, args.dtype)
    modes = args.modes.split(",")
    threads = [None] if args.device.startswith("cuda") else [int(t) for t in args.threads.split(",")]
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"{args.sizes} [{args.variant}] {args.dtype}{' TF32' if args.tf32 else ''} on {where}; median of {args.reps} interleaved timings of {args.steps} steps")
    print(f"{'threads':>7} {'batch':>6} " + " ".join(f"{m + ' ms':>10}" for m in modes) + "  every/never paper/never  never ex/s")
    rows = []
    for n in threads:
        if n is not None:
            torch.set_num_threads(n)
        for batch in (int(b) for b in args.batches.split(",")):
            t = bench(sizes, args.variant, batch, dtype, args.device, args.reps, args.steps, modes)
            ratio = lambda m: t[m] / t["never"] if m in t and "never" in t else float("nan")
            print(f"{n or '-':>7} {batch:>6} " + " ".join(f"{1000 * t[m]:>10.2f}" for m in modes)
                  + f"  {ratio('every'):>11.2f} {ratio('paper'):>11.2f}  {batch / t.get('never', float('nan')):>10,.0f}")
            rows.append({"threads": n, "batch": batch, "seconds": t, "device": where, "dtype": args.dtype, "tf32": args.tf32})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
