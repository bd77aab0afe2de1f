"""Finds the `ltmlp` binary: `LTMLP_BIN`, else `ltmlp` on `PATH`."""

from __future__ import annotations

import os
import shutil

HOW_TO_GET_IT = (
    "build it from the ltmlp repository with `cargo build --release` (the binary is "
    "target/release/ltmlp) or install it with `cargo install --path .`, then put it on PATH "
    "or name it in LTMLP_BIN"
)


class BinaryNotFound(RuntimeError):
    """The `ltmlp` binary is not where the package looks for it."""


def find_binary() -> str:
    """The path of the `ltmlp` binary; raises `BinaryNotFound` saying how to get it."""
    named = os.environ.get("LTMLP_BIN")
    if named:
        if os.path.isfile(named) and os.access(named, os.X_OK):
            return named
        raise BinaryNotFound(
            f"LTMLP_BIN is {named!r}, which is not an executable file; {HOW_TO_GET_IT}"
        )
    found = shutil.which("ltmlp")
    if found:
        return found
    raise BinaryNotFound(f"the `ltmlp` binary is not on PATH and LTMLP_BIN is not set; {HOW_TO_GET_IT}")
