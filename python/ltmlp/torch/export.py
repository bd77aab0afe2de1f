"""The `ltmlp export` format (src/export.rs, "ltmlp-mlp-1") both ways, in pure Python:
safetensors read and written with json and numpy (no safetensors package needed).

Names: `layer{l}.bias` [n_l], `layer{l}.from{k}.weight` [n_l, n_k] (connections that exist),
`layer{l}.alpha` / `.beta` / `.gamma` [n_l] (transformed tanh layers), `input.mean` /
`input.std` [n_0], `classes` (the label of each output unit); metadata: `format`, `sizes`,
`kinds`, `connections` (JSON), `task`, `variant`, `preset`, `layer`, `preprocessing`.
"""

import json
import os
import struct
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

EXPORT_FORMAT = "ltmlp-mlp-1"
#: safetensors dtype names and their numpy types.
DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
}
#: A path as `open` takes it.
Path = Union[str, "os.PathLike[str]"]
#: A header larger than this is not a safetensors file (the format's own limit is 100 MB).
MAX_HEADER = 100_000_000


class ExportError(ValueError):
    """A file that is not a usable `ltmlp export`."""


def read_safetensors(path: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """(tensors as numpy arrays by name, metadata dict of strings)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ExportError(f"{path}: too short for a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER or 8 + n > len(data):
        raise ExportError(f"{path}: header length {n} does not fit the file ({len(data)} bytes); not a safetensors file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: the safetensors header is not JSON ({e})") from None
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n :]
    tensors: Dict[str, np.ndarray] = {}
    if not isinstance(header, dict):
        raise ExportError(f"{path}: the safetensors header is not a JSON object")
    for name, info in header.items():
        dtype = DTYPES.get(str(info.get("dtype"))) if isinstance(info, dict) else None
        if dtype is None:
            found = info.get("dtype") if isinstance(info, dict) else info
            raise ExportError(f"{path}: tensor {name}: dtype {found!r} is not one of {', '.join(DTYPES)}")
        try:
            begin, end = (int(v) for v in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"{path}: tensor {name}: the header needs data_offsets [begin, end] and a shape") from None
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(body) or end - begin != count * np.dtype(dtype).itemsize:
            raise ExportError(f"{path}: tensor {name}: data_offsets {begin}..{end} do not hold shape {list(shape)}")
        tensors[name] = np.frombuffer(body[begin:end], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
    return tensors, meta


def write_safetensors(path: Path, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Writes float64/float32 numpy arrays (name -> array) and string metadata."""
    header: Dict[str, Any] = {}
    chunks, offset = [], 0
    codes = {np.dtype(v): k for k, v in DTYPES.items()}
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        code = codes.get(array.dtype)
        if code is None:
            raise ExportError(f"{path}: tensor {name}: dtype {array.dtype} cannot be written")
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def load_network(cls: Any, path: Path, dtype: torch.dtype = torch.float64, device: Any = None) -> Any:
    """A TransformedMLP (cls) holding the export's weights, biases, alpha, beta, gamma and
    preprocessing; its flags follow the metadata's variant."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: metadata format is {meta.get('format')!r}, not {EXPORT_FORMAT!r}; write it with `ltmlp export`")
    try:
        sizes = [int(n) for n in json.loads(meta["sizes"])]
        kinds = list(json.loads(meta["kinds"]))
        connections = [(int(l), int(k)) for l, k in json.loads(meta["connections"])]
    except (KeyError, ValueError, TypeError) as e:
        raise ExportError(f"{path}: metadata sizes / kinds / connections unreadable ({e})") from None
    if len(kinds) != len(sizes) or kinds[0] != "input" or kinds[-1] not in ("softmax", "linear"):
        raise ExportError(f"{path}: metadata kinds {kinds} do not fit sizes {sizes}")
    if any(kind not in ("tanh", "linear") for kind in kinds[1:-1]):
        raise ExportError(f"{path}: metadata kinds {kinds}: hidden layers must be tanh or linear")
    net = cls.__new__(cls)
    torch.nn.Module.__init__(net)
    net._build(sizes, kinds, connections, dtype, device)
    variant = meta.get("variant", "none")
    net.flags = set(VARIANT_FLAGS.get(variant, ()))
    net.variant = variant if variant in VARIANT_FLAGS else "none"

    def take(name: str, shape: Sequence[int]) -> torch.Tensor:
        if name not in tensors:
            raise ExportError(f"{path}: tensor {name} is missing (expected shape {list(shape)})")
        value = tensors[name]
        if tuple(value.shape) != tuple(shape):
            raise ExportError(f"{path}: tensor {name} has shape {list(value.shape)}, expected {list(shape)}")
        return torch.from_numpy(np.asarray(value, dtype=np.float64)).to(dtype=dtype, device=device)

    with torch.no_grad():
        for l in range(1, len(sizes)):
            net.bias(l).copy_(take(f"layer{l}.bias", (sizes[l],)))
        for l, k in connections:
            net.weight(l, k).copy_(take(f"layer{l}.from{k}.weight", (sizes[l], sizes[k])))
        for l in net.transformed_layers():
            u = net.unit(l)
            # A parameter absent from the file keeps its neutral value.
            for name in ("alpha", "beta", "gamma"):
                if f"layer{l}.{name}" in tensors:
                    getattr(u, name).copy_(take(f"layer{l}.{name}", (sizes[l],)))
        if "input.mean" in tensors:
            net.input_mean.copy_(take("input.mean", (sizes[0],)))
        if "input.std" in tensors:
            net.input_std.copy_(take("input.std", (sizes[0],)))
    if "classes" in tensors:
        net.classes = [int(c) for c in tensors["classes"]]
    net.export_metadata = meta
    return net


def network_tensors(net: Any) -> Dict[str, np.ndarray]:
    """The export's tensors of a TransformedMLP, in the Rust export's order."""
    out: Dict[str, np.ndarray] = {}

    def as_np(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    for l in range(1, net.depth + 1):
        out[f"layer{l}.bias"] = as_np(net.bias(l))
        for k in net.sources(l):
            out[f"layer{l}.from{k}.weight"] = as_np(net.weight(l, k))
        if str(l) in net.units:
            u = net.unit(l)
            for name in ("alpha", "beta", "gamma"):
                out[f"layer{l}.{name}"] = as_np(getattr(u, name))
    out["input.mean"] = as_np(net.input_mean)
    out["input.std"] = as_np(net.input_std)
    if net.classes is not None:
        out["classes"] = np.asarray(net.classes, dtype=np.float64)
    return out


#: The variants by the flags they have on (src/preset/variant.rs).
VARIANT_FLAGS: Dict[str, Tuple[str, ...]] = {"none": (), "ab": ("alpha", "beta"), "abg": ("alpha", "beta", "gamma")}


def save_network(net: Any, path: Path, metadata: Optional[Mapping[str, Any]] = None) -> None:
    """Writes `net` as `ltmlp export` does (float64), with its metadata."""
    task = "classify" if net.kinds[-1] == "softmax" else "regress"

    def compact(v: Any) -> str:
        return json.dumps(v, separators=(",", ":"))

    flags: Set[str] = getattr(net, "flags", set())
    variant = next((name for name, on in VARIANT_FLAGS.items() if set(on) == flags), getattr(net, "variant", "none"))
    # A network read from an export keeps that file's description of its origin.
    origin: Dict[str, str] = getattr(net, "export_metadata", {})
    meta = {
        "format": EXPORT_FORMAT,
        "sizes": compact(net.sizes),
        "kinds": compact(net.kinds),
        "connections": compact([list(c) for c in net.connections]),
        "layer": "x_l = layer{l}.bias + sum over k of layer{l}.from{k}.weight @ y_k; tanh units: "
        "y = gamma * (tanh(x) + alpha * x + beta); linear: y = x; softmax over the layer",
        "preprocessing": origin.get("preprocessing", "inputs (x - input.mean) / input.std"),
        "task": compact(task),
        "preset": origin.get("preset", "pytorch"),
        "variant": variant,
    }
    meta.update(metadata or {})
    write_safetensors(path, network_tensors(net), meta)
