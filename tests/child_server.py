"""A server under test in a child process on loopback: `mlx-gen serve`, or
another OpenAI-compatible server such as `python -m mlx_lm.server`.

A real process is what these suites need: its memory can be read, a signal
can be sent to it, and a crash shows as an exit instead of a failed thread.
The server gets a free port of its own, is ready once a path answers 200, and
is stopped with SIGTERM (SIGKILL if it does not exit within a minute).
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from polling import answers, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildServer:
    """`command` with `--host 127.0.0.1 --port N` added; its stdout and stderr
    go to files in `workdir`."""

    def __init__(
        self,
        command: Sequence[str],
        workdir: Path,
        env: Mapping[str, str],
        ready_path: str = "/ready",
    ) -> None:
        port = free_port()
        self.command = [*command, "--host", "127.0.0.1", "--port", str(port)]
        self.base = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.env = dict(env)
        self.ready_path = ready_path
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, timeout: float = 180.0) -> ChildServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "stdout").open("w") as out, \
                (self.workdir / "stderr").open("w") as err:  # fmt: skip
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        if not wait_until(self._ready, timeout, interval=0.05):
            raise TimeoutError(f"the server did not get ready: {self.log()[-3000:]}")
        return self

    def _ready(self) -> bool:
        """`ready_path` answers 200; raises if the server exited."""
        if not self.alive():
            raise RuntimeError(f"the server exited: {self.log()[-3000:]}")
        return answers(self.url(self.ready_path))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.workdir / "stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within a minute."""
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.wait(10)

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
