"""The async facade: submit's synchronous refusals, abort, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import gc

import pytest
from polling import wait_until, wait_until_async

from mlx_gen.engine import load_engine
from mlx_gen.engine.types import (
    ContextLengthExceeded,
    EngineDead,
    GenerationRequest,
    InvalidRequest,
    QueueFull,
    SamplingParams,
)
from mlx_gen.settings import Settings

from .helpers import Result, collect, greedy, run

LONG = 100_000  # max_tokens of requests that only end when aborted


def assert_idle(engine) -> None:
    stats = engine.stats()
    assert (stats.running, stats.waiting, stats.kv_tokens_used) == (0, 0, 0)


def idle(engine):
    """A check: the engine runs nothing and queues nothing."""
    return lambda: not (engine.stats().running or engine.stats().waiting)


def generated(engine, tokens: int):
    """A check: the engine has generated at least `tokens` tokens in all."""
    return lambda: engine.stats().generated_tokens_total >= tokens


async def first_events(stream, count: int) -> list:
    events = []
    async for event in stream:
        events.append(event)
        if len(events) == count:
            break
    return events


def test_abort_frees_the_slot_within_a_step(make_engine):
    engine = make_engine()

    async def scenario():
        other = asyncio.create_task(collect(engine, greedy([4, 5, 6], 30)))
        request = greedy([1, 2, 3], LONG)
        stream = engine.submit(request)
        seen = []
        async for event in stream:
            seen.append(event)
            if len(seen) == 3:
                # The neighbour was submitted first, but by its task: it may
                # join the batch a step or two after this one.
                assert await wait_until_async(lambda: engine.stats().running == 2, 10)
                assert engine.stats().kv_tokens_used > 0
                steps = engine.stats().steps_total
                engine.abort(request.request_id)
        assert engine.stats().steps_total - steps <= 2
        return seen, await other

    seen, other = run(scenario())
    final = seen[-1]
    assert final.finish_reason == "abort" and final.error is None
    assert final.usage.completion_tokens == len(seen) - 1
    assert other.final[0].finish_reason == "length"  # the neighbour went on
    assert_idle(engine)


def test_aborting_one_choice_frees_its_row_and_the_others_go_on(make_engine):
    engine = make_engine()

    async def scenario():
        request = greedy([1, 2, 3], 40, n=2)
        result, seen = Result(), {}
        async for event in engine.submit(request):
            result.add(event)
            if len(result.tokens[0]) == 3 and not seen:
                seen = {"kv": engine.stats().kv_tokens_used, "running": 2}
                assert engine.stats().running == 2
                engine.abort(request.request_id, 0)
            if event.index == 0 and event.finish_reason is not None:
                # Stats are never older than the events delivered.
                assert engine.stats().running == 1
                assert engine.stats().kv_tokens_used < seen["kv"]
        return result

    result = run(scenario())
    aborted, other = result.final[0], result.final[1]
    assert aborted.finish_reason == "abort" and aborted.error is None
    assert 3 <= aborted.usage.completion_tokens <= 5  # within a step or two
    assert (other.finish_reason, len(result.tokens[1])) == ("length", 40)
    assert_idle(engine)


def test_a_choice_aborted_while_waiting_never_takes_a_row(make_engine):
    engine = make_engine(max_batch_size=2)

    async def scenario():
        busy = greedy([1, 2], LONG)
        running = asyncio.create_task(collect(engine, busy))
        assert await wait_until_async(lambda: engine.stats().running, 10)
        request = greedy([3, 4], 6, n=2)  # two rows: it waits behind `busy`
        waiting = asyncio.create_task(collect(engine, request))
        assert await wait_until_async(lambda: engine.stats().waiting, 10)
        engine.abort(request.request_id, 1)
        engine.abort(busy.request_id)  # after: the choice is aborted while waiting
        await running
        return await waiting

    result = run(scenario())
    assert result.final[1].finish_reason == "abort"
    assert result.tokens[1] == []
    assert (result.final[0].finish_reason, len(result.tokens[0])) == ("length", 6)
    assert_idle(engine)


def test_a_consumer_that_stops_reading_aborts_its_request(make_engine):
    engine = make_engine()

    async def close_it():
        stream = engine.submit(greedy([1, 2], LONG))
        await first_events(stream, 2)
        await stream.aclose()

    async def cancel_it():
        task = asyncio.create_task(collect(engine, greedy([1, 2], LONG)))
        assert await wait_until_async(generated(engine, 5), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def drop_it():
        stream = engine.submit(greedy([1, 2], LONG))
        await first_events(stream, 2)
        del stream
        gc.collect()

    for scenario in (close_it, cancel_it, drop_it):
        run(scenario())
        assert wait_until(idle(engine), 10)
        assert_idle(engine)


def test_submit_refuses_before_returning(make_engine):
    engine = make_engine(max_queue=2, max_batch_size=1)
    limit = engine.plan.max_context

    async def scenario():
        with pytest.raises(ContextLengthExceeded) as too_long:
            engine.submit(greedy([1] * 10, limit - 9))
        assert too_long.value.limit == limit
        assert str(limit) in str(too_long.value) and str(limit + 1) in str(
            too_long.value
        )
        with pytest.raises(InvalidRequest):
            engine.submit(greedy([], 4))
        with pytest.raises(InvalidRequest):
            engine.submit(greedy([1, 10**6], 4))
        with pytest.raises(InvalidRequest):
            engine.submit(GenerationRequest([1], SamplingParams(n=2)))
        # One request fills the batch; two wait; the queue is then full.
        busy = greedy([1, 2], LONG)
        running = asyncio.create_task(collect(engine, busy))
        assert await wait_until_async(lambda: engine.stats().running, 10)
        waiting = [
            asyncio.create_task(collect(engine, greedy([1], 4))) for _ in range(2)
        ]
        assert await wait_until_async(lambda: engine.stats().waiting == 2, 10)
        with pytest.raises(QueueFull) as full:
            engine.submit(greedy([1], 4))
        assert full.value.waiting == 2
        with pytest.raises(InvalidRequest):
            engine.submit(GenerationRequest([1], request_id=busy.request_id))
        engine.abort(busy.request_id)
        assert (await running).final[0].finish_reason == "abort"
        for task in waiting:
            assert (await task).final[0].finish_reason == "length"

    run(scenario())
    assert_idle(engine)


def test_a_queue_of_zero_still_fills_the_batch(make_engine):
    engine = make_engine(max_queue=0, max_batch_size=2)

    async def scenario():
        first, second = greedy([1, 2], LONG), greedy([3, 4], LONG)
        both = [asyncio.create_task(collect(engine, r)) for r in (first, second)]
        assert await wait_until_async(lambda: engine.stats().running == 2, 10)
        with pytest.raises(QueueFull):
            engine.submit(greedy([1], 4))
        for request in (first, second):
            engine.abort(request.request_id)
        for task in both:
            assert (await task).final[0].finish_reason == "abort"

    run(scenario())
    assert_idle(engine)


def test_shutdown_drains_then_refuses(make_engine):
    engine = make_engine()

    async def scenario():
        task = asyncio.create_task(collect(engine, greedy([1, 2, 3], 40)))
        assert await wait_until_async(lambda: engine.stats().running, 10)
        await asyncio.to_thread(engine.shutdown, 30.0)
        return await task

    out = run(scenario())
    assert out.final[0].finish_reason == "length"
    stats = engine.stats()
    assert (stats.alive, stats.error) == (False, None)

    async def late():
        engine.submit(greedy([1], 4))

    with pytest.raises(EngineDead):
        run(late())


def test_shutdown_without_drain_aborts(make_engine):
    engine = make_engine()

    async def scenario():
        task = asyncio.create_task(collect(engine, greedy([1, 2, 3], LONG)))
        assert await wait_until_async(generated(engine, 3), 10)
        await asyncio.to_thread(engine.shutdown, 0.0)
        return await task

    assert run(scenario()).final[0].finish_reason == "abort"


def test_load_engine_from_a_directory_and_settings(tiny_model_path):
    settings = Settings(
        memory_budget_gb=0.5,
        memory_headroom_gb=0,
        prefix_cache_gb=0.01,
        max_batch_size=2,
    )
    with load_engine(tiny_model_path, settings) as engine:
        assert engine.plan.budget_bytes == 500_000_000  # 0.5 GB, decimal
        out = run(collect(engine, greedy([1, 2, 3], 5)))
        assert len(out.tokens[0]) == 5 or out.final[0].finish_reason == "stop"
    assert engine.stats().alive is False


def test_a_request_whose_event_loop_closed_is_aborted(make_engine):
    engine = make_engine()
    kept = []

    async def leave_it_running():
        stream = engine.submit(greedy([1, 2], LONG))
        kept.append(stream)  # still referenced: only the closed loop can tell
        await first_events(stream, 2)

    run(leave_it_running())  # closes the loop with the request still running
    assert wait_until(idle(engine), 10)
    assert_idle(engine)
    assert engine.stats().alive  # an undeliverable event is not a fault
    assert engine.stats().generated_tokens_total < 1000


def test_requests_submitted_together_share_one_stream(make_engine):
    engine = make_engine()
    prompts = [[1, 2, 3], [4, 5], [6]]
    seeded = [
        GenerationRequest(p, SamplingParams(max_tokens=6, seed=7, n=2)) for p in prompts
    ]

    async def scenario():
        together = Result()
        async for event in engine.submit_many(seeded):
            together.add(event)
        alone = [
            await collect(engine, GenerationRequest(p, SamplingParams(6, seed=7, n=2)))
            for p in prompts
        ]
        return together, alone

    together, alone = run(scenario())
    # Request k's choice i is index 2k + i, with what it makes alone.
    assert sorted(together.final) == list(range(6))
    for k, result in enumerate(alone):
        for i in range(2):
            assert together.tokens[2 * k + i] == result.tokens[i]
    assert_idle(engine)


def test_requests_submitted_together_are_queued_all_or_none(make_engine):
    engine = make_engine(max_queue=1, max_batch_size=1)

    async def scenario():
        with pytest.raises(InvalidRequest):  # more than the queue and batch hold
            engine.submit_many([greedy([1], 4) for _ in range(3)])
        busy = greedy([1, 2], LONG)
        running = asyncio.create_task(collect(engine, busy))
        assert await wait_until_async(lambda: engine.stats().running, 10)
        with pytest.raises(QueueFull):
            engine.submit_many([greedy([1], 4), greedy([2], 4)])
        # Neither was queued: the queue still has room for one.
        stream = engine.submit_many([greedy([3], 4)])
        engine.abort(busy.request_id)
        assert (await running).final[0].finish_reason == "abort"
        assert [e.finish_reason async for e in stream][-1] == "length"

    run(scenario())
    assert_idle(engine)


def test_a_decode_step_is_counted_once_per_token_it_gave(make_engine):
    engine = make_engine()
    before = engine.stats().steps_total
    result = run(collect(engine, greedy([1, 2, 3], 8)))
    assert wait_until(idle(engine), 10)
    # One request alone: one step per token, none for a call that read nothing.
    assert engine.stats().steps_total - before == len(result.tokens[0]) > 0
