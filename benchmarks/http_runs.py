"""Load levels against a running server with mlx-gen's load generator
(mlx_gen.bench.loadgen), and the figures of a level as one table row."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from servers import Server

from mlx_gen.bench.loadgen import (
    Level,
    LoadConfig,
    calibrate_prompt_words,
    calibrated,
    make_client,
    run_level,
    warm_up,
)
from mlx_gen.bench.report import summarize
from mlx_gen.bench.workload import Span, Workload

WARMUP_REQUESTS = 2
REQUEST_TIMEOUT_S = 600.0
LEVEL_DEADLINE_S = 1800.0


def prepare(server: Server, prompt_tokens: int, max_tokens: int) -> LoadConfig:
    """A load for `server`: warmed up, prompts calibrated on its own usage to
    about `prompt_tokens` (its chat template included)."""
    config = LoadConfig(
        base_url=server.url,
        model=server.model,
        workload=Workload(
            prompt_words=Span(prompt_tokens), max_tokens=Span(max_tokens)
        ),
        request_timeout=REQUEST_TIMEOUT_S,
        level_deadline=LEVEL_DEADLINE_S,
    )

    async def run() -> LoadConfig:
        async with make_client(2, REQUEST_TIMEOUT_S) as client:
            await warm_up(client, config, WARMUP_REQUESTS)
            words_for = await calibrate_prompt_words(client, config)
        if words_for is None:
            raise AssertionError(f"{server.name} reports no prompt usage")
        return calibrated(config, words_for)

    return asyncio.run(run())


def run_http_level(
    config: LoadConfig, clients: int, requests: int, seed: int = 0
) -> dict[str, Any]:
    """`requests` streaming chat completions, at most `clients` in flight;
    the level's summary (mlx_gen.bench.report.summarize)."""
    config = replace(config, num_requests=requests, seed=seed)

    async def run() -> dict[str, Any]:
        async with make_client(clients + 1, config.request_timeout) as client:
            return summarize(await run_level(client, config, Level(clients, None)))

    return asyncio.run(run())


def check_level(summary: dict[str, Any], max_tokens: int) -> None:
    """What a benchmark may assert: every request answered in full."""
    assert summary["failed"] == 0, summary["failures"]
    assert summary["usage_reported"]
    assert 0 < summary["output_tokens_per_request_mean"] <= max_tokens


def level_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of one level, latencies in milliseconds."""

    def ms(metric: str, q: str) -> float | None:
        value = summary[f"{metric}_s"][q]
        return None if value is None else value * 1000

    row: dict[str, Any] = {
        "clients": summary["concurrency"],
        "requests": summary["requests"],
        "ok": summary["completed"],
        "failures": summary["failures"] or "none",
        "prompt tok": summary["prompt_tokens_mean"],
        "out tok/req": summary["output_tokens_per_request_mean"],
        "output tok/s": summary["output_tok_s"],
        "req/s": summary["requests_per_s"],
    }
    for metric in ("ttft", "tpot", "itl"):
        for q in ("p50", "p95", "p99"):
            row[f"{metric.upper()} {q} ms"] = ms(metric, q)
    row["E2EL p50 ms"] = ms("e2el", "p50")
    row["E2EL p99 ms"] = ms("e2el", "p99")
    return row
