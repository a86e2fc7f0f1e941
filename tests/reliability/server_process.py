"""`mlx-gen serve` in a child process on loopback: start, probe, measure, stop.

A real process is what these suites need: its RSS can be read, a signal can be
sent to it, and a crash shows as an exit instead of a failed thread.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from polling import answers, wait_until

MODEL = "tiny"
_PANEL_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/v1")


def server_env(cache_dir: Path, extra: Mapping[str, str] | None = None) -> dict:
    """The test's environment without any MLX_GEN_* of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_GEN_")}
    env |= {
        "MLX_GEN_CACHE_DIR": str(cache_dir),
        "MLX_GEN_USE_OPENBLAS": "false",
        "MLX_GEN_LOG_LEVEL": "warning",
        "COLUMNS": "200",
    }
    return env | dict(extra or {})


class ServerProcess:
    """One `mlx-gen serve --model tiny --port 0`; stdout and stderr go to files."""

    def __init__(
        self,
        workdir: Path,
        cache_dir: Path,
        flags: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.command = [sys.executable, "-m", "mlx_gen", "serve", "--model", MODEL,
                        "--host", "127.0.0.1", "--port", "0", *flags]  # fmt: skip
        self.env = server_env(cache_dir, env)
        self.proc: subprocess.Popen | None = None
        self.base = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, timeout: float = 180.0) -> ServerProcess:
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
        """Its panel gave the address, and /ready answers 200; raises if it exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the server exited: {self.log()[-3000:]}")
        if not self.base:
            found = _PANEL_URL.search((self.workdir / "stdout").read_text())
            self.base = f"http://127.0.0.1:{found.group(1)}" if found else ""
        return bool(self.base) and answers(self.url("/ready"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        path = self.workdir / "stderr"
        return path.read_text(errors="replace") if path.exists() else ""

    def rss_bytes(self) -> int:
        """Resident memory of the server process (`ps` works on Linux and macOS)."""
        command = ["ps", "-o", "rss=", "-p", str(self.pid)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        return int(out.stdout.strip()) * 1024

    def gauges(self) -> dict[str, float]:
        """The unlabelled samples of /metrics (the engine's gauges among them)."""
        text = httpx.get(self.url("/metrics"), timeout=10).text
        samples = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                samples[name] = float(value)
        return samples

    def engine_idle(self, timeout: float) -> bool:
        """Wait until the engine runs nothing, queues nothing, holds no KV."""
        names = ("mlx_gen_running_sequences", "mlx_gen_queue_length",
                 "mlx_gen_kv_tokens_used")  # fmt: skip
        gauges = self.gauges
        return wait_until(lambda: not any(gauges()[n] for n in names), timeout, 0.05)

    def no_eos_bias(self) -> dict[str, int]:
        """A logit bias that keeps the model from ending early: a stream of
        max_tokens tokens then lasts as long as a test needs it to."""
        body = {"model": MODEL, "prompt": "<|return|><|call|>"}
        ids = httpx.post(self.url("/tokenize"), json=body).json()["tokens"]
        return {str(i): -100 for i in ids}

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
