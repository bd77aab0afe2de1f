#!/usr/bin/env python3
"""The default preset's experiment (presets/default.toml) in PyTorch: 784-400-400-10 with every
shortcut, alpha beta re-estimated on every minibatch, on the MNIST subset in assets/mnist-mini
(5,000 training images, 1,000 held out, 1,000 test) centred with the training mean, batch 100,
constant rate 0.1, momentum 0.9, input noise 0.3, 50 epochs.

    PYTHONPATH=python python3 python/examples/mnist.py --epochs 5
    PYTHONPATH=python python3 python/examples/mnist.py --device cuda --data /path/to/mnist
    PYTHONPATH=python python3 python/examples/mnist.py --watch runs/torch-mnist   # then: ltmlp attach runs/torch-mnist

--watch hosts the run through ltmlp.torch.watch: `ltmlp attach DIR` shows it, and its a b g keys
switch the transformations between two minibatches.
"""

import argparse
import os
import sys
import time

import torch

# The checkout's package when ltmlp is not installed (an installed one, or PYTHONPATH, wins).
sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ltmlp.idx import IdxError, prepare  # noqa: E402
from ltmlp.torch import SGD, TransformedMLP, watch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: The default preset's rate per variant.
RATES = {"none": 0.02, "ab": 0.1, "abg": 0.05}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(REPO, "assets", "mnist-mini"), help="IDX folder (default: the repository's MNIST subset)")
    ap.add_argument("--variant", choices=sorted(RATES), default="ab")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, help="default: the preset's rate for the variant")
    ap.add_argument("--noise", type=float, default=0.3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (train.threads; more than the free cores slows torch down a lot)")
    ap.add_argument("--watch", metavar="DIR", help="host the run in DIR with ltmlp.torch.watch")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here (torch.cuda.is_available() is False); use --device cpu")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    try:
        data = prepare(args.data, zero_mean=True)
    except IdxError as e:
        sys.exit(f"--data: {e}")
    to = lambda split: (torch.as_tensor(split[0], dtype=dtype, device=args.device), torch.as_tensor(split[1], device=args.device))
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = to(data.train), to(data.validation), to(data.test)
    sizes = [x_train.shape[1], 400, 400, len(data.classes)]
    model = TransformedMLP(sizes, shortcuts="all", variant=args.variant, dtype=dtype, device=args.device, seed=args.seed)
    model.input_mean.copy_(torch.as_tensor(data.mean, dtype=dtype))
    opt = SGD(model, lr=args.lr or RATES[args.variant], momentum=0.9)
    print(f"{'-'.join(map(str, sizes))} [{args.variant}] on {args.device} ({args.dtype}), {len(x_train)} training images, batch {args.batch}")

    run = None
    if args.watch:
        run = watch(model, args.watch, probe=x_valid[:500], epochs=args.epochs, optimizer=opt,
                    name="torch-mnist", variant=args.variant, batch_size=args.batch,
                    iterations_per_epoch=(len(x_train) + args.batch - 1) // args.batch,
                    data=f"IDX {args.data}", settings={"train.learning_rate": opt.base_lr,
                                                       "data.noise": args.noise, "train.seed": args.seed})

    def evaluate(x, y):
        model.eval()
        with torch.no_grad():
            z = model(x)
            loss = torch.nn.functional.cross_entropy(z, y).item()
            error = 100.0 * int((z.argmax(1) != y).sum()) / len(y)  # exact, not a float32 mean
        model.train()
        return loss, error

    n, position, stopped = len(x_train), 0, False
    per_epoch = (n + args.batch - 1) // args.batch
    for epoch in range(1, args.epochs + 1):
        if run is not None and run.stopped:
            break  # a stop that came while the last epoch was recorded
        started = time.perf_counter()
        for _ in range(per_epoch):
            # Sequential minibatches through the training set, wrapping around (data.shuffle = false).
            index = torch.arange(position, position + args.batch, device=args.device) % n
            position = (position + args.batch) % n
            x = x_train[index]
            x = x + args.noise * torch.randn_like(x)
            if model.flags:
                model.reestimate(x)
            loss = torch.nn.functional.cross_entropy(model(x), y_train[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if run is not None and not run.step(loss):
                stopped = True  # a viewer's stop
                break
        if stopped:
            print(f"stopped in epoch {epoch} by a viewer; the run ends after epoch {epoch - 1}")
            break  # a part of an epoch is not an evaluation
        opt.end_epoch()
        train, valid, test = evaluate(x_train, y_train), evaluate(x_valid, y_valid), evaluate(x_test, y_test)
        seconds = time.perf_counter() - started
        print(f"epoch {epoch:3}  train {train[0]:.4f} / {train[1]:5.2f}%  validation {valid[1]:5.2f}%  test {test[1]:5.2f}%  ({per_epoch * args.batch / seconds:,.0f} ex/s)")
        if run is not None:
            run.epoch(train=train, valid=valid, test=test)
    if run is not None:
        run.close()


if __name__ == "__main__":
    main()
