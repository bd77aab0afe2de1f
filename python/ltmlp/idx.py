"""IDX files (MNIST's format, raw or gzipped) and the data preparation of the Rust side
(src/data/dataset.rs): pixels / 255, average-pooling, the first train_limit training images,
the validation slice from their end, the first test_limit test images, class indices from the
sorted training labels, and centring (and standardising) with the training slice's statistics.

Only numpy is needed. Errors name the file and the fault.
"""

import gzip
import os
import struct
import zlib
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

#: A split: (inputs [n, d] float64, class indices [n] int64).
Split = Tuple[np.ndarray, np.ndarray]

#: IDX magic numbers of unsigned-byte images (3 dimensions) and labels (1 dimension).
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
#: The four file stems of the MNIST layout, by split.
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: Default validation slice (a sixth of the training examples when that is fewer).
DEFAULT_VALIDATION = 10_000


class IdxError(ValueError):
    """A file that is not a usable IDX file, or options that do not fit the data."""


def read_idx(path: str, magic: int) -> np.ndarray:
    """The array of an unsigned-byte IDX file (gzipped or not) with the given magic number."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise IdxError(f"{path}: cannot read: {e.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise IdxError(f"{path}: corrupt or truncated gzip stream ({e}); download the file again") from None
    dims = 3 if magic == IMAGES_MAGIC else 1
    header = 4 + 4 * dims
    if len(data) < header:
        raise IdxError(f"{path}: file is {len(data)} bytes, too short for an IDX header of {header} bytes")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        what = "images" if magic == IMAGES_MAGIC else "labels"
        raise IdxError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} for an IDX {what} file; is this the right file?")
    shape = struct.unpack(">" + "I" * dims, data[4:header])
    if min(shape) < 1:
        raise IdxError(f"{path}: wrong dimensions {list(shape)}: every dimension must be at least 1")
    expected = int(np.prod(shape))
    body = len(data) - header
    if body != expected:
        fault = "truncated" if body < expected else f"{body - expected} bytes beyond the data"
        raise IdxError(f"{path}: {fault}: the header promises {expected} bytes of data but the file holds {body}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find(folder: str, stem: str) -> str:
    """folder/stem or folder/stem.gz."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise IdxError(f"{folder}: neither {stem} nor {stem}.gz is there; give an MNIST-format IDX folder (data.source in a preset)")


def read_split(folder: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images [n, rows, cols] uint8, labels [n] uint8) of the folder's train or test split."""
    images_path, labels_path = (find(folder, s) for s in STEMS[split])
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise IdxError(f"{images_path}: holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels


def decode(images: np.ndarray, downsample: int = 1) -> np.ndarray:
    """Pixels / 255, average-pooled by `downsample` in each direction, flattened in C order
    (float64)."""
    n, rows, cols = images.shape
    f = max(1, int(downsample))
    if rows % f or cols % f:
        raise IdxError(f"data.downsample = {f} does not divide the {rows}x{cols} images; use a divisor of both")
    x = images.astype(np.float64) / 255.0
    if f > 1:
        pooled = np.zeros((n, rows // f, cols // f))
        # Summed in the Rust order (rows of the block, then columns), then scaled.
        for dr in range(f):
            for dc in range(f):
                pooled += x[:, dr::f, dc::f]
        x = pooled * (1.0 / (f * f))
    return x.reshape(n, -1)


class Prepared:
    """The three splits (inputs float64, class indices int64) and the statistics used."""

    def __init__(self, train: Split, validation: Split, test: Split, classes: List[int],
                 mean: np.ndarray, std: np.ndarray) -> None:
        self.train, self.validation, self.test = train, validation, test
        self.classes, self.mean, self.std = classes, mean, std


def prepare(folder: str, downsample: int = 1, train_limit: Optional[int] = None,
            validation_size: Optional[int] = None, test_limit: Optional[int] = None,
            zero_mean: bool = False, standardize: bool = False, monitor_test: bool = False) -> Prepared:
    """The splits as the Rust side prepares an IDX folder (see the module's doc)."""
    train_images, train_labels = read_split(folder, "train")
    test_images, test_labels = read_split(folder, "test")
    n_all = len(train_images) if train_limit is None else min(int(train_limit), len(train_images))
    n_test = len(test_images) if test_limit is None else min(int(test_limit), len(test_images))
    classes = sorted(set(int(c) for c in train_labels[:n_all]))
    index = {c: i for i, c in enumerate(classes)}

    def to_index(labels: np.ndarray) -> np.ndarray:
        return np.array([index.get(int(c), -1) for c in labels], dtype=np.int64)

    x_all = decode(train_images[:n_all], downsample)
    y_all = to_index(train_labels[:n_all])
    x_test = decode(test_images[:n_test], downsample)
    y_test = to_index(test_labels[:n_test])
    if (y_test < 0).any():
        row = int(np.argmax(y_test < 0))
        raise IdxError(f"{folder}: test label {int(test_labels[row])} (row {row}) is not among the training labels {classes}")
    if monitor_test:
        validation = 0
    elif validation_size is None:
        validation = min(DEFAULT_VALIDATION, n_all // 6)
    else:
        validation = int(validation_size)
    if validation >= n_all or (validation == 0 and not monitor_test):
        raise IdxError(f"data.validation_size = {validation} leaves no training examples out of {n_all}; make it smaller")
    cut = n_all - validation
    train = (x_all[:cut], y_all[:cut])
    valid = (x_all[cut:], y_all[cut:])
    d = x_all.shape[1]
    mean, std = np.zeros(d), np.ones(d)
    if zero_mean or standardize:
        total = np.zeros(d)
        for row in train[0]:  # row by row, as the Rust side sums
            total += row
        mean = total / max(1, cut)
        if standardize:
            var = ((train[0] - mean) ** 2).sum(0) / max(1, cut)
            std = np.where(var > 1e-24, np.sqrt(var), 1.0)
        inv = 1.0 / std
        train, valid, test = [((x - mean) * inv, y) for x, y in (train, valid, (x_test, y_test))]
    else:
        test = (x_test, y_test)
    if monitor_test:
        valid = test
    return Prepared(train, valid, test, classes, mean, std)


def prepare_from_config(config: Mapping[str, Any], repo_root: str) -> Prepared:
    """`prepare` for a preset's [data] section (a dict, e.g. from a run's config.toml);
    source "embedded" is the repository's assets/mnist-mini."""
    data = config["data"]
    source = data.get("source", "embedded")
    folder = os.path.join(repo_root, "assets", "mnist-mini") if source == "embedded" else source
    if data.get("format", "auto") not in ("auto", "idx") or data.get("grayscale"):
        raise IdxError(f"data.format = {data.get('format')!r}: the Python side reads IDX folders only")
    return prepare(
        folder,
        downsample=data.get("downsample", 1),
        train_limit=data.get("train_limit"),
        validation_size=data.get("validation_size"),
        test_limit=data.get("test_limit"),
        zero_mean=data.get("zero_mean", False),
        standardize=data.get("standardize", False),
        monitor_test=data.get("monitor", "validation") == "test",
    )
