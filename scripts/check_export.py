#!/usr/bin/env python3
"""Rebuilds an ltmlp network from its export in plain numpy and checks its outputs.

    ltmlp export RUN --format npz            # or --format safetensors
    ltmlp eval RUN --dump-outputs RUN/outputs.npz
    python3 scripts/check_export.py RUN/model.npz RUN/outputs.npz

The dump holds the split's decoded inputs (before centring and scaling), ltmlp's outputs and
the targets. The script applies the export's preprocessing (input.mean, input.std), runs the
network from the export's metadata alone, and fails unless every output agrees within 1e-5.
A .safetensors export is read with a small parser of its documented layout (an 8-byte header
length, a JSON header, raw little-endian data), so no package beyond numpy is needed.
"""
import json
import struct
import sys

import numpy as np

TOLERANCE = 1e-5
DTYPES = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(
            info["shape"]
        )
    return tensors, meta


def load_npz(path):
    z = np.load(path)
    tensors = {k: z[k] for k in z.files if k != "__metadata__"}
    meta = json.loads(bytes(z["__metadata__"]).decode())
    return tensors, meta


def load(path):
    return load_safetensors(path) if path.endswith(".safetensors") else load_npz(path)


def forward(tensors, meta, x):
    sizes = json.loads(meta["sizes"])
    kinds = json.loads(meta["kinds"])
    ys = [(x - tensors["input.mean"]) / tensors["input.std"]]
    for l in range(1, len(sizes)):
        pre = np.broadcast_to(tensors[f"layer{l}.bias"], (x.shape[0], sizes[l])).copy()
        for k in range(l):
            w = tensors.get(f"layer{l}.from{k}.weight")
            if w is not None:
                pre += ys[k] @ w.T
        kind = kinds[l]
        if kind == "tanh":
            a = tensors.get(f"layer{l}.alpha", 0.0)
            b = tensors.get(f"layer{l}.beta", 0.0)
            g = tensors.get(f"layer{l}.gamma", 1.0)
            y = g * (np.tanh(pre) + a * pre + b)
        elif kind == "softmax":
            e = np.exp(pre - pre.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        else:
            y = pre
        ys.append(y)
    return ys[-1]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_export.py MODEL.{npz,safetensors} OUTPUTS.npz")
    tensors, meta = load(sys.argv[1])
    dump = np.load(sys.argv[2])
    mine = forward(tensors, meta, dump["inputs"])
    theirs = dump["outputs"]
    diff = float(np.max(np.abs(mine - theirs))) if mine.size else 0.0
    line = f"{meta['format']}: {mine.shape[0]} examples, {json.loads(meta['sizes'])}, "
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
