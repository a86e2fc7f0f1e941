"""One run of each system the engine is compared with, on an already loaded
model: the mlx-gen engine through its async API, mlx-lm's BatchGenerator and
mlx-lm's stream_generate. Every run returns the arrival times of its tokens
and checks that each request produced exactly what was asked for."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from polling import wait_until, wait_until_async
from timing import Arrivals

from mlx_gen.bench.engine_bench import random_prompts
from mlx_gen.engine.llm_engine import LLMEngine
from mlx_gen.engine.types import GenerationRequest, SamplingParams

# Prompt chunk of both engines (mlx-gen's default prefill_step_size).
PREFILL_STEP = 512
IDLE_TIMEOUT_S = 30.0
# Background requests of the TTFT-under-load runs: never done within the run.
BACKGROUND_TOKENS = 2048
# Steps the full background batch takes before the probe arrives.
SETTLE_STEPS = 3
SETTLE_TIMEOUT_S = 600.0  # for the background's prefill and those steps


def make_prompts(
    tokenizer: Any, count: int, length: int, rng: random.Random
) -> list[list[int]]:
    """Distinct random prompts of ordinary tokens: no prefix-cache hits."""
    avoid = set(tokenizer.all_special_ids) | set(tokenizer.eos_token_ids)
    return random_prompts(tokenizer.vocab_size, avoid, count, length, rng)


def _check_counts(arrivals: Arrivals, requests: int, max_tokens: int) -> None:
    counts = arrivals.counts()
    if len(counts) != requests or set(counts.values()) != {max_tokens}:
        raise AssertionError(f"expected {requests} x {max_tokens} tokens: {counts}")


async def _engine_requests(
    engine: LLMEngine,
    prompts: list[list[int]],
    max_tokens: int,
    arrivals: Arrivals,
    constraint: Any = None,
) -> None:
    async def one(index: int, prompt: list[int]) -> None:
        sampling = SamplingParams(max_tokens=max_tokens, temperature=1.0)
        request = GenerationRequest(prompt, sampling, constraint=constraint)
        async for event in engine.submit(request):
            arrivals.add(index, len(event.token_ids))
            if event.finish_reason is not None:
                assert event.finish_reason == "length", event.error
                assert event.usage.cached_tokens == 0, "a prefix-cache hit"

    await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))


def engine_batch(
    engine: LLMEngine,
    prompts: list[list[int]],
    max_tokens: int,
    constraint: Any = None,
) -> Arrivals:
    """All `prompts` submitted at once through the engine's async API, each
    following `constraint` (engine/constraints.py) if one is given."""
    arrivals = Arrivals()
    asyncio.run(_engine_requests(engine, prompts, max_tokens, arrivals, constraint))
    wait_idle(engine)
    _check_counts(arrivals, len(prompts), max_tokens)
    return arrivals


def _batch_generator(model: Any, batch: int, max_tokens: int) -> Any:
    from mlx_lm.generate import BatchGenerator
    from mlx_lm.sample_utils import make_sampler

    # Temperature 1 as the engine's requests; no stop tokens.
    return BatchGenerator(
        model,
        max_tokens=max_tokens,
        sampler=make_sampler(temp=1.0),
        completion_batch_size=batch,
        prefill_batch_size=min(batch, 8),
        prefill_step_size=PREFILL_STEP,
    )


def raw_batch(model: Any, prompts: list[list[int]], max_tokens: int) -> Arrivals:
    """The same requests through mlx-lm's BatchGenerator, batch = len(prompts)."""
    generator = _batch_generator(model, len(prompts), max_tokens)
    try:
        arrivals = Arrivals()
        waiting = set(generator.insert(prompts))
        steps = 4 * (max_tokens + len(prompts) * 8)  # a bound, never reached
        while waiting and steps:
            steps -= 1
            responses = generator.next()[1]
            now = time.perf_counter()
            for response in responses:
                arrivals.add(response.uid, 1, now)
                if response.finish_reason is not None:
                    waiting.discard(response.uid)
    finally:
        generator.close()
    _check_counts(arrivals, len(prompts), max_tokens)
    return arrivals


def stream_generate_one(
    model: Any, tokenizer: Any, prompt: list[int], max_tokens: int
) -> Arrivals:
    """mlx-lm's single-stream path; `tokenizer` must have no EOS ids, so that
    exactly `max_tokens` come out as from the engine."""
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    arrivals = Arrivals()
    sampler = make_sampler(temp=1.0)
    for _ in mlx_lm.stream_generate(
        model, tokenizer, prompt, max_tokens=max_tokens, sampler=sampler
    ):
        arrivals.add(0, 1)
    _check_counts(arrivals, 1, max_tokens)
    return arrivals


def wait_idle(engine: LLMEngine) -> None:
    def idle() -> bool:
        stats = engine.stats()
        return stats.running == 0 and stats.waiting == 0

    assert wait_until(idle, IDLE_TIMEOUT_S), (
        f"the engine is still busy: {engine.stats()}"
    )


async def _probe_under_load(
    engine: LLMEngine, background: list[list[int]], probe: list[int]
) -> float:
    counts = [0] * len(background)

    async def keep_decoding(index: int, prompt: list[int]) -> None:
        sampling = SamplingParams(max_tokens=BACKGROUND_TOKENS, temperature=1.0)
        async for event in engine.submit(GenerationRequest(prompt, sampling)):
            counts[index] += len(event.token_ids)
            assert event.finish_reason is None, "a background request ended"

    async def steps_of_full_batch(n: int) -> None:
        every_one = await wait_until_async(lambda: min(counts) > 0, SETTLE_TIMEOUT_S)
        assert every_one, f"not all background requests decode: {counts}"
        target = counts[0] + n
        assert await wait_until_async(lambda: counts[0] >= target, SETTLE_TIMEOUT_S)

    tasks = [asyncio.create_task(keep_decoding(i, p)) for i, p in enumerate(background)]
    try:
        await steps_of_full_batch(SETTLE_STEPS)
        sent = time.perf_counter()
        sampling = SamplingParams(max_tokens=1, temperature=1.0)
        async for _ in engine.submit(GenerationRequest(probe, sampling)):
            return time.perf_counter() - sent
        raise AssertionError("the probe request produced no event")
    finally:
        for task in tasks:
            task.cancel()  # aborts the request
        await asyncio.gather(*tasks, return_exceptions=True)


def engine_ttft_under_load(
    engine: LLMEngine, background: list[list[int]], probe: list[int]
) -> float:
    """TTFT of `probe` submitted while every `background` request decodes."""
    ttft = asyncio.run(_probe_under_load(engine, background, probe))
    wait_idle(engine)
    return ttft


def raw_ttft_under_load(
    model: Any, background: list[list[int]], probe: list[int]
) -> float:
    """The same through BatchGenerator: insert `probe` once the others decode."""
    generator = _batch_generator(model, len(background) + 1, BACKGROUND_TOKENS)
    try:
        started: set[int] = set(generator.insert(background))
        decoding: set[int] = set()
        while decoding != started:
            decoding |= {r.uid for r in generator.next()[1]}
        for _ in range(SETTLE_STEPS):
            generator.next()
        sent = time.perf_counter()
        (uid,) = generator.insert([probe])
        while True:
            if any(r.uid == uid for r in generator.next()[1]):
                return time.perf_counter() - sent
    finally:
        generator.close()
