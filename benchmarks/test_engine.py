"""Engine (issue "Engine"): the mlx-gen engine through its async API against
mlx-lm on the same loaded bench model, in one process and one run, the two
alternating round by round on the same prompts.

Decode rates are steady-state: tokens per second while every sequence of the
batch is decoding (from the last first token to the first last token), so
prefill and ramp-down do not blur them. Temperature 1, no stop tokens: every
request generates exactly its max_tokens (checked).
"""

from __future__ import annotations

import pytest
from engine_runs import (
    engine_batch,
    engine_ttft_under_load,
    make_prompts,
    raw_batch,
    raw_ttft_under_load,
    stream_generate_one,
)
from timing import paired_ratios, run_rounds, spread

PROMPT_TOKENS = 128
DECODE_TOKENS = 128
TARGET_SINGLE = 0.97  # engine / stream_generate, one stream
TARGET_BATCH_32 = 0.95  # engine / BatchGenerator at 32 sequences


def test_single_stream_decode(
    benchmark, engine, bench_model, no_eos_tokenizer, rng, rounds, record
):
    model, tokenizer = bench_model
    prompts = [
        make_prompts(tokenizer, 1, PROMPT_TOKENS, rng)[0] for _ in range(rounds + 1)
    ]

    def mlx_gen(r: int) -> float:
        return engine_batch(engine, [prompts[r]], DECODE_TOKENS).steady_decode()[0]

    def mlx_lm(r: int) -> float:
        run = stream_generate_one(model, no_eos_tokenizer, prompts[r], DECODE_TOKENS)
        return run.steady_decode()[0]

    got = run_rounds(benchmark, {"mlx-gen": mlx_gen, "mlx-lm": mlx_lm}, rounds)
    ratio = spread(paired_ratios(got["mlx-gen"], got["mlx-lm"]))
    record(
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=DECODE_TOKENS,
        rounds=rounds,
        engine_tok_s=spread(got["mlx-gen"]),
        stream_generate_tok_s=spread(got["mlx-lm"]),
        ratio=ratio,
        target=f">= {TARGET_SINGLE}",
        met=ratio["median"] >= TARGET_SINGLE,
    )


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_batch_decode(benchmark, engine, bench_model, rng, rounds, record, batch):
    model, tokenizer = bench_model
    prompts = [
        make_prompts(tokenizer, batch, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]
    systems = {
        "mlx-gen": lambda r: engine_batch(engine, prompts[r], DECODE_TOKENS),
        "BatchGenerator": lambda r: raw_batch(model, prompts[r], DECODE_TOKENS),
    }
    got = run_rounds(benchmark, systems, rounds)
    steady = {k: [a.steady_decode()[0] for a in v] for k, v in got.items()}
    ratio = spread(paired_ratios(steady["mlx-gen"], steady["BatchGenerator"]))
    figures = dict(
        batch=batch,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=DECODE_TOKENS,
        rounds=rounds,
        engine_decode_tok_s=spread(steady["mlx-gen"]),
        batch_generator_decode_tok_s=spread(steady["BatchGenerator"]),
        ratio=ratio,
        decode_window_s=spread([a.steady_decode()[1] for a in got["mlx-gen"]]),
        engine_total_tok_s=spread([a.total_tps() for a in got["mlx-gen"]]),
        batch_generator_total_tok_s=spread(
            [a.total_tps() for a in got["BatchGenerator"]]
        ),
        engine_last_ttft_s=spread([a.ttfts()[-1] for a in got["mlx-gen"]]),
        batch_generator_last_ttft_s=spread(
            [a.ttfts()[-1] for a in got["BatchGenerator"]]
        ),
    )
    if batch == 32:
        figures.update(
            target=f">= {TARGET_BATCH_32}", met=ratio["median"] >= TARGET_BATCH_32
        )
    record(**figures)


def test_ttft_while_31_decode(benchmark, engine, bench_model, rng, rounds, record):
    """A 128-token prompt arriving while 31 requests decode, against the same
    prompt on an idle engine; and both through BatchGenerator."""
    model, tokenizer = bench_model
    background = [
        make_prompts(tokenizer, 31, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]
    probes = [make_prompts(tokenizer, 2, PROMPT_TOKENS, rng) for _ in range(rounds + 1)]

    def idle_ttft(run):
        return lambda r: run(probes[r][1:], 1).ttfts()[0]

    systems = {
        "mlx-gen idle": idle_ttft(lambda p, n: engine_batch(engine, p, n)),
        "mlx-gen loaded": lambda r: engine_ttft_under_load(
            engine, background[r], probes[r][0]
        ),
        "BatchGenerator idle": idle_ttft(lambda p, n: raw_batch(model, p, n)),
        "BatchGenerator loaded": lambda r: raw_ttft_under_load(
            model, background[r], probes[r][0]
        ),
    }
    got = run_rounds(benchmark, systems, rounds)
    record(
        prompt_tokens=PROMPT_TOKENS,
        decoding=31,
        rounds=rounds,
        **{f"{name} TTFT s": spread(values) for name, values in got.items()},
        loaded_ratio_engine_to_batch_generator=spread(
            paired_ratios(got["mlx-gen loaded"], got["BatchGenerator loaded"])
        ),
        engine_loaded_to_idle=spread(
            paired_ratios(got["mlx-gen loaded"], got["mlx-gen idle"])
        ),
    )


@pytest.mark.parametrize("prompt_tokens", [128, 512, 2048])
def test_prefill(benchmark, engine, bench_model, rng, rounds, record, prompt_tokens):
    """One request, one token out: prompt tokens / time to the first token."""
    model, tokenizer = bench_model
    prompts = [
        make_prompts(tokenizer, 1, prompt_tokens, rng) for _ in range(rounds + 1)
    ]
    systems = {
        "mlx-gen": lambda r: engine_batch(engine, prompts[r], 1),
        "BatchGenerator": lambda r: raw_batch(model, prompts[r], 1),
    }
    got = run_rounds(benchmark, systems, rounds)
    rate = {k: [a.prefill_tps(prompt_tokens) for a in v] for k, v in got.items()}
    record(
        prompt_tokens=prompt_tokens,
        rounds=rounds,
        engine_prefill_tok_s=spread(rate["mlx-gen"]),
        batch_generator_prefill_tok_s=spread(rate["BatchGenerator"]),
        ratio=spread(paired_ratios(rate["mlx-gen"], rate["BatchGenerator"])),
        engine_ttft_s=spread([a.ttfts()[0] for a in got["mlx-gen"]]),
    )
