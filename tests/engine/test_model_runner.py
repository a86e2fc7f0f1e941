"""Continuous batching: a sequence's greedy output does not depend on its batch."""

from __future__ import annotations

import asyncio
import random

import pytest
from polling import wait_until_async

from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import Result, collect, greedy, run

WINDOW = 32  # the tiny model's sliding window


def prompts(lengths: list[int], seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1000) for _ in range(n)] for n in lengths]


def test_greedy_output_is_the_same_alone_and_in_a_batch(make_engine):
    engine = make_engine()
    # Mixed lengths, several past the sliding window, prefilled in chunks of 16,
    # and leaving the batch at different steps.
    lengths = [3, 20, 45, 70, 100, 1]
    max_tokens = [40, 25, 50, 33, 45, 12]
    requests = lambda: [  # noqa: E731
        greedy(p, m) for p, m in zip(prompts(lengths), max_tokens, strict=True)
    ]
    assert max(lengths) + max(max_tokens) > 3 * WINDOW

    alone = [run(collect(engine, r)).tokens[0] for r in requests()]
    steps_before = engine.stats().steps_total

    async def together():
        return await asyncio.gather(*(collect(engine, r) for r in requests()))

    batched = [r.tokens[0] for r in run(together())]
    assert engine.stats().steps_total - steps_before < sum(max_tokens) / 2

    async def staggered():
        reqs = requests()
        first = [asyncio.create_task(collect(engine, r)) for r in reqs[:2]]
        start = engine.stats().generated_tokens_total
        assert await wait_until_async(
            lambda: engine.stats().generated_tokens_total >= start + 10, 30
        )
        later = [asyncio.create_task(collect(engine, r)) for r in reqs[2:]]
        return await asyncio.gather(*first, *later)

    joined_late = [r.tokens[0] for r in run(staggered())]
    assert [len(t) for t in alone] == max_tokens
    assert batched == alone
    assert joined_late == alone


def test_a_one_token_prompt_and_a_full_batch(make_engine):
    engine = make_engine(max_batch_size=4)
    requests = [greedy(p, 8) for p in prompts([1, 1, 5, 9, 2, 30], seed=3)]

    async def all_of_them():
        return await asyncio.gather(*(collect(engine, r) for r in requests))

    results = run(all_of_them())
    assert all(r.final[0].finish_reason == "length" for r in results)
    assert all(len(r.tokens[0]) == 8 for r in results)
    assert engine.stats().running == 0


@pytest.mark.parametrize("shared", [0, WINDOW + 8])
def test_prompts_prefilled_together_answer_as_alone(make_engine, shared):
    """One submission of prompts of different lengths, all new or all after a
    shared prefix past the sliding window (reused from the prefix cache):
    with a budget that lets them share passes, padded, each greedy and each
    seeded answer is its answer alone."""
    engines = [
        make_engine(prefill_step_size=256, prefix_cache_bytes=1 << 22) for _ in "ab"
    ]
    prefix = prompts([shared], seed=5)[0]
    own = prompts([40, 36, 33, 38, 31], seed=6)
    requests = lambda: [  # noqa: E731
        GenerationRequest(
            prefix + p,
            SamplingParams(max_tokens=24, temperature=t, seed=11),
        )
        for p in own
        for t in (0.0, 1.0)
    ]
    if shared:  # the prefix is cached, as a chat's system prompt would be
        for engine in engines:
            run(collect(engine, greedy([*prefix, 1], 1)))
    alone = [run(collect(engines[0], r)).tokens[0] for r in requests()]
    engine = engines[1]

    async def together():
        result = Result()
        async for event in engine.submit_many(requests()):
            result.add(event)
        return result

    result = run(together())
    assert [result.tokens[i] for i in range(len(alone))] == alone
