"""What watching costs: seconds per training step of the same model, plain and under
`ltmlp.torch.watch` at the default probe interval, interleaved, on the CPU (one thread).
Prints the median step time of each, their difference in %, and the time spent inside
`run.step` (probe passes included) as a share of the rest of the step, which a busy machine
disturbs far less than the difference of two totals.

    LTMLP_BIN=target/release/ltmlp python python/bench_watch.py [--steps 600] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

import ltmlp.torch as lt
from ltmlp.torch.watch import DEFAULT_EVERY


def model_of(sizes):
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def steps(model, optimizer, x, y, count, run=None):
    """(seconds per step, of which inside `run.step`)."""
    start = time.perf_counter()
    watching = 0.0
    for i in range(count):
        batch = slice((i * 100) % 1000, (i * 100) % 1000 + 100)
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if run is not None:
            before = time.perf_counter()
            run.step(loss)
            watching += time.perf_counter() - before
    return (time.perf_counter() - start) / count, watching / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="784-800-800-10")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    sizes = [int(s) for s in args.sizes.split("-")]
    model = model_of(sizes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(1000, sizes[0]), torch.randint(0, sizes[-1], (1000,))
    plain, watched, inside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        run = lt.watch(model, tmp + "/run", probe=x[:256], epochs=args.rounds, optimizer=optimizer,
                       batch_size=100)
        with run:
            steps(model, optimizer, x, y, 50)  # warm-up
            for _ in range(args.rounds):
                plain.append(steps(model, optimizer, x, y, args.steps)[0])
                total, watching = steps(model, optimizer, x, y, args.steps, run)
                watched.append(total)
                inside.append(watching / (total - watching))
                run.epoch(train=0.0, valid=0.0)
    p, w = statistics.median(plain), statistics.median(watched)
    print(f"{args.sizes}, batch 100, probe 256 examples every {DEFAULT_EVERY} steps, "
          f"{args.rounds} rounds of {args.steps} steps, interleaved, 1 CPU thread")
    print(f"plain   {p * 1e3:.3f} ms/step  (rounds: {', '.join(f'{t * 1e3:.3f}' for t in plain)})")
    print(f"watched {w * 1e3:.3f} ms/step  (rounds: {', '.join(f'{t * 1e3:.3f}' for t in watched)})")
    print(f"overhead {100 * (w - p) / p:+.2f} % (watched against plain, a noisy difference on a busy machine)")
    print(f"time inside run.step: {100 * statistics.median(inside):.2f} % of the rest of a step "
          f"(rounds: {', '.join(f'{100 * r:.2f}' for r in inside)})")


if __name__ == "__main__":
    main()
