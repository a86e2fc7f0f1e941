"""A load generator for any OpenAI-compatible server: streaming chat completions.

Runs `num_requests` requests per level (a concurrency cap, a Poisson arrival
rate, or both) over one httpx AsyncClient and times each one the way vLLM's
benchmarks do: TTFT from request sent to first streamed token, every gap
between streamed chunks, end-to-end latency, output tokens from the server's
usage (or, when it sends none, one per streamed chunk). Every loop is bounded:
by its request count, a per-request timeout and a per-level deadline.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

# Short common words: about one token each in most BPE vocabularies.
_WORD_TEXT = """
time year people way day man thing woman life child world school state family
student group country problem hand part place case week company system program
question work government number night point home water room mother area money
story fact month lot right study book eye job word business issue side kind head
house service friend father power hour game line end member law car city name
team minute idea kid body face others
"""
_WORDS = _WORD_TEXT.split()
# Fields a streamed delta carries text in: content, and reasoning as vLLM
# (reasoning_content) and mlx-lm / mlx-gen (reasoning) name it.
_TEXT_FIELDS = ("content", "reasoning_content", "reasoning")


@dataclass(frozen=True)
class Level:
    """One point of a sweep: at most `concurrency` in flight (None: no cap),
    arrivals `rate` per second in a Poisson process (None: all at once)."""

    concurrency: int | None
    rate: float | None

    @property
    def name(self) -> str:
        parts = [f"c={self.concurrency}" if self.concurrency else "c=∞"]
        if self.rate is not None:
            parts.append(f"rate={self.rate:g}/s")
        return " ".join(parts)


@dataclass(frozen=True)
class LoadConfig:
    base_url: str  # scheme://host:port, without /v1
    model: str
    num_requests: int = 32
    prompt_words: int = 128  # see calibrate_prompt_words
    max_tokens: int = 128
    api_key: str | None = None
    seed: int = 0
    request_timeout: float = 300.0
    level_deadline: float = 600.0


@dataclass
class RequestResult:
    ok: bool
    sent_at: float  # seconds since the level started
    error: str | None = None  # HTTP status ("429") or exception kind
    detail: str = ""
    ttft: float | None = None
    e2el: float | None = None
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    text_chunks: int = 0  # streamed chunks that carried text
    prompt_tokens: int | None = None
    usage_reported: bool = False

    @property
    def tpot(self) -> float | None:
        if not self.ok or self.output_tokens < 2 or self.ttft is None:
            return None
        return (self.e2el - self.ttft) / (self.output_tokens - 1)


@dataclass
class LevelRun:
    level: Level
    duration: float
    results: list[RequestResult]


def synthetic_prompt(rng: random.Random, words: int) -> str:
    """`words` seeded words: distinct per request, so no prefix cache helps."""
    return " ".join(rng.choice(_WORDS) for _ in range(max(words, 1)))


def normalize_base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


async def server_info(
    client: httpx.AsyncClient, base_url: str, api_key: str | None
) -> dict[str, Any]:
    """The model ids GET /v1/models lists, and the server's `server` header."""
    response = await client.get(f"{base_url}/v1/models", headers=_headers(api_key))
    response.raise_for_status()
    models = [str(m["id"]) for m in response.json().get("data") or []]
    return {"models": models, "server": response.headers.get("server")}


def _chunk_text(chunk: dict[str, Any]) -> bool:
    """Whether a streamed chunk carries generated text (content or reasoning)."""
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if any(delta.get(name) for name in _TEXT_FIELDS) or delta.get("tool_calls"):
            return True
    return False


