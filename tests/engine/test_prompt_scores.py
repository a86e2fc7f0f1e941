"""Prompt scores: made in the prefill, equal to mlx-lm's own log-softmax."""

from __future__ import annotations

import random

import mlx.core as mx
import pytest

from mlx_gen.engine import prompt_scores
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, greedy, run

# Longer than the tiny model's sliding window (32) and than many prefill
# chunks (the fixture's step is 16 tokens).
PROMPT = random.Random(19).choices(range(1, 1000), k=100)
TOP = 3


def direct_log_softmax(model, prompt: list[int]) -> mx.array:
    """mlx-lm's model over the whole prompt at once, no cache, no chunks."""
    logits = model(mx.array(prompt)[None])[0].astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def scoring(prompt: list[int], max_tokens: int = 0, top: int = TOP):
    sampling = SamplingParams(
        max_tokens=max_tokens, temperature=0.0, prompt_logprobs=top
    )
    return GenerationRequest(list(prompt), sampling)


def assert_equal_to_direct(scores, expected: mx.array, prompt: list[int]) -> None:
    assert [s.token_id for s in scores] == prompt[1:]
    rows = expected.tolist()
    for position, score in enumerate(scores):
        row = rows[position]
        chosen = row[prompt[position + 1]]
        assert score.logprob == pytest.approx(chosen, abs=1e-4)
        assert score.rank == 1 + sum(x > chosen for x in row)
        best = sorted(range(len(row)), key=lambda t: -row[t])[: len(score.top)]
        assert [t for t, _ in score.top] == best
        for t, logprob in score.top:
            assert logprob == pytest.approx(row[t], abs=1e-4)


def test_scores_equal_mlx_lm_with_and_without_a_prefix_hit(make_engine, tiny_model):
    engine = make_engine(prefix_cache_bytes=1 << 20)
    expected = direct_log_softmax(tiny_model[0], PROMPT)

    async def scenario():
        first = await collect(engine, scoring(PROMPT))
        again = await collect(engine, scoring(PROMPT))
        plain = await collect(engine, greedy(PROMPT, 1))
        return first, again, plain

    first, again, plain = run(scenario())
    for result in (first, again):
        (event,) = result.events  # scored, nothing generated: one event
        assert event.finish_reason == "length" and event.token_ids == []
        assert event.usage.completion_tokens == 0
        assert event.usage.cached_tokens == 0  # prefilled from its first token
        assert len(event.prompt_logprobs) == len(PROMPT) - 1
        assert_equal_to_direct(event.prompt_logprobs, expected, PROMPT)
    # The scored prompt was left in the prefix cache for the next request.
    assert plain.final[0].usage.cached_tokens == len(PROMPT) - 1


def test_a_scored_request_generates_as_an_unscored_one(make_engine, tiny_model):
    engine = make_engine()

    async def scenario():
        scored = await collect(engine, scoring(PROMPT[:40], max_tokens=5, top=0))
        plain = await collect(engine, greedy(PROMPT[:40], 5))
        return scored, plain

    scored, plain = run(scenario())
    assert scored.tokens == plain.tokens and len(scored.tokens[0]) == 5
    first, *rest = scored.events
    assert [s.token_id for s in first.prompt_logprobs] == PROMPT[1:40]
    assert all(s.top == [] for s in first.prompt_logprobs)
    assert all(e.prompt_logprobs is None for e in rest)
    assert all(e.prompt_logprobs is None for e in plain.events)
    expected = direct_log_softmax(tiny_model[0], PROMPT[:40])
    assert_equal_to_direct(first.prompt_logprobs, expected, PROMPT[:40])


def test_a_one_token_prompt_has_no_scores(make_engine):
    engine = make_engine()
    (event,) = run(collect(engine, scoring([7]))).events
    assert event.prompt_logprobs == [] and event.finish_reason == "length"


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_scoring_a_chunk_stays_inside_its_planned_memory(dtype):
    tokens, vocab = 256, 65536
    for top in (0, 1, 20):
        logits = mx.random.normal((tokens, vocab)).astype(dtype)
        mx.eval(logits)
        mx.clear_cache()
        mx.reset_peak_memory()
        before = mx.get_active_memory() - logits.nbytes  # as if not yet made
        scores = prompt_scores.score(logits, list(range(tokens)), top)
        mx.eval(scores.arrays())
        used = mx.get_peak_memory() - before
        assert used <= tokens * prompt_scores.logit_bytes_per_token(vocab)
        del logits, scores
