"""The soak's traffic: WORKERS clients sending a mix of requests back to back.

Shared by tests/reliability/test_soak.py and benchmarks/soak_memory.py, which
runs the same traffic for longer and samples memory along the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Awaitable

import httpx

from .clients import CHAT, Outcome, async_client, chat_body, post, stream, stream_body

WORKERS = 12
# Many more prompts than the prefix cache holds: it fills, then evicts.
TOPICS = 1000
KINDS = ("stream short", "stream long", "whole short", "whole long",
         "completion", "leave stream", "leave whole")  # fmt: skip
# A small budget keeps the caches the memory plan allows (the prefix cache,
# and MLX's buffer cache up to its limit) small enough to fill in seconds.
SERVER_FLAGS = ("--memory-budget-gb", "1", "--memory-headroom-gb", "0.5",
                "--prefix-cache-gb", "0.01", "--max-batch-size", "16")  # fmt: skip


async def leave_early(client: httpx.AsyncClient, url: str, body: dict, frames: int):
    async with client.stream("POST", url, json=body) as response:
        async for line in response.aiter_lines():
            frames -= line.startswith("data: ")
            if frames <= 0:
                break


async def one_request(client, base: str, rng: random.Random, bias: dict) -> str:
    """One request of the mix; returns its kind, or raises if it went wrong."""
    prompt = f"Tell me about topic {rng.randrange(TOPICS)}."
    kind = rng.choice(KINDS)
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


async def traffic(
    base: str, seed: int, bias: dict, until: Awaitable, kinds: Counter | None = None
) -> Counter:
    """WORKERS clients sending the mix back to back until `until` is done
    (then its exception, if any, is raised); the kinds of the requests done
    are counted into `kinds` as they end."""
    kinds = Counter() if kinds is None else kinds
    stop = asyncio.ensure_future(until)

    async def worker(rng: random.Random) -> None:
        async with async_client(4) as client:
            while not stop.done():
                kinds[await one_request(client, base, rng, bias)] += 1

    try:
        await asyncio.gather(*(worker(random.Random(seed + i)) for i in range(WORKERS)))
    finally:
        if not stop.done():  # a request failed: the workers stopped early
            stop.cancel()
    await stop
    return kinds
