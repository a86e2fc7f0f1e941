"""Bursts (issue 17): every client sends its chat request at once, each with
mlx-gen's harmony system prompt, against this checkout's server and another
checkout's (`--baseline-mlx-gen`, e.g. main's) side by side, interleaved
round by round; at 32 clients against mlx-lm's BatchGenerator at batch 32 on
prompts of the same length too (its decode ceiling, prefill included).

Each level sends fresh prompts (its own seeds): what a burst shares is the
system prompt alone, as for users who arrive together.
"""

from __future__ import annotations

import pytest
from engine_runs import make_prompts, raw_batch
from http_runs import check_level, level_row, prepare, run_http_level
from servers import mlx_gen_serve
from timing import median, paired_ratios, run_rounds, spread

PROMPT_TOKENS = 192  # chat template included: its system prompt is ~145
MAX_TOKENS = 64
CLIENTS = (128, 32, 1)
REQUESTS = {128: 128, 32: 32, 1: 4}
SEED = 17000
TARGET_TTFT_128 = 1 / 3  # of the baseline's, p50
TARGET_VS_RAW_32 = 0.9
TARGET_TTFT_32_S = 1.0
TARGET_SOLO = 0.05  # decode and TTFT of 1 client, relative to the baseline


@pytest.fixture(scope="module")
def baseline_server(pytestconfig, tmp_path_factory, bench_model_path, server_env):
    executable = pytestconfig.getoption("--baseline-mlx-gen")
    if executable is None:
        pytest.skip("give --baseline-mlx-gen PATH to compare with another checkout")
    workdir = tmp_path_factory.mktemp("baseline-serve")
    with mlx_gen_serve(workdir, server_env, executable, "baseline") as server:
        yield server


def test_bursts_vs_baseline(
    benchmark, mlx_gen_server, baseline_server, bench_model, rng, rounds, record
):
    model, tokenizer = bench_model
    loads = {
        "this": prepare(mlx_gen_server, PROMPT_TOKENS, MAX_TOKENS),
        "baseline": prepare(baseline_server, PROMPT_TOKENS, MAX_TOKENS),
    }
    raw_prompts = [
        make_prompts(tokenizer, 32, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]
    systems = {
        f"{name} x{clients}": (
            lambda r, load=load, c=clients: run_http_level(
                load, c, REQUESTS[c], seed=SEED + 100 * c + r
            )
        )
        for clients in CLIENTS
        for name, load in loads.items()
    }
    systems["BatchGenerator x32"] = lambda r: raw_batch(
        model, raw_prompts[r], MAX_TOKENS
    )
    got = run_rounds(benchmark, systems, rounds, cold=tuple(systems)[:-1])

    def figures(system: str, metric: str, q: str = "p50") -> list[float]:
        return [s[f"{metric}_s"][q] for s in got[system]]

    def rates(system: str) -> list[float]:
        return [s["output_tok_s"] for s in got[system]]

    ttft_128 = paired_ratios(
        figures("this x128", "ttft"), figures("baseline x128", "ttft")
    )
    raw_32 = [a.total_tps() for a in got["BatchGenerator x32"]]
    vs_raw_32 = paired_ratios(rates("this x32"), raw_32)
    ttft_32 = median(figures("this x32", "ttft"))
    solo_tpot = paired_ratios(
        figures("this x1", "tpot"), figures("baseline x1", "tpot")
    )
    solo_ttft = paired_ratios(
        figures("this x1", "ttft"), figures("baseline x1", "ttft")
    )
    record(
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=MAX_TOKENS,
        rounds=rounds,
        ttft_p50_128_to_baseline=spread(ttft_128),
        output_tok_s_32_to_batch_generator=spread(vs_raw_32),
        batch_generator_32_tok_s=spread(raw_32),
        ttft_p50_32_s=ttft_32,
        solo_tpot_to_baseline=spread(solo_tpot),
        solo_ttft_to_baseline=spread(solo_ttft),
        met={
            "128 TTFT p50 <= 1/3 baseline": median(ttft_128) <= TARGET_TTFT_128,
            "32 tok/s >= 0.9 BatchGenerator": median(vs_raw_32) >= TARGET_VS_RAW_32,
            "32 TTFT p50 <= 1 s": ttft_32 <= TARGET_TTFT_32_S,
            "1 client within 5 %": max(median(solo_tpot), median(solo_ttft))
            <= 1 + TARGET_SOLO,
        },
        levels=[
            {"system": name, **level_row(s)}
            for name in systems
            if not name.startswith("BatchGenerator")
            for s in got[name]
        ],
    )
    for name in systems:
        if not name.startswith("BatchGenerator"):
            for summary in got[name]:
                check_level(summary, MAX_TOKENS)
