"""`mlx-gen bench engine`: prefill and decode speed, TTFT and peak memory of
the mlx-gen engine at chosen prompt lengths and batch sizes.

Each point submits `batch` requests at once through the engine's async API,
every one with its own random prompt (no prefix-cache hits) and no stop
token, so each generates exactly `max_tokens`. With `raw`, the same points
run through mlx-lm's BatchGenerator on the same loaded model, after the
engine has stopped: the ratio of the two is what the service keeps of the
raw speed. Definitions:

- TTFT: submit to the first token of a request, as the caller sees it.
- prefill tok/s: all prompt tokens of the point / time until every request
  has its first token.
- decode tok/s: every token after each request's first / the time from the
  earliest first token to the last token. Prefills of later requests that
  interleave with decoding count against it, as they do in a service.
- decode per stream: the median over requests of (tokens - 1) / (last token
  - first token), the speed one caller sees once its answer has started.
- output tok/s: all generated tokens / the whole point.
- peak memory: mx.get_peak_memory over the point, reset before it
  (weights and caches included: the whole process's MLX memory).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx

from mlx_gen.engine.types import GenerationRequest, SamplingParams

# Raw loop guard: a point never takes more steps than this many per token.
_STEP_GUARD = 4


@dataclass(frozen=True)
class Point:
    prompt_tokens: int
    batch: int
    max_tokens: int


@dataclass
class Measurement:
    """What one point measured; times in seconds, memory in bytes."""

    completion_tokens: int
    seconds: float
    ttft_p50: float
    ttft_max: float
    prefill_tps: float
    decode_tps: float | None  # None when max_tokens < 2: nothing to decode
    decode_tps_per_stream: float | None
    output_tps: float
    peak_memory_bytes: int
    cached_tokens: int = 0
    # Engine only: tokens each stream gets per decode forward pass (1 without
    # speculation) and, when it speculates, the share of proposals kept.
    tokens_per_step: float | None = None
    acceptance: float | None = None


@dataclass
class Stream:
    first: float
    last: float
    tokens: int


@dataclass
class TokenClock:
    """When each request of one point got its first and last tokens."""

    start: float
    streams: dict[Any, Stream] = field(default_factory=dict)

    def tokens(self, key: Any, count: int) -> None:
        if count <= 0:
            return
        now = time.perf_counter()
        stream = self.streams.setdefault(key, Stream(now, now, 0))
        stream.last = now
        stream.tokens += count

    def measure(self, point: Point, cached: int = 0) -> Measurement:
        streams = list(self.streams.values())
        end = max(s.last for s in streams)
        ttfts = sorted(s.first - self.start for s in streams)
        decoding = min(s.first for s in streams)
        decoded = sum(s.tokens - 1 for s in streams)
        rates = [
            (s.tokens - 1) / (s.last - s.first) for s in streams if s.last > s.first
        ]
        total = sum(s.tokens for s in streams)
        return Measurement(
            completion_tokens=total,
            seconds=end - self.start,
            ttft_p50=statistics.median(ttfts),
            ttft_max=ttfts[-1],
            prefill_tps=point.prompt_tokens * point.batch / ttfts[-1],
            decode_tps=decoded / (end - decoding) if end > decoding else None,
            decode_tps_per_stream=statistics.median(rates) if rates else None,
            output_tps=total / (end - self.start),
            peak_memory_bytes=0,  # set by the caller, who owns the window
            cached_tokens=cached,
        )


def random_prompts(
    vocab_size: int, avoid: set[int], count: int, length: int, rng: random.Random
) -> list[list[int]]:
    """Distinct random prompts of ordinary tokens: no special ids, no shared prefix."""
    allowed = [i for i in range(vocab_size) if i not in avoid]
    return [[rng.choice(allowed) for _ in range(length)] for _ in range(count)]


def _peak_window(run: Callable[[], Measurement]) -> Measurement:
    mx.synchronize()
    mx.reset_peak_memory()
    result = run()
    mx.synchronize()
    result.peak_memory_bytes = mx.get_peak_memory()
    return result


async def _engine_point(
    engine: Any, point: Point, prompts: list[list[int]], temperature: float
) -> Any:
    clock = TokenClock(time.perf_counter())
    cached = 0

    async def one(index: int, prompt: list[int]) -> None:
        nonlocal cached
        # No stop ids: every request writes max_tokens.
        sampling = SamplingParams(max_tokens=point.max_tokens, temperature=temperature)
        request = GenerationRequest(prompt, sampling)
        async for event in engine.submit(request):
            clock.tokens(index, len(event.token_ids))
            if event.finish_reason is not None:
                if event.finish_reason != "length":
                    raise RuntimeError(
                        f"a benchmark request ended with {event.finish_reason}: "
                        f"{event.error or 'no error given'}"
                    )
                if event.usage is not None:
                    cached += event.usage.cached_tokens

    await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    return clock, cached


def run_engine_point(
    engine: Any, point: Point, prompts: list[list[int]], temperature: float = 1.0
) -> Measurement:
    def run() -> Measurement:
        before = engine.stats()
        clock, cached = asyncio.run(_engine_point(engine, point, prompts, temperature))
        measured = clock.measure(point, cached)
        after = engine.stats()
        row_steps = after.decode_row_steps_total - before.decode_row_steps_total
        if row_steps:
            generated = after.generated_tokens_total - before.generated_tokens_total
            measured.tokens_per_step = generated / row_steps
        if after.speculation is not None:
            proposed = after.speculation.proposed - before.speculation.proposed
            kept = after.speculation.accepted - before.speculation.accepted
            measured.acceptance = kept / proposed if proposed else None
        return measured

    return _peak_window(run)


def run_raw_point(
    model: Any,
    point: Point,
    prompts: list[list[int]],
    prefill_step: int,
    temperature: float = 1.0,
) -> Measurement:
    """The same point through mlx-lm's BatchGenerator, no stops."""
    from mlx_lm.generate import BatchGenerator
    from mlx_lm.sample_utils import make_sampler

    def run() -> Measurement:
        generator = BatchGenerator(
            model,
            max_tokens=point.max_tokens,
            sampler=make_sampler(temp=temperature),
            completion_batch_size=point.batch,
            prefill_batch_size=min(point.batch, 8),
            prefill_step_size=prefill_step,
        )
        try:
            clock = TokenClock(time.perf_counter())
            uids = set(generator.insert(prompts))
            steps = _STEP_GUARD * (point.prompt_tokens + point.max_tokens) * point.batch
            while uids and steps > 0:
                steps -= 1
                for response in generator.next()[1]:
                    clock.tokens(response.uid, 1)
                    if response.finish_reason is not None:
                        uids.discard(response.uid)
            if uids:
                raise RuntimeError("mlx-lm's BatchGenerator did not finish the point")
        finally:
            generator.close()
        return clock.measure(point)

    return _peak_window(run)


