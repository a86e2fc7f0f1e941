"""Server over HTTP (issue "HTTP service"): `mlx-gen serve --model bench` in a
child process on 127.0.0.1 with OpenBLAS, loaded by mlx-gen's own load
generator with streaming chat completions; compared, in the same run, with
mlx-lm's BatchGenerator and with the mlx-gen engine in this process on the
same model.

The server's default stop tokens stay on (the API has no way to turn them
off), so a random model may end a stream early: output tokens are counted
from each response's usage, and rates use those counts.
"""

from __future__ import annotations

import pytest
from engine_runs import engine_batch, make_prompts, raw_batch
from http_runs import check_level, level_row, prepare, run_http_level
from servers import cached_prompt_tokens_since, counted, process_memory
from timing import median, paired_ratios, run_rounds, spread

PROMPT_TOKENS = 192  # chat template included: mlx-gen's harmony header is ~145
MAX_TOKENS = 128
TARGET_VS_RAW_32 = 0.85  # HTTP output tok/s / BatchGenerator's at batch 32
TARGET_ITL = 1.05  # single-client ITL / the engine's solo step time
# Requests per level: enough to pass the ramp of a level, bounded in time.
REQUESTS = {1: 8, 8: 24, 32: 64, 128: 128}
# Prompts come from the load's seed and level: each benchmark its own seeds,
# so that no prompt is sent twice and the prefix cache never holds one.
SEED_VS_RAW, SEED_ITL = 1000, 2000
MIB = 2**20


@pytest.fixture(scope="module")
def load(mlx_gen_server):
    return prepare(mlx_gen_server, PROMPT_TOKENS, MAX_TOKENS)


@pytest.mark.parametrize("clients", [1, 8, 32, 128])
def test_http_concurrency(benchmark, mlx_gen_server, load, record, clients):
    before = counted(mlx_gen_server)
    summary = benchmark.pedantic(
        run_http_level, args=(load, clients, REQUESTS[clients]), rounds=1, iterations=1
    )
    memory = process_memory(mlx_gen_server.pid)
    record(
        max_tokens=MAX_TOKENS,
        prefix_cached_prompt_tokens=cached_prompt_tokens_since(
            mlx_gen_server, before, summary["requests"]
        ),
        server_rss_at_ready_mib=mlx_gen_server.ready_memory["rss_bytes"] / MIB,
        server_rss_after_mib=memory["rss_bytes"] / MIB,
        server_peak_rss_so_far_mib=memory["peak_rss_bytes"] / MIB,
        levels=[level_row(summary)],
    )
    check_level(summary, MAX_TOKENS)


def test_http_32_vs_batch_generator(
    benchmark, mlx_gen_server, load, bench_model, rng, rounds, record
):
    """32 clients, 32 requests (one batch), against BatchGenerator at batch 32
    on prompts of the same length: output tokens / wall time, prefill included."""
    model, tokenizer = bench_model
    prompts = [
        make_prompts(tokenizer, 32, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]
    systems = {
        "http": lambda r: run_http_level(load, 32, 32, seed=SEED_VS_RAW + r),
        "BatchGenerator": lambda r: raw_batch(model, prompts[r], MAX_TOKENS),
    }
    before = counted(mlx_gen_server)
    got = run_rounds(benchmark, systems, rounds, cold=("http",))
    http_rates = [s["output_tok_s"] for s in got["http"]]
    raw_rates = [a.total_tps() for a in got["BatchGenerator"]]
    ratio = spread(paired_ratios(http_rates, raw_rates))
    record(
        clients=32,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        rounds=rounds,
        http_output_tok_s=spread(http_rates),
        batch_generator_tok_s=spread(raw_rates),
        ratio=ratio,
        target=f">= {TARGET_VS_RAW_32}",
        met=ratio["median"] >= TARGET_VS_RAW_32,
        http_out_tokens_per_request=spread(
            [s["output_tokens_per_request_mean"] for s in got["http"]]
        ),
        http_prompt_tokens=median([s["prompt_tokens_mean"] for s in got["http"]]),
        prefix_cached_prompt_tokens=cached_prompt_tokens_since(
            mlx_gen_server, before, sum(s["requests"] for s in got["http"])
        ),
        levels=[level_row(s) for s in got["http"]],
    )
    for summary in got["http"]:
        check_level(summary, MAX_TOKENS)


def test_http_1_client_itl_vs_engine_step(
    benchmark, load, engine, bench_model, rng, rounds, record
):
    """One client streaming: its inter-token gaps against the engine's own
    time per token for one sequence (in this process, same model)."""
    _, tokenizer = bench_model
    prompts = [
        make_prompts(tokenizer, 1, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]

    def engine_step(r: int) -> float:
        return 1 / engine_batch(engine, prompts[r], MAX_TOKENS).steady_decode()[0]

    systems = {
        "http": lambda r: run_http_level(load, 1, 4, seed=SEED_ITL + r),
        "engine": engine_step,
    }
    got = run_rounds(benchmark, systems, rounds, cold=("http",))
    itl = [s["itl_s"]["p50"] for s in got["http"]]
    tpot = [s["tpot_s"]["p50"] for s in got["http"]]
    ratio = spread(paired_ratios(itl, got["engine"]))
    record(
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        rounds=rounds,
        engine_step_ms=spread([s * 1000 for s in got["engine"]]),
        http_itl_p50_ms=spread([s * 1000 for s in itl]),
        http_tpot_p50_ms=spread([s * 1000 for s in tpot]),
        itl_to_step=ratio,
        tpot_to_step=spread(paired_ratios(tpot, got["engine"])),
        target=f"<= {TARGET_ITL}",
        met=ratio["median"] <= TARGET_ITL,
        levels=[level_row(s) for s in got["http"]],
    )
    for summary in got["http"]:
        check_level(summary, MAX_TOKENS)
