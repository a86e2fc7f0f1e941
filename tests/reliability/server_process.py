"""`mlx-gen serve --model tiny` in a child process (tests/child_server.py),
with what the reliability suites read from it: memory, gauges, token ids."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from child_server import ChildServer
from polling import wait_until

MODEL = "tiny"


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


class ServerProcess(ChildServer):
    """One `mlx-gen serve --model tiny` on the shared, already built cache."""

    def __init__(
        self,
        workdir: Path,
        cache_dir: Path,
        flags: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        command = [sys.executable, "-m", "mlx_gen", "serve", "--model", MODEL, *flags]
        super().__init__(command, workdir, server_env(cache_dir, env))

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