@dataclass
class PointResult:
    point: Point
    engine: Measurement
    raw: Measurement | None = None
    # The engine without speculation, when the measured one speculates.
    plain: Measurement | None = None


def run_points(
    loaded: Any,
    engine: Any,
    points: list[Point],
    raw: bool,
    prefill_step: int,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _: None,
    temperature: float = 1.0,
    plain: Any = None,
) -> list[PointResult]:
    """Every point through the engine (and right after, through `plain`, the
    same engine without speculation, if given), then (with `raw`) through
    mlx-lm; the engines are shut down in between so that mlx-lm never shares
    the device with them."""
    rng = random.Random(seed)
    tokenizer = loaded.tokenizer
    vocab = int(loaded.config.get("vocab_size") or len(tokenizer))
    avoid = set(getattr(tokenizer, "all_special_ids", None) or [])
    avoid |= set(tokenizer.eos_token_ids)
    prompts = {
        p: random_prompts(vocab, avoid, p.batch, p.prompt_tokens, rng) for p in points
    }
    warm = Point(min(16, points[0].prompt_tokens), 1, 2)
    warm_prompts = random_prompts(vocab, avoid, 1, warm.prompt_tokens, rng)
    progress("engine warm-up")
    for warmed in (engine, plain) if plain is not None else (engine,):
        run_engine_point(warmed, warm, warm_prompts)  # first-use allocations
    results = []
    for point in points:
        progress(f"engine {_label(point)}")
        measured = run_engine_point(engine, point, prompts[point], temperature)
        result = PointResult(point, measured)
        if plain is not None:
            progress(f"engine without speculation {_label(point)}")
            result.plain = run_engine_point(plain, point, prompts[point], temperature)
        results.append(result)
    engine.shutdown()
    if plain is not None:
        plain.shutdown()
    if raw:
        progress("mlx-lm warm-up")
        run_raw_point(loaded.model, warm, warm_prompts, prefill_step)
        for result in results:
            point = result.point
            progress(f"mlx-lm {_label(point)}")
            result.raw = run_raw_point(
                loaded.model, point, prompts[point], prefill_step, temperature
            )
    return results


def _label(point: Point) -> str:
    return f"prompt {point.prompt_tokens}, batch {point.batch}, {point.max_tokens} out"
