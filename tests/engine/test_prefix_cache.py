"""Prefix reuse across requests: exact for sliding windows, LRU within bytes."""

from __future__ import annotations

import asyncio
import random

from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import MIN_REUSE, PrefixCache
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, greedy, run

WINDOW = 32


def chat(tokenizer, *turns: str) -> list[int]:
    text = "".join(f"<|start|>user<|message|>{t}<|end|>" for t in turns)
    return tokenizer.encode(text + "<|start|>assistant", add_special_tokens=False)


def test_a_second_chat_turn_reuses_the_first_and_answers_as_cold(
    make_engine, tokenizer
):
    warm = make_engine(prefix_cache_bytes=1 << 20)
    cold = make_engine()
    first = chat(
        tokenizer,
        "Tell me about the weather in Paris, the river by the town hall,"
        " the bridges, the markets and the old streets of the left bank.",
    )
    assert len(first) > 2 * WINDOW  # the sliding-window caches have wrapped
    answer = run(collect(warm, greedy(first, 12)))
    assert answer.final[0].usage.cached_tokens == 0

    second = first + answer.tokens[0] + chat(tokenizer, "And tomorrow?")
    again = run(collect(warm, greedy(second, 20)))
    assert again.final[0].usage.cached_tokens == len(first) - 1
    stats = warm.stats()
    assert stats.prefix_cache_hits == 1 and stats.prefix_cache_queries == 2
    assert stats.cached_tokens_total == len(first) - 1 and stats.prefix_cache_bytes > 0
    assert again.tokens == run(collect(cold, greedy(second, 20))).tokens
    # The stored snapshot was not written to by the request that reused it.
    assert run(collect(warm, greedy(second, 20))).tokens == again.tokens


def test_a_wrapped_window_is_reused_only_for_an_exact_prefix(make_engine):
    warm = make_engine(prefix_cache_bytes=1 << 20)
    cold = make_engine()
    long = [(7 * i) % 900 + 1 for i in range(80)]
    run(collect(warm, greedy(long, 4)))
    diverging = [*long[:60], 5, 6, 7]
    out = run(collect(warm, greedy(diverging, 12)))
    assert out.final[0].usage.cached_tokens == 0
    assert out.tokens == run(collect(cold, greedy(diverging, 12))).tokens


def test_a_short_entry_is_trimmed_to_a_common_prefix(make_engine):
    warm = make_engine(prefix_cache_bytes=1 << 20)
    cold = make_engine()
    short = list(range(1, 29))
    assert len(short) < WINDOW  # nothing wrapped: every layer can be trimmed
    run(collect(warm, greedy(short, 4)))
    sharing = [*short[:20], 500, 501, 502]
    out = run(collect(warm, greedy(sharing, 12)))
    assert out.final[0].usage.cached_tokens == 20
    assert out.tokens == run(collect(cold, greedy(sharing, 12))).tokens
    # A few tokens in common, as random prompts may have, are not a hit.
    chance = [*short[: MIN_REUSE - 1], 600, 601]
    assert run(collect(warm, greedy(chance, 2))).final[0].usage.cached_tokens == 0


def test_least_recently_used_entries_go_first(tiny_model):
    slots = iter(range(1, 100))

    def runner_with(*prompts: list[int]) -> tuple[ModelRunner, list[int]]:
        """A runner holding each prompt's cache, and their slots."""
        runner = ModelRunner(tiny_model[0], len(tiny_model[1]))
        prefilled = [next(slots) for _ in prompts]
        for slot, tokens in zip(prefilled, prompts, strict=True):
            runner.prefill([slot], tokens, [len(tokens)])
        return runner, prefilled

    a, b, c = ([k] * 40 for k in (1, 2, 3))
    runner, (slot,) = runner_with(a)
    probe = PrefixCache(1 << 30, runner)
    probe.insert(a, slot)
    size = probe.nbytes
    runner, (slot_a, slot_b, slot_c) = runner_with(a, b, c)
    cache = PrefixCache(2 * size + size // 2, runner)
    cache.insert(a, slot_a)
    cache.insert(b, slot_b)
    assert cache.lookup([*a, 9], next(slots)) == 40  # a is now the most recent
    cache.insert(c, slot_c)  # evicts b
    assert len(cache) == 2 and cache.nbytes == 2 * size
    assert cache.lookup([*b, 9], next(slots)) == 0
    assert cache.lookup([*a, 9], next(slots)) == 40
    assert cache.lookup([*c, 9], next(slots)) == 40
    assert (cache.hits, cache.queries) == (3, 4)


def test_a_burst_computes_its_common_prefix_once(make_engine):
    """Requests submitted together that share a prefix longer than any
    cached one wait for the first of them to compute it, then reuse it; each
    answers as it would alone, greedy and seeded."""
    warm = make_engine(prefix_cache_bytes=1 << 20)
    cold = make_engine()
    rng = random.Random(7)
    system = [rng.randrange(1, 1000) for _ in range(3 * WINDOW)]
    prompts = [system + [rng.randrange(1, 1000) for _ in range(5)] for _ in range(6)]
    requests = [greedy(p, 8) for p in prompts[:3]]
    requests += [
        GenerationRequest(p, SamplingParams(max_tokens=8, temperature=1.0, seed=i))
        for i, p in enumerate(prompts[3:])
    ]

    async def burst():
        return await asyncio.gather(*(collect(warm, r) for r in requests))

    results = run(burst())
    cached = sorted(r.final[0].usage.cached_tokens for r in results)
    # The first computes the system prompt; all the others reuse it whole.
    assert cached == [0] + [len(system)] * (len(requests) - 1)
    assert warm.stats().cached_tokens_total == len(system) * (len(requests) - 1)
    for request, result in zip(requests, results, strict=True):
        assert result.tokens == run(collect(cold, request)).tokens


def test_prompts_sent_one_after_another_keep_their_common_prefix(make_engine):
    """Whole prompts past the sliding window serve only themselves; the
    second prompt sharing a prefix with a cached one keeps a snapshot of that
    prefix, which the third reuses."""
    warm = make_engine(prefix_cache_bytes=1 << 20)
    cold = make_engine()
    rng = random.Random(8)
    system = [rng.randrange(1, 1000) for _ in range(3 * WINDOW)]
    prompts = [system + [rng.randrange(1, 1000) for _ in range(5)] for _ in range(3)]
    results = [run(collect(warm, greedy(p, 6))) for p in prompts]
    cached = [r.final[0].usage.cached_tokens for r in results]
    assert cached == [0, 0, len(system)]
    assert results[2].tokens == run(collect(cold, greedy(prompts[2], 6))).tokens
