"""Fault isolation: a request's exception is its own; a dead engine says so."""

from __future__ import annotations

import asyncio

import mlx.core as mx
import pytest

from mlx_gen.engine.types import EngineDead, GenerationRequest, SamplingParams

from .helpers import collect, greedy, run


def raising_after(prompt_len: int, tokens: int, exc: BaseException):
    """A logits processor (the test hook) that raises once `tokens` are out."""

    def processor(context: mx.array, logits: mx.array) -> mx.array:
        if context.size - prompt_len >= tokens:
            raise exc
        return logits

    return processor


def batch(engine, requests: list[GenerationRequest]):
    async def together():
        return await asyncio.gather(*(collect(engine, r) for r in requests))

    return run(together())


def test_an_exception_in_one_request_leaves_the_others_complete(make_engine):
    engine = make_engine()
    prompts = [[1, 2, 3], [4, 5, 6, 7], [8] * 40]
    alone = [run(collect(engine, greedy(p, 20))).tokens[0] for p in prompts]
    faulty = greedy([9, 9], 20)
    faulty.logits_processors.append(raising_after(2, 5, ValueError("boom")))

    results = batch(
        engine, [greedy(p, 20) for p in prompts[:2]] + [faulty, greedy(prompts[2], 20)]
    )

    failed = results[2].final[0]
    assert failed.finish_reason == "error" and "boom" in failed.error
    assert len(results[2].tokens[0]) == 5
    others = [results[0], results[1], results[3]]
    assert [r.final[0].finish_reason for r in others] == ["length"] * 3
    assert [r.tokens[0] for r in others] == alone
    assert engine.stats().alive and engine.stats().running == 0


def test_a_failed_batch_step_ends_the_batch_not_the_engine(make_engine):
    engine = make_engine()
    # An array still to be computed on the main thread's stream: the engine
    # thread cannot evaluate it, so the whole step fails, culprit unknown.
    poison = mx.zeros((1, 1024)) + 1.0
    bad = GenerationRequest(
        [1, 2],
        SamplingParams(max_tokens=20, temperature=0),
        logits_processors=[lambda _, logits: logits + poison],
    )
    results = batch(engine, [greedy([3, 4], 20), bad, greedy([5, 6, 7], 20)])
    assert [r.final[0].finish_reason for r in results] == ["error"] * 3
    assert "step failed" in results[0].final[0].error
    stats = engine.stats()
    assert stats.alive and (stats.running, stats.kv_tokens_used) == (0, 0)
    after = run(collect(engine, greedy([3, 4], 20)))
    assert after.final[0].finish_reason == "length"


class Fatal(BaseException):
    """Not an Exception: nothing in the engine may swallow it."""


def test_engine_thread_death_is_reported_by_stats_and_submit(make_engine):
    engine = make_engine()
    killer = greedy([1, 2], 20)
    killer.logits_processors.append(raising_after(2, 3, Fatal("the hook fired")))
    results = batch(engine, [greedy([5, 6], 50), killer])

    assert [r.final[0].finish_reason for r in results] == ["error", "error"]
    assert "the hook fired" in results[0].final[0].error
    stats = engine.stats()
    assert stats.alive is False and "Fatal" in stats.error

    async def late():
        engine.submit(greedy([1], 4))

    with pytest.raises(EngineDead) as dead:
        run(late())
    assert "the hook fired" in str(dead.value)


def test_an_unknown_inbox_command_is_an_error_not_a_stop(make_engine):
    engine = make_engine()

    async def main():
        stream = engine.submit(greedy([5, 6], 1000))
        await anext(stream)  # running
        engine._worker.inbox.put(("stop", 0.0))  # not a command: a caller's bug
        return [event async for event in stream][-1]

    last = run(main())
    assert last.finish_reason == "error" and "not an engine command" in last.error
    stats = engine.stats()
    assert not stats.alive and "not an engine command" in stats.error
