"""Shared pieces of the ltmlp Python tests: the `ltmlp` binary (LTMLP_BIN, else the
repository's target/release/ltmlp; the tests that need it skip, saying so, without it), the
watched trainer script run as a child process, and a wait with a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

TESTS = Path(__file__).resolve().parent
PYTHON_DIR = TESTS.parent
REPO = PYTHON_DIR.parent
TRAINER = TESTS / "watched_trainer.py"


def binary_path() -> Optional[str]:
    named = os.environ.get("LTMLP_BIN")
    if named:
        return named if os.path.isfile(named) else None
    built = REPO / "target" / "release" / "ltmlp"
    return str(built) if built.is_file() else None


@pytest.fixture(scope="session")
def ltmlp_bin() -> str:
    found = binary_path()
    if found is None:
        pytest.skip(
            "no ltmlp binary: build it with `cargo build --release` (target/release/ltmlp) or "
            "name it in LTMLP_BIN"
        )
    os.environ["LTMLP_BIN"] = found
    return found


def child_env(binary: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["LTMLP_BIN"] = binary
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), str(TESTS), env.get("PYTHONPATH", "")])
    return env


class Ltmlp:
    """`ltmlp …` as a test runs it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def __call__(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout)

    def status(self, run_dir: Path) -> dict:
        out = self("ctl", str(run_dir), "status")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


@pytest.fixture
def ltmlp(ltmlp_bin: str) -> Ltmlp:
    return Ltmlp(ltmlp_bin)


@pytest.fixture
def start_trainer(ltmlp_bin: str, tmp_path: Path):
    """Starts tests/watched_trainer.py with the given arguments; every child is killed at the
    end of the test."""
    children: List[subprocess.Popen] = []

    def start(*args: str, binary: Optional[str] = None) -> subprocess.Popen:
        err = open(tmp_path / f"trainer-{len(children)}.err", "wb")
        child = subprocess.Popen(
            [sys.executable, str(TRAINER), *args],
            env=child_env(binary or ltmlp_bin),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        child.stderr_path = err.name  # type: ignore[attr-defined]
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


def records(run_dir: Path, name: str = "metrics.jsonl") -> List[dict]:
    path = run_dir / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def stderr_of(child: subprocess.Popen) -> str:
    return Path(child.stderr_path).read_text(errors="replace")  # type: ignore[attr-defined]
