"""A load generator for any OpenAI-compatible server.

Two ways to load it. `run_level` sends `num_requests` requests at a level (a
concurrency cap, a Poisson arrival rate, or both), as vLLM's benchmarks do.
`run_users` is a closed loop, as Locust and k6 run one: N virtual users each
send a request, wait for the answer, and send the next, for a duration; the
profiles (ramp, spike, soak, stress) are built of it. Every loop is bounded:
by its request count or duration, a per-request timeout and a deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from mlx_gen.bench.request import (
    RequestResult,
    headers,
    honour_retry_after,
    timed_request,
    with_retries,
)
from mlx_gen.bench.workload import RequestSpec, Workload, synthetic_prompt


@dataclass(frozen=True)
class Level:
    """One point of a sweep: at most `concurrency` in flight (None: no cap),
    arrivals `rate` per second in a Poisson process (None: all at once), at a
    reasoning `effort`; `phase` names a profile's part (spike: base, spike...)."""

    concurrency: int | None
    rate: float | None = None
    effort: str | None = None
    phase: str | None = None

    @property
    def name(self) -> str:
        parts = [self.phase] if self.phase else []
        parts.append(f"c={self.concurrency}" if self.concurrency else "c=∞")
        if self.rate is not None:
            parts.append(f"rate={self.rate:g}/s")
        if self.effort is not None:
            parts.append(f"effort={self.effort}")
        return " ".join(parts)


@dataclass(frozen=True)
class LoadConfig:
    base_url: str  # scheme://host:port, without /v1
    model: str
    num_requests: int = 32
    workload: Workload = field(default_factory=Workload)
    api_key: str | None = None
    seed: int = 0
    request_timeout: float = 300.0
    level_deadline: float = 600.0
    retries: int = 0  # after a 429 / 503 with Retry-After


@dataclass
class LevelRun:
    level: Level
    duration: float
    results: list[RequestResult]


def normalize_base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def server_info(
    client: httpx.AsyncClient, base_url: str, api_key: str | None
) -> dict[str, Any]:
    """The model ids GET /v1/models lists, and the server's `server` header."""
    response = await client.get(f"{base_url}/v1/models", headers=headers(api_key))
    response.raise_for_status()
    models = [str(m["id"]) for m in response.json().get("data") or []]
    return {"models": models, "server": response.headers.get("server")}


def make_client(max_connections: int, request_timeout: float) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    timeout = httpx.Timeout(request_timeout, connect=min(request_timeout, 30.0))
    return httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)


async def run_level(
    client: httpx.AsyncClient,
    config: LoadConfig,
    level: Level,
    on_result: Callable[[RequestResult], None] = lambda _: None,
    origin: float | None = None,
) -> LevelRun:
    """Send `config.num_requests` requests at `level`; None of them outlives the
    level's deadline (those still running then count as `deadline` failures).
    Times are reported from `origin` (a perf_counter time; default: now)."""
    rng = random.Random(f"{config.seed}:{level.name}")
    specs = [
        config.workload.draw(rng, level.effort) for _ in range(config.num_requests)
    ]
    gaps = [rng.expovariate(level.rate) if level.rate else 0.0 for _ in specs]
    limit = asyncio.Semaphore(level.concurrency or len(specs))
    start = time.perf_counter()
    origin = start if origin is None else origin
    deadline = start + config.level_deadline
    results: list[RequestResult] = []

    def keep(result: RequestResult) -> None:
        results.append(result)
        on_result(result)

    async def one(spec: RequestSpec) -> None:
        async with limit:
            await with_retries(client, config, spec, origin, deadline, keep)

    tasks: list[asyncio.Task[None]] = []

    async def launch() -> None:
        for spec, gap in zip(specs, gaps, strict=True):
            if gap:
                await asyncio.sleep(gap)
            tasks.append(asyncio.create_task(one(spec)))
        await asyncio.gather(*tasks)

    try:
        await asyncio.wait_for(launch(), config.level_deadline)
    except asyncio.TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        answered = sum(1 for r in results if r.attempt == 1)
        at = deadline - origin
        results.extend(
            RequestResult(ok=False, sent_at=at, error="deadline", done_at=at)
            for _ in range(config.num_requests - answered)
        )
    return LevelRun(level, time.perf_counter() - start, results)


async def run_users(
    client: httpx.AsyncClient,
    config: LoadConfig,
    level: Level,
    duration: float,
    origin: float,
    on_result: Callable[[RequestResult], None],
) -> None:
    """`level.concurrency` virtual users, each sending its next request when
    the last one is answered, until `duration` seconds have passed; times are
    reported from `origin` (a perf_counter time). A request still running at
    the end is waited for, up to the request timeout."""
    deadline = time.perf_counter() + duration

    async def user(number: int) -> None:
        rng = random.Random(f"{config.seed}:{level.name}:{origin}:{number}")
        while time.perf_counter() < deadline:
            spec = config.workload.draw(rng, level.effort)
            last = await with_retries(
                client, config, spec, origin, deadline, on_result, number
            )
            # A user who gave up a refused request still waits as asked.
            asked = config.retries and last.retry_after is not None
            if asked and not await honour_retry_after(last, deadline):
                return  # the wait asked for outlasts the run

    await asyncio.gather(*(user(n) for n in range(level.concurrency or 1)))


async def warm_up(client: httpx.AsyncClient, config: LoadConfig, count: int) -> None:
    """A few unmeasured requests: the first ones compile kernels and fill caches."""
    rng = random.Random(f"{config.seed}:warmup")
    for _ in range(count):
        await timed_request(client, config, config.workload.draw(rng, None), 0.0)


async def calibrate_prompt_words(
    client: httpx.AsyncClient, config: LoadConfig
) -> Callable[[int], int] | None:
    """How many words make a prompt of N tokens on this server, chat template
    included, from the usage of two short probes; None when the server reports
    no prompt usage."""
    rng = random.Random(f"{config.seed}:calibrate")
    sizes = (16, 64)
    counts = []
    for words in sizes:
        text = synthetic_prompt(rng, words)
        probe = RequestSpec(({"role": "user", "content": text},), 1, True)
        result = await timed_request(client, config, probe, 0.0)
        if not result.ok or not result.prompt_tokens:
            return None
        counts.append(result.prompt_tokens)
    per_word = (counts[1] - counts[0]) / (sizes[1] - sizes[0])
    if per_word <= 0:
        return None
    template = counts[0] - per_word * sizes[0]
    return lambda tokens: max(1, round((tokens - template) / per_word))


def calibrated(config: LoadConfig, words_for: Callable[[int], int]) -> LoadConfig:
    """`config` whose prompt lengths, given in tokens, are turned into words."""
    workload = config.workload
    span = workload.prompt_words.scaled(words_for)
    return replace(config, workload=replace(workload, prompt_words=span))
