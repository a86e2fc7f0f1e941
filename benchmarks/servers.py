"""Servers under test, each a child process on 127.0.0.1 with OpenBLAS preloaded:
`mlx-gen serve` and `python -m mlx_lm.server`, on the same model directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3")
MLX_GEN = Path(sys.executable).with_name("mlx-gen")
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    model: str  # the id to put in requests
    pid: int
    ready_memory: dict[str, int]  # process_memory when it first answered


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(cache_root: Path, hub: Path) -> dict[str, str]:
    """This environment without mlx-gen settings, with OpenBLAS and an offline,
    empty hub cache (mlx_lm.server lists the hub cache: it must exist)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLX_GEN_", "HF_")) and k != "LD_PRELOAD"
    }
    hub.mkdir(parents=True, exist_ok=True)
    env.update(MLX_GEN_CACHE_DIR=str(cache_root), HF_HUB_CACHE=str(hub))
    env["HF_HUB_OFFLINE"] = "1"
    if OPENBLAS.is_file():
        env["LD_PRELOAD"] = str(OPENBLAS)
    return env


def process_memory(pid: int) -> dict[str, int]:
    """Resident set size now (VmRSS) and at its peak (VmHWM), in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return {"rss_bytes": fields["VmRSS"], "peak_rss_bytes": fields["VmHWM"]}


@contextmanager
def running(
    name: str, command: list[str], ready_path: str, model: str, workdir: Path, env: dict
) -> Iterator[Server]:
    """Run `command` until the block ends; yield once `ready_path` answers 200."""
    port = free_port()
    command = [*command, "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
        try:
            _wait_ready(proc, url + ready_path, log_path)
            yield Server(name, url, model, proc.pid, process_memory(proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready in {READY_TIMEOUT_S:.0f} s")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


def mlx_gen_serve(workdir: Path, env: dict) -> Iterator[Server]:
    command = [str(MLX_GEN), "serve", "--model", "bench"]
    return running("mlx-gen", command, "/ready", "bench", workdir, env)


def mlx_lm_server(model_path: Path, workdir: Path, env: dict) -> Iterator[Server]:
    # mlx_lm.server serves its --model under that exact string.
    path = str(model_path.resolve())
    command = [sys.executable, "-m", "mlx_lm.server", "--model", path]
    return running("mlx_lm.server", command, "/v1/models", path, workdir, env)


def cached_prompt_tokens(server: Server) -> float:
    """mlx-gen's count of prompt tokens served from its prefix cache so far."""
    text = httpx.get(f"{server.url}/metrics", timeout=10, trust_env=False).text
    for line in text.splitlines():
        if line.startswith("mlx_gen_cached_prompt_tokens_total "):
            return float(line.split()[1])
    raise AssertionError("no mlx_gen_cached_prompt_tokens_total in /metrics")
