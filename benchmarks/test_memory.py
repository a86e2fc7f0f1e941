"""Memory of the bench preset under load, as MLX counts it in this process:
the engine against BatchGenerator on the same 32 requests. The whole server
process's resident set under 1 to 128 clients is recorded by
test_server.py::test_http_concurrency; the full-size gpt-oss-20b figure is
RESULTS.md's own section (benchmarks/full_size_memory.py)."""

from __future__ import annotations

import os
from collections.abc import Callable

import mlx.core as mx
from engine_runs import engine_batch, make_prompts, raw_batch
from servers import process_memory

PROMPT_TOKENS = 192
MAX_TOKENS = 128
MIB = 2**20


def _measured(run: Callable[[], object]) -> dict[str, float]:
    """MLX's peak of live arrays over `run`, and what it keeps afterwards:
    live arrays, freed buffers held in its cache, and the process's RSS."""
    mx.synchronize()
    mx.clear_cache()
    mx.reset_peak_memory()
    run()
    return {
        "peak_active_mib": mx.get_peak_memory() / MIB,
        "active_after_mib": mx.get_active_memory() / MIB,
        "buffer_cache_after_mib": mx.get_cache_memory() / MIB,
        "rss_after_mib": process_memory(os.getpid())["rss_bytes"] / MIB,
    }


def test_mlx_memory_at_batch_32(benchmark, engine, bench_model, rng, record):
    """Weights, 32 KV caches and the steps' working memory; and the buffer
    cache each leaves behind (the engine bounds it by its prefill reserve)."""
    model, tokenizer = bench_model
    prompts = make_prompts(tokenizer, 32, PROMPT_TOKENS, rng)
    rows: list[dict] = []

    def both() -> None:
        rows.append(
            {
                "system": "mlx-gen engine",
                **_measured(lambda: engine_batch(engine, prompts, MAX_TOKENS)),
            }
        )
        rows.append(
            {
                "system": "BatchGenerator",
                **_measured(lambda: raw_batch(model, prompts, MAX_TOKENS)),
            }
        )

    benchmark.pedantic(both, rounds=1, iterations=1)
    record(
        batch=32,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        weights_mib=engine.plan.weights_bytes / MIB,
        kv_bytes_per_token=engine.plan.kv_bytes_per_token,
        # The plan's working memory: decode transient + 2 x the prefill
        # reserve, which is also the limit of MLX's buffer cache.
        plan_transient_mib=engine.plan.transient_bytes / MIB,
        systems=rows,
    )
