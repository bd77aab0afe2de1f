"""ltmlp for PyTorch: `watch` hosts any training as an ltmlp run (docs/pytorch.md);
`TransformedMLP` and `SGD` train the transformed networks of the Rust engine."""

import importlib.util

from .hooks import probe
from .watch import HostLost, Run, watch

__all__ = ["HostLost", "Run", "probe", "watch"]

# The engine half of the package (transformed.py, sgd.py), where this checkout has it; an
# error inside either module is not hidden.
if importlib.util.find_spec(__name__ + ".transformed") is not None:
    from .transformed import TransformedMLP  # noqa: F401

    __all__.append("TransformedMLP")
if importlib.util.find_spec(__name__ + ".sgd") is not None:
    from .sgd import SGD  # noqa: F401

    __all__.append("SGD")
