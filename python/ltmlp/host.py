"""The link to one `ltmlp host DIR` child process: the trainer's side of the JSON-lines
protocol (docs/protocol.md, "The trainer side of `ltmlp host`"). Events go to the host's stdin;
its commands are read from its stdout on a background thread, so the training loop never
waits for them. The host keeps every run file; this module writes none."""

from __future__ import annotations

import collections
import json
import math
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Deque, Dict, List, Optional, TextIO

from .binary import find_binary

#: How long `ltmlp host` may take to open the run's endpoint after the declaration.
START_DEADLINE_S = 30.0
#: How long the host may take to complete the files and exit after the last event.
EXIT_DEADLINE_S = 60.0


class HostError(RuntimeError):
    """`ltmlp host` refused the run or could not be started; the message is the host's."""


def clean(value: Any) -> Any:
    """`value` with every non-finite float as `None` (the protocol's "not measured")."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


class HostLink:
    """One `ltmlp host DIR` process, started with the declaration; `alive` until it exits or
    its pipes break."""

    def __init__(
        self,
        run_dir: str,
        declaration: Dict[str, Any],
        *,
        force: bool = False,
        binary: Optional[str] = None,
        echo: Optional[TextIO] = None,
    ) -> None:
        self.run_dir = run_dir
        self.binary = binary or find_binary()
        self.echo = echo if echo is not None else sys.stderr
        self.commands: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.stderr_tail: Deque[str] = collections.deque(maxlen=40)
        self._broken = False
        argv = [self.binary, "host", run_dir] + (["--force"] if force else [])
        try:
            # A session of its own: a Ctrl-C in the user's terminal reaches Python, which
            # ends the run with its reason, and not the host, which would end it without one.
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise HostError(f"cannot start {self.binary} host {run_dir}: {e}") from e
        self._reader = threading.Thread(target=self._read_commands, name="ltmlp-host-commands", daemon=True)
        self._reader.start()
        self._errors = threading.Thread(target=self._read_stderr, name="ltmlp-host-stderr", daemon=True)
        self._errors.start()
        self.send({"declare": declaration})
        self._wait_for_endpoint()

    # -- the pipes -----------------------------------------------------------------------

    def _read_commands(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self._say(f"ltmlp.torch: a line from the host that is not JSON, ignored: {raw[:200]!r}")
                continue
            if isinstance(message, dict) and "id" in message and "command" in message:
                self.commands.put(message)
        self._broken = True

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_tail.append(line)
            self._say(line)

    def _say(self, line: str) -> None:
        try:
            print(line, file=self.echo, flush=True)
        except (OSError, ValueError):
            pass

    def send(self, event: Dict[str, Any], clean_floats: bool = True) -> bool:
        """Writes one event; False (and the link is no longer alive) when the host is gone.
        `clean_floats=False` for an event whose floats are finite or None already (the large
        statistics events), to spare a walk through every value."""
        if self._broken or self.process.stdin is None:
            return False
        body = clean(event) if clean_floats else event
        try:
            line = json.dumps(body, allow_nan=False, separators=(",", ":")) + "\n"
        except ValueError:
            # A float that was not finite after all: cleaned rather than lost.
            line = json.dumps(clean(event), allow_nan=False, separators=(",", ":")) + "\n"
        try:
            self.process.stdin.write(line.encode("utf-8"))
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):
            self._broken = True
            return False

    @property
    def alive(self) -> bool:
        return not self._broken and self.process.poll() is None

    def next_command(self, timeout: float = 0.0) -> Optional[Dict[str, Any]]:
        """The next command of a viewer, waiting at most `timeout` seconds; None if none came."""
        try:
            if timeout <= 0:
                return self.commands.get_nowait()
            return self.commands.get(timeout=timeout)
        except queue.Empty:
            return None

    def why_gone(self) -> str:
        """The host's exit and its last words, for a message."""
        code = self.process.poll()
        how = "is still running" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        )
        said = [line for line in self.stderr_tail if line.strip()]
        return f"`ltmlp host {self.run_dir}` {how}" + (f": {said[-1]}" if said else "")

    # -- the start and the end -----------------------------------------------------------

    def _wait_for_endpoint(self) -> None:
        """Returns once the host answers on the run's control socket (it took the
        declaration and opened the folder); raises `HostError` with its message if it exits."""
        deadline = time.monotonic() + START_DEADLINE_S
        path = os.path.join(self.run_dir, "control.sock")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._errors.join(timeout=2.0)
                raise HostError(self.why_gone())
            if self._welcomes(path):
                return
            time.sleep(0.02)
        self.kill()
        raise HostError(
            f"`ltmlp host {self.run_dir}` did not open the run's control socket within "
            f"{START_DEADLINE_S:.0f} s; it was stopped"
        )

    def _welcomes(self, path: str) -> bool:
        """Whether the endpoint at `path` is this host's (a stale one names another pid)."""
        if not os.path.exists(path):
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                s.connect(path)
                s.sendall(b'{"hello":{"version":1,"role":"control"}}\n')
                answer = s.makefile("rb").readline()
        except OSError:
            return False
        try:
            welcome = json.loads(answer).get("welcome") or {}
        except (ValueError, AttributeError):
            return False
        return welcome.get("pid") == self.process.pid

    def finish(self, finished: Dict[str, Any]) -> Optional[int]:
        """Sends the last event, lets the host complete the files, and returns its exit status
        (None if it had to be killed)."""
        self.send({"finished": finished})
        return self.close()

    def close(self) -> Optional[int]:
        """Closes the host's stdin (without `finished` it marks the run stopped) and waits."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            code = self.process.wait(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._errors.join(timeout=2.0)
        return code

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
