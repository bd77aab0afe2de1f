"""ltmlp for PyTorch: `watch` hosts any training as an ltmlp run (docs/pytorch.md);
`TransformedMLP` and `SGD` train the transformed networks of the Rust engine."""

from .hooks import probe
from .sgd import SGD
from .transformed import TransformedMLP
from .watch import HostLost, Run, watch

__all__ = ["SGD", "HostLost", "Run", "TransformedMLP", "probe", "watch"]
