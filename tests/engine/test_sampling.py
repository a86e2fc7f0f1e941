"""Per-request sampling inside one batch: seeds, filters, penalties, logprobs, n."""

from __future__ import annotations

import asyncio
import math
import random

import mlx.core as mx
import pytest

from mlx_gen.engine.sampling import BatchSampling, make_key, make_processors, sample
from mlx_gen.engine.types import GenerationRequest, SamplingParams

from .helpers import collect, greedy, run


def prompt(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(1000) for _ in range(n)]


def sampled(p: list[int], **kw) -> GenerationRequest:
    return GenerationRequest(list(p), SamplingParams(**{"max_tokens": 24, **kw}))


def test_seeded_sampling_is_reproducible_in_different_batches(make_engine):
    engine = make_engine()
    params = dict(temperature=0.9, top_p=0.95, top_k=200, min_p=0.01, seed=1234)
    target = lambda: sampled(prompt(30, 1), **params)  # noqa: E731

    alone = run(collect(engine, target())).tokens[0]

    async def batch(companions: list[GenerationRequest], position: int):
        requests = [*companions[:position], target(), *companions[position:]]
        results = await asyncio.gather(*(collect(engine, r) for r in requests))
        return results[position].tokens[0]

    first = [
        greedy(prompt(50, 2), 30),
        sampled(prompt(10, 3), temperature=1.3, seed=7, logprobs=True, top_logprobs=4),
    ]
    second = [
        sampled(prompt(70, 4), temperature=0.5, presence_penalty=1.0),
        sampled(prompt(5, 5), temperature=1.0, logit_bias={3: 2.0}),
        greedy(prompt(40, 6), 10),
    ]
    assert run(batch(first, 0)) == alone
    assert run(batch(second, 2)) == alone
    other_seed = run(collect(engine, sampled(prompt(30, 1), **{**params, "seed": 99})))
    assert other_seed.tokens[0] != alone


def test_unseeded_sampling_differs_between_runs(make_engine):
    engine = make_engine()
    a = run(collect(engine, sampled(prompt(20, 1), temperature=1.0)))
    b = run(collect(engine, sampled(prompt(20, 1), temperature=1.0)))
    assert a.tokens[0] != b.tokens[0]


def test_filters_that_keep_one_token_are_greedy(make_engine):
    engine = make_engine()
    p = prompt(25, 8)
    expected = run(collect(engine, greedy(p, 24))).tokens[0]
    for filters in ({"top_k": 1}, {"top_p": 1e-6}, {"min_p": 1.0}):
        out = run(collect(engine, sampled(p, temperature=2.0, seed=5, **filters)))
        assert out.tokens[0] == expected, filters


def test_logit_bias_and_presence_penalty(make_engine):
    engine = make_engine()
    p = prompt(12, 9)
    biased = run(collect(engine, sampled(p, temperature=1.0, logit_bias={77: 1e4})))
    assert biased.tokens[0] == [77] * 24
    # A penalty this large forbids every token already generated.
    fresh = run(collect(engine, greedy(p, 40, presence_penalty=1e4)))
    assert len(set(fresh.tokens[0])) == 40
    repeated = run(collect(engine, greedy(p, 40)))
    assert len(set(repeated.tokens[0])) < 40  # the penalty made the difference


def test_logprobs_and_top_logprobs(make_engine):
    engine = make_engine()
    out = run(
        collect(engine, greedy(prompt(15, 10), 10, logprobs=True, top_logprobs=3))
    )
    for event in out.events:
        if not event.token_ids:
            continue
        (lp,) = event.logprobs
        assert lp.token_id == event.token_ids[0]
        assert next(t for t, _ in lp.top) == lp.token_id  # greedy takes the best
        values = [v for _, v in lp.top]
        assert len(values) == 3 and values == sorted(values, reverse=True)
        assert math.isclose(lp.logprob, values[0], abs_tol=1e-5)
        assert lp.logprob <= 0 and sum(math.exp(v) for v in values) <= 1 + 1e-5
    plain = run(collect(engine, greedy(prompt(15, 10), 10)))
    assert all(e.logprobs is None for e in plain.events)
    assert plain.tokens == out.tokens


