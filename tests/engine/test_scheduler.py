"""Admission against the memory plan: what does not fit yet waits; what never
fits is refused at once, with the numbers."""

from __future__ import annotations

import asyncio
import random

import pytest

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.memory import detect_device, measure_model, plan_memory
from mlx_gen.engine.scheduler import Scheduler
from mlx_gen.engine.sequence import RequestState
from mlx_gen.engine.types import (
    ContextLengthExceeded,
    GenerationRequest,
    SamplingParams,
)

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


@pytest.fixture
def scheduler(tiny_model):
    model, tokenizer = tiny_model
    shape = measure_model(model, tokenizer)
    memory = plan_memory(shape, EngineConfig(prefill_step_size=64), detect_device())
    return Scheduler(memory, max_batch_size=32)


def _prefilling(scheduler: Scheduler, *prompts: tuple[int, int, bool]) -> list:
    """Begun requests (prompt length, tokens in their cache, scored)."""
    states = []
    for slot, (length, position, scored) in enumerate(prompts, start=1):
        params = SamplingParams(max_tokens=4, prompt_logprobs=0 if scored else None)
        state = RequestState(
            GenerationRequest(list(range(1, length + 1)), params), [], None, 0.0
        )
        state.slot, state.position, state.begun = slot, position, True
        scheduler.prefilling.append(state)
        states.append(state)
    return states


def _groups(scheduler: Scheduler) -> list[list[tuple[int, int, int]]]:
    """Each group's (slot, start, end), each group run (its requests moved)."""
    out = []
    for group in scheduler.prefill_chunks(lambda state: None):
        out.append([(s.slot, begin, end) for s, begin, end in group])
        for state, _, end in group:
            scheduler.prefilled_to(state, end)
    return out


def test_prompts_at_the_same_place_are_prefilled_in_one_pass(scheduler):
    # Prompt tokens left at 10 (the last one is the decode step's): 20, 17,
    # 12 (more than a quarter short of 20: apart), 30 (cut to 20, the rest
    # later); a scored prompt at 10 (alone), and one at 5.
    _prefilling(
        scheduler,
        (31, 10, False),
        (28, 10, False),
        (23, 10, False),
        (41, 10, False),
        (31, 10, True),
        (26, 5, False),
    )
    # The budget: 64 tokens an iteration, padding counted, overrun by less
    # than a group's row.
    assert _groups(scheduler) == [
        [(1, 10, 30), (2, 10, 27), (4, 10, 30)],
        [(3, 10, 22)],
    ]
    assert _groups(scheduler) == [[(4, 30, 40)], [(5, 10, 30)], [(6, 5, 25)]]
