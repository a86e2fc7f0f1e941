"""The server's resources while a load runs, sampled every second.

From its Prometheus `/metrics` when it has one (mlx-gen's names, and vLLM's
where they mean the same), and, when the server runs on this machine and its
pid is known or found by its port, its resident memory and CPU (psutil, which
answers on macOS, Linux and Windows; where it may not look, None).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

# Our name for a figure: the sample names that carry it, first found wins.
SCRAPED = {
    "queue": ("mlx_gen_queue_length", "vllm:num_requests_waiting"),
    "running": ("mlx_gen_running_sequences", "vllm:num_requests_running"),
    "kv_tokens_used": ("mlx_gen_kv_tokens_used",),
    "kv_tokens_budget": ("mlx_gen_kv_tokens_budget",),
    "kv_usage": ("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"),
    "prefix_cache_bytes": ("mlx_gen_prefix_cache_bytes",),
    "cached_prompt_tokens": (
        "mlx_gen_cached_prompt_tokens_total",
        "vllm:prefix_cache_hits_total",
    ),
    "prompt_tokens": ("mlx_gen_prompt_tokens_total", "vllm:prompt_tokens_total"),
    "mlx_active_memory_bytes": ("mlx_gen_mlx_active_memory_bytes",),
}


def parse_metrics(text: str) -> dict[str, float]:
    """Our figures from Prometheus text (sums over labels); {} if none."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    figures = {}
    for ours, names in SCRAPED.items():
        found = [totals[n] for n in names if n in totals]
        if found:
            figures[ours] = found[0]
    return figures


def pid_listening_on(url: str) -> int | None:
    """The pid of the process on this machine listening on the URL's port;
    None when the host is not this machine or the system will not say."""
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):  # macOS without root, for one
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


class Monitor:
    """Samples every `interval` seconds until stopped, times from `origin`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        metrics_url: str | None,
        pid: int | None,
        origin: float,
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.metrics_url = metrics_url
        self.origin = origin
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self.process: psutil.Process | None = None
        if pid is not None:
            try:
                self.process = psutil.Process(pid)
                self.process.cpu_percent()  # the first call starts the interval
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self.process = None
        self._task: asyncio.Task[None] | None = None

    async def _scrape(self) -> dict[str, float]:
        if self.metrics_url is None:
            return {}
        try:
            response = await self.client.get(self.metrics_url, timeout=5.0)
        except httpx.HTTPError:
            return {}
        if response.status_code != 200:
            return {}
        try:
            return parse_metrics(response.text)
        except ValueError:  # not Prometheus text
            return {}

    def _process(self) -> dict[str, float]:
        if self.process is None:
            return {}
        try:
            with self.process.oneshot():
                return {
                    "rss_bytes": float(self.process.memory_info().rss),
                    "cpu_percent": self.process.cpu_percent(),
                }
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return {}

    async def _loop(self) -> None:
        while True:
            sample = {"t": time.perf_counter() - self.origin}
            sample.update(await self._scrape())
            sample.update(self._process())
            self.samples.append(sample)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> list[dict[str, Any]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples
