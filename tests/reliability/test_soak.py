"""Soak: minutes of steady mixed traffic leave no memory growth and no held slots.

RELIABILITY_SOAK_SECONDS sets the length of the soak (default 120; CI runs
the default). Before the baseline, the same traffic runs until the caches the
memory plan allows are full: the prefix cache up to its byte limit and MLX's
buffer cache up to its limit. Until then the resident size grows by design,
for as many requests as filling takes, however long they take on this machine.

glibc's malloc then settles for minutes more: with its default, adaptive mmap
threshold, freed MLX buffers beyond the cache limit stay in the heap, and RSS
creeps up about 15 MiB before it levels off (benchmarks/RESULTS.md, "Soak
memory"). The server here runs with a fixed threshold and two arenas, so that
what remains is MLX's and Python's memory alone (other allocators ignore the
variables).
"""

from __future__ import annotations

import asyncio
import os
from functools import partial

import pytest
from polling import wait_until

from .conftest import Launch
from .server_process import ServerProcess
from .soak_traffic import KINDS, SERVER_FLAGS, traffic

SOAK_SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "120"))
FILL_TIMEOUT = 300.0  # seconds of traffic to fill the caches, at most
FULL = 0.9  # a cache holding this share of its limit is full
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "2"}
GROWTH = 0.10  # RSS after the soak within 10 % of after the fill


def cache_use(server: ServerProcess) -> dict[str, tuple[float, float]]:
    """Each cache's bytes and its limit."""
    gauges = server.gauges()
    return {
        "MLX buffer cache": (
            gauges["mlx_gen_mlx_cache_memory_bytes"],
            gauges["mlx_gen_mlx_cache_limit_bytes"],
        ),
        "prefix cache": (
            gauges["mlx_gen_prefix_cache_bytes"],
            gauges["mlx_gen_prefix_cache_limit_bytes"],
        ),
    }


def caches_full(server: ServerProcess) -> bool:
    return all(used >= FULL * limit for used, limit in cache_use(server).values())


async def fill_caches(server: ServerProcess) -> None:
    full = await asyncio.to_thread(
        wait_until, partial(caches_full, server), FILL_TIMEOUT, 0.5
    )
    assert full, f"not full after {FILL_TIMEOUT:.0f} s: {cache_use(server)}"


@pytest.mark.timeout(FILL_TIMEOUT + SOAK_SECONDS + 120)
def test_soak_leaves_memory_flat_and_the_engine_idle(launch: Launch):
    server = launch(*SERVER_FLAGS, env=STEADY_MALLOC)
    bias = server.no_eos_bias()
    asyncio.run(traffic(server.base, 0, bias, fill_caches(server)))
    assert server.engine_idle(10), server.gauges()
    baseline = server.rss_bytes()

    kinds = asyncio.run(traffic(server.base, 1000, bias, asyncio.sleep(SOAK_SECONDS)))
    assert server.engine_idle(10), server.gauges()
    after = server.rss_bytes()

    assert sum(kinds.values()) > 100 and set(kinds) == set(KINDS), kinds
    for name, (used, limit) in cache_use(server).items():
        assert used <= limit, f"the {name} holds {used:.0f} bytes of {limit:.0f}"
    mib = 1 << 20
    assert after <= baseline * (1 + GROWTH), (
        f"RSS grew from {baseline / mib:.0f} MiB to {after / mib:.0f} MiB "
        f"over {sum(kinds.values())} requests"
    )
    assert server.alive()
