"""Soak: minutes of steady mixed traffic leave no memory growth and no held slots.

RELIABILITY_SOAK_SECONDS sets the length of the soak (default 120; CI runs
the default). The same traffic first runs WARM_UP seconds, so that the
allocators and the prefix cache reach their steady size before the baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter

import httpx

from .clients import CHAT, Outcome, async_client, chat_body, post, stream, stream_body
from .conftest import Launch

SOAK_SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "120"))
WARM_UP = 20.0
WORKERS = 12
GROWTH = 0.10  # RSS after the soak within 10 % of after the warm-up
PROMPTS = [f"Tell me about topic {i}." for i in range(16)]


async def leave_early(client: httpx.AsyncClient, url: str, body: dict, frames: int):
    async with client.stream("POST", url, json=body) as response:
        async for line in response.aiter_lines():
            frames -= line.startswith("data: ")
            if frames <= 0:
                break


async def one_request(client, base: str, rng: random.Random, bias: dict) -> str:
    """One request of the mix; returns its kind, or raises if it went wrong."""
    prompt = rng.choice(PROMPTS)
    kind = rng.choice(["stream short", "stream long", "whole short", "whole long",
                       "completion", "leave stream", "leave whole"])  # fmt: skip
    url = base + CHAT
    long_tokens = rng.randint(50, 200)
    outcome: Outcome | None = None
    if kind == "stream short":
        outcome = await stream(client, url, stream_body(prompt, 8))
    elif kind == "stream long":
        body = stream_body(prompt, long_tokens, logit_bias=bias)
        outcome = await stream(client, url, body)
    elif kind == "whole short":
        outcome = await post(client, url, chat_body(prompt, 8))
    elif kind == "whole long":
        outcome = await post(client, url, chat_body(prompt, long_tokens))
    elif kind == "completion":
        body = {"model": "tiny", "prompt": prompt, "max_tokens": 16}
        outcome = await post(client, base + "/v1/completions", body)
    elif kind == "leave stream":
        body = stream_body(prompt, 400, logit_bias=bias)
        await leave_early(client, url, body, rng.randint(1, 30))
    else:
        timeout = httpx.Timeout(30, read=rng.uniform(0.05, 0.5))
        body = chat_body(prompt, 400, logit_bias=bias)
        async with httpx.AsyncClient(timeout=timeout) as impatient:
            with contextlib.suppress(httpx.ReadTimeout):  # it gave up: expected
                await impatient.post(url, json=body)
    if outcome is not None and not outcome.complete:
        raise AssertionError(f"{kind}: {outcome.describe()}")
    return kind


async def traffic(base: str, seconds: float, seed: int, bias: dict) -> Counter:
    """WORKERS clients sending the mix back to back for `seconds`."""
    deadline = time.monotonic() + seconds
    kinds: Counter = Counter()

    async def worker(rng: random.Random) -> None:
        async with async_client(4) as client:
            while time.monotonic() < deadline:
                kinds[await one_request(client, base, rng, bias)] += 1

    await asyncio.gather(*(worker(random.Random(seed + i)) for i in range(WORKERS)))
    return kinds


def test_soak_leaves_memory_flat_and_the_engine_idle(launch: Launch):
    # The caches the memory plan allows (the prefix cache, and MLX's buffer
    # cache up to the prefill reserve) fill during the warm-up and then stay
    # full: a small budget keeps them small enough to fill in that time.
    server = launch("--memory-budget-gb", "1", "--memory-headroom-gb", "0.5",
                    "--prefix-cache-gb", "0.01", "--max-batch-size", "16")  # fmt: skip
    bias = server.no_eos_bias()
    asyncio.run(traffic(server.base, WARM_UP, 0, bias))
    assert server.engine_idle(10), server.gauges()
    baseline = server.rss_bytes()

    kinds = asyncio.run(traffic(server.base, SOAK_SECONDS, 1000, bias))
    assert server.engine_idle(10), server.gauges()
    after = server.rss_bytes()

    assert sum(kinds.values()) > 100 and len(kinds) == 7, kinds
    mib = 1 << 20
    assert after <= baseline * (1 + GROWTH), (
        f"RSS grew from {baseline / mib:.0f} MiB to {after / mib:.0f} MiB "
        f"over {sum(kinds.values())} requests"
    )
    assert server.alive()
