"""Any PyTorch model, watched and steered with ltmlp: a plain ReLU `nn.Sequential` MLP and a
small conv net on MNIST (IDX files, gzipped or not), a few seconds each on a CPU.

    cargo build --release && export LTMLP_BIN=$PWD/target/release/ltmlp
    python python/examples/watch_any_model.py [--data assets/mnist-mini] [--model both]

While one trains, from another terminal (or over SSH):

    ltmlp attach runs/torch-relu-mlp-…          # the dashboard: space pauses, d detaches
    ltmlp ctl runs/torch-relu-mlp-… set train.learning_rate=0.02
    ltmlp ctl runs/torch-relu-mlp-… checkpoint   # torch.save into the run folder
    ltmlp ctl runs/torch-relu-mlp-… stop
    ltmlp ls; ltmlp report runs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

# The checkout's package when ltmlp is not installed (an installed one, or PYTHONPATH, wins).
sys.path.append(str(Path(__file__).resolve().parents[1]))
import ltmlp.torch  # noqa: E402
from ltmlp.idx import IdxError, prepare  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def load(folder: str, limit: int):
    """(train, validation, test) as image tensors [n, 1, 28, 28] in [0, 1] with class indices:
    the first `limit` training images, the last sixth of them held out (ltmlp.idx, the Rust
    side's preparation)."""
    try:
        data = prepare(folder, train_limit=limit)
    except IdxError as e:
        sys.exit(f"--data: {e}")

    def tensors(split):
        x, y = split
        return torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28), torch.tensor(y, dtype=torch.long)

    return tensors(data.train), tensors(data.validation), tensors(data.test)


def relu_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def conv_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.GELU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.Tanh(), nn.Linear(64, 10))


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        error = 100.0 * int((logits.argmax(1) != y).sum()) / len(y)
    model.train()
    return loss, error


def train(name: str, model: nn.Module, data, args) -> None:
    (x, y), (vx, vy), (tx, ty) = data
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9)
    run_dir = os.path.join(args.runs, f"torch-{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    batch = 100
    steps = len(x) // batch
    print(f"{name}: training in {run_dir}; attach with: ltmlp attach {run_dir}", flush=True)
    with ltmlp.torch.watch(model, run_dir, probe=vx[:500], epochs=args.epochs, optimizer=optimizer,
                           name=f"torch-{name}", batch_size=batch, iterations_per_epoch=steps,
                           data=f"MNIST IDX from {args.data}, {len(x)} train, {len(vx)} validation",
                           settings={"train.seed": args.seed, "train.batch_size": batch}) as run:
        for epoch in range(run.epochs_done, args.epochs):
            if run.stopped:
                break  # a stop that came while the last epoch was recorded
            order = torch.randperm(len(x))
            for i in range(steps):
                pick = order[i * batch:(i + 1) * batch]
                loss = nn.functional.cross_entropy(model(x[pick]), y[pick])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if args.sleep:
                    time.sleep(args.sleep)  # slow enough to steer by hand
                if not run.step(loss):
                    break
            if run.stopped:
                print(f"{name}: stopped by a viewer", flush=True)
                break
            train_fig, valid_fig, test_fig = evaluate(model, x, y), evaluate(model, vx, vy), evaluate(model, tx, ty)
            run.epoch(train=train_fig, valid=valid_fig, test=test_fig)
            print(f"{name}: epoch {epoch + 1}: validation error {valid_fig[1]:.2f} %", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "assets" / "mnist-mini"),
                        help="an MNIST IDX folder (default: the repository's MNIST subset)")
    parser.add_argument("--model", choices=["mlp", "conv", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=1500, help="training examples read")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per minibatch, to steer by hand")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    data = load(args.data, args.limit)
    if args.model in ("mlp", "both"):
        train("relu-mlp", relu_mlp(), data, args)
    if args.model in ("conv", "both"):
        train("conv-net", conv_net(), data, args)


if __name__ == "__main__":
    main()
