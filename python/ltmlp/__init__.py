"""ltmlp for Python: `ltmlp.torch.watch` hosts any PyTorch training as an ltmlp run (the
dashboard, `attach`, `ctl`, `ls`, `report` work on it), through the `ltmlp host` binary."""

from .binary import BinaryNotFound, find_binary

__version__ = "0.1.0"
__all__ = ["BinaryNotFound", "find_binary", "__version__"]