def test_n_choices_share_one_prefill(make_engine):
    engine = make_engine()
    p = prompt(40, 11)
    out = run(collect(engine, sampled(p, n=3, temperature=1.0, seed=3)))
    assert sorted(out.final) == [0, 1, 2]
    assert len({tuple(t) for t in out.tokens.values()}) == 3
    assert all(e.usage.prompt_tokens == 40 for e in out.final.values())
    assert engine.stats().prompt_tokens_total == 40  # prefilled once
    again = run(collect(engine, sampled(p, n=3, temperature=1.0, seed=3)))
    assert again.tokens == out.tokens
    twins = run(collect(engine, greedy(p, 12, n=2)))
    assert twins.tokens[0] == twins.tokens[1]


# Filters and processors on hand-made logits: exact sets and values.

PROBS = [0.05, 0.5, 0.15, 0.3]  # token 1 is the most likely, then 3, 2, 0


def kept_by(**params) -> set[int]:
    """The tokens a filter keeps: drawn from 400 rows with different keys."""
    rows = 400
    logits = mx.log(mx.array([PROBS] * rows))
    batch = BatchSampling.build([SamplingParams(**params)] * rows, len(PROBS))
    keys = mx.stack([make_key(seed) for seed in range(rows)])
    return set(sample(logits, keys, batch).tokens.tolist())


def test_no_filter_draws_every_token():
    assert kept_by(temperature=1.0) == {0, 1, 2, 3}


def test_top_k_keeps_the_k_most_likely():
    assert kept_by(temperature=1.0, top_k=2) == {1, 3}
    assert kept_by(temperature=1.0, top_k=3) == {1, 2, 3}


def test_top_p_keeps_the_smallest_set_reaching_p():
    assert kept_by(temperature=1.0, top_p=0.75) == {1, 3}  # 0.5 + 0.3
    assert kept_by(temperature=1.0, top_p=0.9) == {1, 2, 3}  # 0.5 + 0.3 + 0.15
    assert kept_by(temperature=1.0, top_p=0.5) == {1}


def test_min_p_keeps_tokens_within_a_fraction_of_the_best():
    assert kept_by(temperature=1.0, min_p=0.2) == {1, 2, 3}  # p >= 0.1
    assert kept_by(temperature=1.0, min_p=0.5) == {1, 3}  # p >= 0.25


def test_each_row_filters_with_its_own_parameters():
    params = [
        SamplingParams(temperature=1.0, top_k=2),
        SamplingParams(temperature=1.0, min_p=0.5),
        SamplingParams(temperature=1.0),
        SamplingParams(temperature=1.0, top_p=0.5),
    ]
    rows = [p for p in params for _ in range(100)]
    batch = BatchSampling.build(rows, len(PROBS))
    logits = mx.log(mx.array([PROBS] * len(rows)))
    keys = mx.stack([make_key(seed) for seed in range(len(rows))])
    tokens = sample(logits, keys, batch).tokens.tolist()
    kept = [set(tokens[i : i + 100]) for i in range(0, len(rows), 100)]
    assert kept == [{1, 3}, {1, 3}, {0, 1, 2, 3}, {1}]


def process(params: SamplingParams, prompt_len: int, tokens: list[int]) -> list:
    logits = mx.array([[2.0, -1.0, 0.5, 3.0, 1.0]])
    for processor in make_processors(params, prompt_len):
        logits = processor(mx.array(tokens), logits)
    return logits[0].tolist()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    # Over the whole context, prompt included; each token once however often.
    out = process(SamplingParams(repetition_penalty=2.0), 2, [0, 1, 1, 4])
    assert out == pytest.approx([1.0, -2.0, 0.5, 3.0, 0.5])


def test_frequency_and_presence_penalties_count_generated_tokens_only():
    # Prompt [3, 0]; generated [0, 2, 2]: token 2 twice, token 0 once.
    params = SamplingParams(frequency_penalty=0.5, presence_penalty=1.0)
    out = process(params, 2, [3, 0, 0, 2, 2])
    assert out == pytest.approx([2.0 - 0.5 - 1.0, -1.0, 0.5 - 1.0 - 1.0, 3.0, 1.0])
    only_prompt = process(params, 2, [3, 0])
    assert only_prompt == pytest.approx([2.0, -1.0, 0.5, 3.0, 1.0])


def test_logit_bias_adds_to_the_named_tokens():
    out = process(SamplingParams(logit_bias={1: 5.0, 4: -2.5}), 0, [0])
    assert out == pytest.approx([2.0, 4.0, 0.5, 3.0, -1.5])
