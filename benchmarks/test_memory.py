"""Memory of the bench preset under load: the whole `mlx-gen serve` process
(resident set, as the OS counts it) before and under 128 streaming clients;
and MLX's own peak in this process, the engine against BatchGenerator at
batch 32. The full-size gpt-oss-20b figure is RESULTS.md's own section
(benchmarks/full_size_memory.py)."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from engine_runs import engine_batch, make_prompts, raw_batch
from http_runs import check_level, level_row, prepare, run_http_level
from servers import process_memory

PROMPT_TOKENS = 192
MAX_TOKENS = 128
CLIENTS = 128
MIB = 2**20


def test_server_memory_under_128_clients(benchmark, mlx_gen_server, record):
    idle = process_memory(mlx_gen_server.pid)
    load = prepare(mlx_gen_server, PROMPT_TOKENS, MAX_TOKENS)
    summary = benchmark.pedantic(
        run_http_level, args=(load, CLIENTS, CLIENTS), rounds=1, iterations=1
    )
    after = process_memory(mlx_gen_server.pid)
    record(
        clients=CLIENTS,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        idle_rss_mib=idle["rss_bytes"] / MIB,
        peak_rss_mib=after["peak_rss_bytes"] / MIB,
        rss_after_load_mib=after["rss_bytes"] / MIB,
        levels=[level_row(summary)],
    )
    check_level(summary, MAX_TOKENS)


def _mlx_peak(run: Any) -> tuple[Any, int]:
    mx.synchronize()
    mx.clear_cache()
    mx.reset_peak_memory()
    result = run()
    return result, mx.get_peak_memory()


def test_mlx_peak_at_batch_32(benchmark, engine, bench_model, rng, record):
    """Weights, 32 KV caches and the step's working memory, as MLX counts them."""
    model, tokenizer = bench_model
    prompts = make_prompts(tokenizer, 32, PROMPT_TOKENS, rng)
    peaks: dict[str, int] = {}

    def both() -> None:
        _, peaks["mlx-gen"] = _mlx_peak(
            lambda: engine_batch(engine, prompts, MAX_TOKENS)
        )
        _, peaks["BatchGenerator"] = _mlx_peak(
            lambda: raw_batch(model, prompts, MAX_TOKENS)
        )

    benchmark.pedantic(both, rounds=1, iterations=1)
    plan = engine.plan
    record(
        batch=32,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        weights_mib=plan.weights_bytes / MIB,
        kv_bytes_per_token=plan.kv_bytes_per_token,
        engine_peak_mlx_mib=peaks["mlx-gen"] / MIB,
        batch_generator_peak_mlx_mib=peaks["BatchGenerator"] / MIB,
    )
