"""Servers under test, each a child process on 127.0.0.1 (tests/child_server.py)
with OpenBLAS preloaded: `mlx-gen serve` and `python -m mlx_lm.server`, on the
same model directory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from child_server import ChildServer
from cli_run import MLX_GEN
from polling import wait_until
from prometheus_client.parser import text_string_to_metric_families

OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3")


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    model: str  # the id to put in requests
    pid: int
    ready_memory: dict[str, int]  # process_memory when it first answered


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
    with ChildServer(command, workdir / name, env, ready_path) as child:
        yield Server(name, child.base, model, child.pid, process_memory(child.pid))


def mlx_gen_serve(
    workdir: Path, env: dict, executable: Path = MLX_GEN, name: str = "mlx-gen"
) -> Iterator[Server]:
    command = [str(executable), "serve", "--model", "bench"]
    return running(name, command, "/ready", "bench", workdir, env)


def mlx_lm_server(model_path: Path, workdir: Path, env: dict) -> Iterator[Server]:
    # mlx_lm.server serves its --model under that exact string.
    path = str(model_path.resolve())
    command = [sys.executable, "-m", "mlx_lm.server", "--model", path]
    return running("mlx_lm.server", command, "/v1/models", path, workdir, env)


@dataclass(frozen=True)
class Counted:
    """What mlx-gen's /metrics has counted of its chat completions so far."""

    requests: float
    cached_prompt_tokens: float  # served from its prefix cache


def counted(server: Server) -> Counted:
    text = httpx.get(f"{server.url}/metrics", timeout=10, trust_env=False).text
    requests = cached = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mlx_gen_cached_prompt_tokens_total":
                cached = sample.value
            elif (
                sample.name == "mlx_gen_requests_total"
                and sample.labels.get("endpoint") == "/v1/chat/completions"
            ):
                requests += sample.value
    return Counted(requests, cached)


def cached_prompt_tokens_since(server: Server, before: Counted, requests: int) -> float:
    """Prompt tokens served from the prefix cache by the `requests` chat
    completions sent since `before`. The server counts a request after its
    last byte went out: wait until it has counted them all."""
    now = wait_until(
        lambda: (c := counted(server)).requests >= before.requests + requests and c, 30
    )
    assert now, f"{requests} requests sent, counted: {counted(server)} vs {before}"
    return now.cached_prompt_tokens - before.cached_prompt_tokens
