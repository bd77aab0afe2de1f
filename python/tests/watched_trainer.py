"""A small watched training for the tests, run as a child process: a tiny classifier on
random data, `--steps` minibatches per epoch with a short sleep, so a test can steer it with
`ltmlp ctl`, kill it, or kill its host. At the end it writes what it ended with to
`--result` (JSON): the optimizer's rate and momentum, the steps taken, the run's state."""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn

import ltmlp.torch as lt
from ltmlp.torch import TransformedMLP


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=0.02)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--model", choices=["plain", "transformed"], default="plain")
    parser.add_argument("--raise-at", type=int, default=0, help="raise at this step")
    parser.add_argument("--resume", default="", help="true, or the epoch to continue after")
    parser.add_argument("--on-host-loss", default="restart")
    parser.add_argument("--result", default="")
    args = parser.parse_args()

    torch.manual_seed(0)
    if args.model == "plain":
        model: nn.Module = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 2))
    else:
        # The engine's network: every shortcut, alpha and beta on, re-estimated every step.
        model = TransformedMLP([4, 6, 2], variant="ab", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    x = torch.randn(200, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()
    resume = {"": False, "true": True}.get(args.resume.lower(), None)
    if resume is None:
        resume = int(args.resume)
    run = lt.watch(model, args.dir, probe=x[:50], epochs=args.epochs, every=args.every,
                   optimizer=optimizer, resume=resume, batch_size=20,
                   iterations_per_epoch=args.steps, on_host_loss=args.on_host_loss,
                   settings={"train.seed": 0})
    steps = 0
    with run:
        for epoch in range(run.epochs_done, args.epochs):
            for i in range(args.steps):
                batch = slice((i * 20) % 200, (i * 20) % 200 + 20)
                if isinstance(model, TransformedMLP) and model.flags:
                    model.reestimate(x[batch])
                loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                if args.raise_at and steps == args.raise_at:
                    raise RuntimeError("the data loader broke")
                time.sleep(args.sleep)
                if not run.step(loss):
                    break
            if run.stopped:
                break
            with torch.no_grad():
                logits = model(x)
                loss = float(nn.functional.cross_entropy(logits, y))
                error = float((logits.argmax(1) != y).float().mean()) * 100
            run.epoch(train=(loss, error), valid=(loss * 1.1, error))
    if args.result:
        with open(args.result, "w") as f:
            json.dump({
                "learning_rate": optimizer.param_groups[0]["lr"],
                "momentum": optimizer.param_groups[0]["momentum"],
                "steps": steps,
                "iteration": run.iteration,
                "stopped": run.stopped,
                "pid": os.getpid(),
                "flags": model.transforms_on() if isinstance(model, TransformedMLP) else None,
            }, f)


if __name__ == "__main__":
    main()
