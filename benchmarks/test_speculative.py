"""Speculative decoding (issue #18): the engine with prompt lookup against
the same engine without, on the same prompts, in one run, round by round.

The workload is one where proposals are right: the bench model's random
weights fall into repeating cycles at temperature 0, which prompt lookup
proposes from the text so far. (A random-weight model does not copy its
prompt, so a copy-heavy prompt is no easier for it than a random one: the
cycles are this model's copying.) Every request is greedy and generates
exactly its max_tokens; the outputs of both engines are checked identical.

Figures per system: steady decode tok/s (as test_engine.py), tokens per
decode forward pass per stream (generated tokens / (rows x passes)), and, with
speculation, the share of proposed tokens kept. "unlimited" speculates at
every batch size (no back-off): where it loses to "off" is where decoding is
compute-bound on this machine; "ngram" is the default, which backs off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from engine_runs import make_prompts, wait_idle
from timing import Arrivals, paired_ratios, run_rounds, spread

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.llm_engine import LLMEngine
from mlx_gen.engine.types import GenerationRequest, SamplingParams

PROMPT_TOKENS = 128
DECODE_TOKENS = {1: 256, 2: 128, 4: 128, 8: 128, 16: 96, 32: 96}
BASE = EngineConfig(default_stop_token_ids=[], prefix_cache_bytes=0)
SYSTEMS = {
    "off": BASE,
    "ngram": replace(BASE, speculative="ngram"),
    "unlimited": replace(BASE, speculative="ngram", speculative_max_batch=1024),
}


@pytest.fixture(scope="module")
def engines(bench_model: tuple[Any, Any]) -> Iterator[dict[str, LLMEngine]]:
    started = {name: LLMEngine(*bench_model, c) for name, c in SYSTEMS.items()}
    for engine in started.values():
        engine.start()
    yield started
    for engine in started.values():
        engine.shutdown()


class Run:
    """One batch of greedy requests through one engine."""

    def __init__(self, engine: LLMEngine, prompts: list[list[int]], tokens: int):
        before = engine.stats()
        self.arrivals = Arrivals()
        self.outputs = asyncio.run(self._submit(engine, prompts, tokens))
        wait_idle(engine)
        after = engine.stats()
        self.row_steps = after.decode_row_steps_total - before.decode_row_steps_total
        self.generated = after.generated_tokens_total - before.generated_tokens_total
        assert [len(o) for o in self.outputs] == [tokens] * len(prompts)
        self.proposed = self.accepted = 0
        if after.speculation is not None:
            self.proposed = after.speculation.proposed - before.speculation.proposed
            self.accepted = after.speculation.accepted - before.speculation.accepted

    async def _submit(
        self, engine: LLMEngine, prompts: list[list[int]], tokens: int
    ) -> list[list[int]]:
        async def one(index: int, prompt: list[int]) -> list[int]:
            out: list[int] = []
            sampling = SamplingParams(max_tokens=tokens, temperature=0.0)
            async for event in engine.submit(GenerationRequest(prompt, sampling)):
                self.arrivals.add(index, len(event.token_ids))
                out += event.token_ids
            return out

        return await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))

    @property
    def decode_tps(self) -> float:
        return self.arrivals.steady_decode()[0]


@pytest.mark.parametrize("batch", [1, 2, 4, 8, 16, 32])
def test_prompt_lookup_on_cycles(
    benchmark, engines, bench_model, rng, rounds, record, batch
):
    tokenizer = bench_model[1]
    tokens = DECODE_TOKENS[batch]
    prompts = [
        make_prompts(tokenizer, batch, PROMPT_TOKENS, rng) for _ in range(rounds + 1)
    ]
    systems = {
        name: (lambda r, e=engine: Run(e, prompts[r], tokens))
        for name, engine in engines.items()
    }
    got = run_rounds(benchmark, systems, rounds)
    for name in ("ngram", "unlimited"):
        for fast, plain in zip(got[name], got["off"], strict=True):
            assert fast.outputs == plain.outputs, f"{name} changed the output"
    figures: dict[str, Any] = dict(
        batch=batch, prompt_tokens=PROMPT_TOKENS, max_tokens=tokens, rounds=rounds
    )
    for name, runs in got.items():
        figures[f"{name} decode tok/s"] = spread([r.decode_tps for r in runs])
        figures[f"{name} tokens/step"] = spread(
            [r.generated / r.row_steps for r in runs]
        )
        if name != "off":
            proposed = sum(r.proposed for r in runs)
            kept = sum(r.accepted for r in runs)
            figures[f"{name} acceptance"] = kept / proposed if proposed else None
            figures[f"{name} speed-up"] = spread(
                paired_ratios(
                    [r.decode_tps for r in runs], [r.decode_tps for r in got["off"]]
                )
            )
    record(**figures)


def test_self_draft_overhead(
    benchmark, engines, bench_model, bench_model_path, rng, rounds, record
):
    """The draft is the target itself: every greedy proposal is kept, so what
    this loses against "off" is the mechanism's cost (k draft steps and a
    verification pass per k + 1 tokens) with no proposal ever wrong."""
    config = replace(BASE, speculative=f"draft:{bench_model_path}")
    draft = LLMEngine(*bench_model, config)
    draft.start()
    try:
        tokens = DECODE_TOKENS[1]
        prompts = [
            make_prompts(bench_model[1], 1, PROMPT_TOKENS, rng)
            for _ in range(rounds + 1)
        ]
        systems = {
            "off": lambda r: Run(engines["off"], prompts[r], tokens),
            "self-draft": lambda r: Run(draft, prompts[r], tokens),
        }
        got = run_rounds(benchmark, systems, rounds)
    finally:
        draft.shutdown()
    for fast, plain in zip(got["self-draft"], got["off"], strict=True):
        assert fast.outputs == plain.outputs, "the self-draft changed the output"
    record(
        batch=1,
        prompt_tokens=PROMPT_TOKENS,
        max_tokens=tokens,
        rounds=rounds,
        **{
            f"{n} decode tok/s": spread([r.decode_tps for r in v])
            for n, v in got.items()
        },
        **{
            f"{n} tokens/step": spread([r.generated / r.row_steps for r in v])
            for n, v in got.items()
        },
        acceptance=sum(r.accepted for r in got["self-draft"])
        / max(1, sum(r.proposed for r in got["self-draft"])),
        speed_up=spread(
            paired_ratios(
                [r.decode_tps for r in got["self-draft"]],
                [r.decode_tps for r in got["off"]],
            )
        ),
    )
