#!/usr/bin/env python3
"""The same check as check_export.py, with the network rebuilt as a PyTorch module.

    pip install torch safetensors numpy
    python3 scripts/check_export_torch.py RUN/model.safetensors RUN/outputs.npz
"""
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors import safe_open

TOLERANCE = 1e-5


class Ltmlp(torch.nn.Module):
    """x_l = b_l + sum_k W[l][k] y_k; tanh units y = gamma (tanh x + alpha x + beta)."""

    def __init__(self, tensors, meta):
        super().__init__()
        self.sizes = json.loads(meta["sizes"])
        self.kinds = json.loads(meta["kinds"])
        self.params = torch.nn.ParameterDict(
            {k.replace(".", "_"): torch.nn.Parameter(v, requires_grad=False) for k, v in tensors.items()}
        )

    def get(self, name):
        return self.params[name.replace(".", "_")] if name.replace(".", "_") in self.params else None

    def forward(self, x):
        ys = [(x - self.get("input.mean")) / self.get("input.std")]
        for l in range(1, len(self.sizes)):
            pre = self.get(f"layer{l}.bias").expand(x.shape[0], -1).clone()
            for k in range(l):
                w = self.get(f"layer{l}.from{k}.weight")
                if w is not None:
                    pre = pre + ys[k] @ w.T
            kind = self.kinds[l]
            if kind == "tanh":
                y = self.get(f"layer{l}.gamma") * (
                    torch.tanh(pre) + self.get(f"layer{l}.alpha") * pre + self.get(f"layer{l}.beta")
                )
            elif kind == "softmax":
                y = torch.softmax(pre, dim=1)
            else:
                y = pre
            ys.append(y)
        return ys[-1]


def main():
    model_path, dump_path = sys.argv[1], sys.argv[2]
    tensors = load_file(model_path)
    with safe_open(model_path, "pt") as f:
        meta = f.metadata()
    net = Ltmlp(tensors, meta)
    dump = np.load(dump_path)
    with torch.no_grad():
        mine = net(torch.from_numpy(dump["inputs"])).numpy()
    diff = float(np.max(np.abs(mine - dump["outputs"])))
    print(f"largest output difference {diff:.3e} (tolerance {TOLERANCE:g})")
    if not diff <= TOLERANCE:
        sys.exit(f"FAIL: outputs differ by {diff:.3e}")
    print("OK")


if __name__ == "__main__":
    main()
