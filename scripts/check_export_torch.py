#!/usr/bin/env python3
"""Rebuilds an ltmlp network from its export as PyTorch modules and checks its outputs.

    ltmlp export RUN                          # or --format npz
    ltmlp eval RUN --dump-outputs RUN/outputs.npz
    python3 scripts/check_export_torch.py RUN/model.safetensors RUN/outputs.npz

The same check as check_export.py (whose file readers it uses, so only torch and numpy are
needed), with the network built from torch.nn modules: one nn.Linear per connection, every
shortcut included (layer l sums the outputs of every earlier layer k that has a
layer{l}.from{k}.weight), transformed tanh units gamma * (tanh x + alpha x + beta), a softmax
or linear output, and the export's preprocessing (x - input.mean) / input.std as buffers, all
in float64. It fails unless every output agrees with ltmlp's within 1e-5.
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_export import TOLERANCE, load  # noqa: E402


class Preprocess(nn.Module):
    """x <- (x - mean) / std, the training split's statistics."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


class TransformedTanh(nn.Module):
    """y = gamma (tanh x + alpha x + beta), per unit; a switched-off parameter is absent
    from the export and takes its neutral value."""

    def __init__(self, n, alpha=None, beta=None, gamma=None):
        super().__init__()
        neutral = lambda v, fill: v if v is not None else torch.full((n,), fill, dtype=torch.float64)
        self.register_buffer("alpha", neutral(alpha, 0.0))
        self.register_buffer("beta", neutral(beta, 0.0))
        self.register_buffer("gamma", neutral(gamma, 1.0))

    def forward(self, x):
        return self.gamma * (torch.tanh(x) + self.alpha * x + self.beta)


class Ltmlp(nn.Module):
    """x_l = b_l + sum over k < l of W[l][k] y_k, y_l = f_l(x_l): every connection an
    nn.Linear (the bias on the first one only)."""

    def __init__(self, tensors, meta):
        super().__init__()
        t = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in tensors.items()}
        self.sizes = json.loads(meta["sizes"])
        kinds = json.loads(meta["kinds"])
        self.preprocess = Preprocess(t["input.mean"], t["input.std"])
        self.connections = nn.ModuleList()
        self.sources = []
        self.units = nn.ModuleList()
        for l in range(1, len(self.sizes)):
            sources = [k for k in range(l) if f"layer{l}.from{k}.weight" in t]
            if not sources:
                sys.exit(f"layer {l} has no incoming connection in the export")
            linears = nn.ModuleList()
            for i, k in enumerate(sources):
                lin = nn.Linear(self.sizes[k], self.sizes[l], bias=(i == 0), dtype=torch.float64)
                with torch.no_grad():
                    lin.weight.copy_(t[f"layer{l}.from{k}.weight"])
                    if i == 0:
                        lin.bias.copy_(t[f"layer{l}.bias"])
                linears.append(lin)
            self.connections.append(linears)
            self.sources.append(sources)
            kind = kinds[l]
            if kind == "tanh":
                unit = TransformedTanh(
                    self.sizes[l], *(t.get(f"layer{l}.{p}") for p in ("alpha", "beta", "gamma"))
                )
            elif kind == "softmax":
                unit = nn.Softmax(dim=1)
            elif kind == "linear":
                unit = nn.Identity()
            else:
                sys.exit(f"layer {l}: unit kind {kind!r} is not part of the export format")
            self.units.append(unit)

    def forward(self, x):
        ys = [self.preprocess(x)]
        for linears, sources, unit in zip(self.connections, self.sources, self.units):
            pre = sum(lin(ys[k]) for lin, k in zip(linears, sources))
            ys.append(unit(pre))
        return ys[-1]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_export_torch.py MODEL.{npz,safetensors} OUTPUTS.npz")
    tensors, meta = load(sys.argv[1])
    dump = np.load(sys.argv[2])
    net = Ltmlp(tensors, meta).eval()
    with torch.no_grad():
        mine = net(torch.from_numpy(np.asarray(dump["inputs"], dtype=np.float64))).numpy()
    theirs = dump["outputs"]
    if mine.shape != theirs.shape:
        sys.exit(f"FAIL: outputs of shape {mine.shape}, ltmlp's are {theirs.shape}")
    diff = float(np.max(np.abs(mine - theirs))) if mine.size else 0.0
    connections = sum(len(s) for s in net.sources)
    line = (
        f"torch {torch.__version__}, {meta['format']}: {mine.shape[0]} examples, "
        f"{json.loads(meta['sizes'])}, {connections} nn.Linear connections, "
    )
    if json.loads(meta["task"]) == "classify":
        targets = dump["targets"]
        agree = float(np.mean(mine.argmax(axis=1) == theirs.argmax(axis=1)))
        error = 100.0 * float(np.mean(mine.argmax(axis=1) != targets))
        line += f"error {error:.2f}%, same predictions {100 * agree:.2f}%, "
    print(line + f"largest output difference {diff:.3e} (tolerance {TOLERANCE:g})")
    if not diff <= TOLERANCE:
        sys.exit(f"FAIL: outputs differ by {diff:.3e}")
    print("OK")


if __name__ == "__main__":
    main()