async def _stream_one(
    client: httpx.AsyncClient, config: LoadConfig, prompt: str, level_start: float
) -> RequestResult:
    body = {
        "model": config.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": config.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{config.base_url}/v1/chat/completions"
    sent = time.perf_counter()
    result = RequestResult(ok=False, sent_at=sent - level_start)
    last_token_at: float | None = None
    done = False
    async with client.stream(
        "POST", url, json=body, headers=_headers(config.api_key)
    ) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode("utf-8", "replace")
            result.error, result.detail = str(response.status_code), text[:300]
            return result
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[len("data:") :].strip()
            if payload == "[DONE]":
                done = True
                break
            now = time.perf_counter()
            chunk = json.loads(payload)
            if "error" in chunk:
                result.error, result.detail = "stream_error", str(chunk["error"])[:300]
                return result
            if _chunk_text(chunk):
                result.text_chunks += 1
                if last_token_at is None:
                    result.ttft = now - sent
                else:
                    result.itl.append(now - last_token_at)
                last_token_at = now
            usage = chunk.get("usage")
            if usage:
                result.usage_reported = True
                result.output_tokens = int(usage.get("completion_tokens") or 0)
                result.prompt_tokens = usage.get("prompt_tokens")
    result.e2el = time.perf_counter() - sent
    if not done:
        result.error = "incomplete_stream"
        return result
    if not result.usage_reported:
        result.output_tokens = result.text_chunks
    result.ok = True
    return result


async def _timed_request(
    client: httpx.AsyncClient, config: LoadConfig, prompt: str, level_start: float
) -> RequestResult:
    sent_at = time.perf_counter() - level_start
    try:
        return await asyncio.wait_for(
            _stream_one(client, config, prompt, level_start), config.request_timeout
        )
    except (asyncio.TimeoutError, httpx.TimeoutException):
        return RequestResult(ok=False, sent_at=sent_at, error="timeout")
    except httpx.HTTPError as exc:
        return RequestResult(
            ok=False, sent_at=sent_at, error=type(exc).__name__, detail=str(exc)[:300]
        )
    except ValueError as exc:  # a stream that is not JSON lines
        return RequestResult(
            ok=False, sent_at=sent_at, error="bad_stream", detail=str(exc)[:300]
        )


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
) -> LevelRun:
    """Send `config.num_requests` requests at `level`; None of them outlives the
    level's deadline (those still running then count as `deadline` failures)."""
    rng = random.Random(f"{config.seed}:{level.name}")
    prompts = [
        synthetic_prompt(rng, config.prompt_words) for _ in range(config.num_requests)
    ]
    gaps = [
        rng.expovariate(level.rate) if level.rate else 0.0 for _ in range(len(prompts))
    ]
    limit = asyncio.Semaphore(level.concurrency or len(prompts))
    start = time.perf_counter()
    results: list[RequestResult] = []

    async def one(prompt: str) -> None:
        async with limit:
            result = await _timed_request(client, config, prompt, start)
        results.append(result)
        on_result(result)

    tasks: list[asyncio.Task[None]] = []

    async def launch() -> None:
        for prompt, gap in zip(prompts, gaps, strict=True):
            if gap:
                await asyncio.sleep(gap)
            tasks.append(asyncio.create_task(one(prompt)))
        await asyncio.gather(*tasks)

    try:
        await asyncio.wait_for(launch(), config.level_deadline)
    except asyncio.TimeoutError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        results.extend(
            RequestResult(ok=False, sent_at=config.level_deadline, error="deadline")
            for _ in range(config.num_requests - len(results))
        )
    return LevelRun(level, time.perf_counter() - start, results)


async def warm_up(client: httpx.AsyncClient, config: LoadConfig, count: int) -> None:
    """A few unmeasured requests: the first ones compile kernels and fill caches."""
    rng = random.Random(f"{config.seed}:warmup")
    for _ in range(count):
        await _timed_request(
            client, config, synthetic_prompt(rng, config.prompt_words), 0.0
        )


async def calibrate_prompt_words(
    client: httpx.AsyncClient, config: LoadConfig, prompt_tokens: int
) -> int | None:
    """Words per prompt that make about `prompt_tokens` prompt tokens on this
    server, chat template included, from the usage of two short probes; None
    when the server reports no prompt usage."""
    rng = random.Random(f"{config.seed}:calibrate")
    probe = replace(config, max_tokens=1)
    sizes = (16, 64)
    counts = []
    for words in sizes:
        result = await _timed_request(client, probe, synthetic_prompt(rng, words), 0.0)
        if not result.ok or not result.prompt_tokens:
            return None
        counts.append(result.prompt_tokens)
    per_word = (counts[1] - counts[0]) / (sizes[1] - sizes[0])
    if per_word <= 0:
        return None
    template = counts[0] - per_word * sizes[0]
    return max(1, round((prompt_tokens - template) / per_word))
