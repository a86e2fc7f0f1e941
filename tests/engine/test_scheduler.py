"""Admission against the memory plan: what does not fit yet waits; what never
fits is refused at once, with the numbers."""

from __future__ import annotations

import asyncio
import random

import pytest

from mlx_gen.engine.types import ContextLengthExceeded

from .helpers import collect, greedy, run

BUDGET = 4 << 20  # bytes: the tiny model (1 MiB) and about 3,000 KV tokens


def test_requests_beyond_the_budget_wait_then_complete(make_engine):
    engine = make_engine(memory_budget_bytes=BUDGET, max_batch_size=4)
    plan = engine.plan
    assert 1024 <= plan.max_context < plan.kv_token_budget
    rng = random.Random(0)
    # Each request can grow to the longest context: only one fits at a time.
    prompts = [
        [rng.randrange(1000) for _ in range(plan.max_context - 8)] for _ in range(3)
    ]
    alone = run(collect(engine, greedy(prompts[0], 8))).tokens[0]
    seen = []

    async def scenario():
        tasks = [asyncio.create_task(collect(engine, greedy(p, 8))) for p in prompts]
        while not all(t.done() for t in tasks):
            seen.append(engine.stats())
            await asyncio.sleep(0.0005)
        return [t.result() for t in tasks]

    results = run(scenario())
    assert [r.final[0].finish_reason for r in results] == ["length"] * 3
    assert results[0].tokens[0] == alone
    assert max(s.running for s in seen) == 1
    assert any(s.running == 1 and s.waiting >= 1 for s in seen)
    assert all(s.kv_tokens_used <= s.kv_tokens_budget for s in seen)
    waits = sorted(r.final[0].timings.queue_wait for r in results)
    assert waits[-1] > waits[0]
    stats = engine.stats()
    assert (stats.running, stats.waiting, stats.kv_tokens_used) == (0, 0, 0)


def test_short_requests_share_the_budget(make_engine):
    engine = make_engine(memory_budget_bytes=BUDGET, max_batch_size=4)
    seen = []

    async def scenario():
        tasks = [
            asyncio.create_task(collect(engine, greedy([i + 1] * 20, 30)))
            for i in range(4)
        ]
        while not all(t.done() for t in tasks):
            seen.append(engine.stats().running)
            await asyncio.sleep(0.0005)

    run(scenario())
    assert max(seen) == 4


def test_a_request_that_can_never_fit_is_refused_at_once(make_engine):
    engine = make_engine(memory_budget_bytes=BUDGET, max_batch_size=4)
    limit = engine.plan.max_context

    async def scenario():
        with pytest.raises(ContextLengthExceeded) as one:
            engine.submit(greedy([1] * (limit - 7), 8))
        message = str(one.value)
        assert f"{limit + 1} tokens" in message and f"at most {limit}" in message
        assert (one.value.prompt_tokens, one.value.max_tokens) == (limit - 7, 8)
        # Two choices of the longest context cannot both be held.
        with pytest.raises(ContextLengthExceeded) as two:
            engine.submit(greedy([1] * (limit - 8), 8, n=2))
        assert two.value.limit < limit

    run(scenario())
    assert engine.stats().prompt_tokens_total == 0
