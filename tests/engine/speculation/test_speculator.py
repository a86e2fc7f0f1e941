"""Speculative decoding in the engine: the same outputs with it and without;
and the speculator's back-off and limits on their own.

Outputs are compared token for token between an engine that speculates and
one that does not, on the tiny model (sliding window 32), whose random
weights fall into repeating cycles at temperature 0: prompt lookup proposes
often and is often right, so many verification steps keep some proposals
and roll back the rest.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.speculation.speculator import Speculator
from mlx_gen.engine.types import GenerationRequest, SamplingParams, SpeculationError
from mlx_gen.models.synthetic.presets import ensure_model
from tests.engine.helpers import Result, collect, forcing, run
from tests.engine.speculation.helpers import sequence

SPECULATIVE = {"speculative": "ngram", "speculative_max_batch": 64}


def _prompts(count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [
        [rng.randrange(10, 1000) for _ in range(rng.randint(1, 60))]
        for _ in range(count)
    ]


def _requests(
    prompts: list[list[int]], seed: int, **sampling
) -> list[GenerationRequest]:
    rng = random.Random(seed)
    return [
        GenerationRequest(
            list(p), SamplingParams(max_tokens=rng.randint(1, 200), **sampling)
        )
        for p in prompts
    ]


async def _together(engine, requests: list[GenerationRequest]) -> list[Result]:
    return await asyncio.gather(*(collect(engine, r) for r in requests))


def _both(
    make_engine, requests_of, **config
) -> tuple[list[Result], list[Result], object]:
    """Run the requests concurrently on an engine without speculation, then
    on one with it; returns both results and the second engine's stats."""
    plain = run(_together(make_engine(**config), requests_of()))
    engine = make_engine(**SPECULATIVE, **config)
    fast = run(_together(engine, requests_of()))
    return plain, fast, engine.stats()


def test_greedy_outputs_identical_for_50_prompts_in_a_batch(make_engine):
    prompts = _prompts(50, seed=1)
    plain, fast, stats = _both(
        make_engine, lambda: _requests(prompts, seed=2, temperature=0.0)
    )
    assert [r.tokens for r in fast] == [r.tokens for r in plain]
    assert max(len(r.tokens[0]) for r in plain) > 2 * 32  # past the window
    spec = stats.speculation
    assert spec.accepted > 200 and spec.proposed > spec.accepted
    generated = sum(len(r.tokens[0]) for r in fast)
    assert stats.steps_total < generated / 1.2  # several tokens per step


def test_greedy_outputs_identical_one_stream_at_a_time(make_engine):
    plain_engine, fast_engine = make_engine(), make_engine(**SPECULATIVE)
    for prompt in _prompts(4, seed=3):
        sampling = SamplingParams(max_tokens=150, temperature=0.0)
        plain = run(collect(plain_engine, GenerationRequest(prompt, sampling)))
        fast = run(collect(fast_engine, GenerationRequest(prompt, sampling)))
        assert fast.tokens == plain.tokens
    assert fast_engine.stats().speculation.accepted > 50


def test_seeded_sampling_writes_the_same_tokens_on_and_off(make_engine):
    prompts = _prompts(20, seed=4)

    def requests() -> list[GenerationRequest]:
        made = _requests(prompts, seed=5, temperature=0.6)
        for i, request in enumerate(made):
            request.sampling.seed = 1000 + i
        return made

    plain, fast, stats = _both(make_engine, requests)
    assert [r.tokens for r in fast] == [r.tokens for r in plain]
    assert stats.speculation.steps > 0


def test_stops_limits_and_logprobs_behave_as_without(make_engine, tokenizer):
    prompt = _prompts(1, seed=6)[0]
    reference = run(
        collect(
            make_engine(),
            GenerationRequest(prompt, SamplingParams(max_tokens=120, temperature=0)),
        )
    ).tokens[0]
    stop_id = reference[70]
    stop_text = tokenizer.decode(reference[90:92])

    def requests() -> list[GenerationRequest]:
        cases = [
            dict(stop_token_ids=[stop_id]),
            dict(stop=[stop_text]),
            dict(max_tokens=37),
            dict(logprobs=True, top_logprobs=3),
        ]
        return [
            GenerationRequest(
                prompt,
                SamplingParams(**{"max_tokens": 120, "temperature": 0, **case}),
            )
            for case in cases
        ]

    plain, fast, stats = _both(make_engine, requests)
    assert stats.speculation.accepted > 0
    for p, f in zip(plain, fast, strict=True):
        assert f.tokens == p.tokens and f.text == p.text
        assert f.final[0].finish_reason == p.final[0].finish_reason
        assert replace(f.final[0].usage, accepted_tokens=0) == p.final[0].usage
    assert fast[0].final[0].finish_reason == "stop"
    assert fast[0].tokens[0][-1] == stop_id
    assert fast[2].final[0].usage.completion_tokens == 37
    fast_lps = [lp for e in fast[3].events for lp in e.logprobs or []]
    plain_lps = [lp for e in plain[3].events for lp in e.logprobs or []]
    assert len(fast_lps) == 120
    for f, p in zip(fast_lps, plain_lps, strict=True):
        assert f.token_id == p.token_id
        assert f.logprob == pytest.approx(p.logprob, abs=1e-4)
        assert [t for t, _ in f.top] == [t for t, _ in p.top]


def test_rows_with_logits_processors_ride_along_unspeculated(make_engine):
    prompts = _prompts(6, seed=7)
    forced = [5, 6, 7, 8, 9] * 6

    def requests() -> list[GenerationRequest]:
        made = _requests(prompts, seed=8, temperature=0.0)
        made[0].sampling.max_tokens = 40
        made[0].logits_processors = [forcing(len(prompts[0]), forced)]
        return made

    plain, fast, stats = _both(make_engine, requests)
    assert [r.tokens for r in fast] == [r.tokens for r in plain]
    assert fast[0].tokens[0][:30] == forced
    assert stats.speculation.accepted > 0


def test_a_request_may_opt_out(make_engine):
    engine = make_engine(**SPECULATIVE)
    request = GenerationRequest(
        _prompts(1, seed=9)[0], SamplingParams(max_tokens=100, temperature=0)
    )
    request.sampling.speculative = False
    run(collect(engine, request))
    assert engine.stats().speculation.proposed == 0


def test_a_batch_larger_than_the_limit_does_not_speculate(make_engine):
    engine = make_engine(speculative="ngram", speculative_max_batch=3)
    prompt = _prompts(1, seed=10)[0]
    sampling = SamplingParams(max_tokens=80, temperature=0.0, n=4)
    result = run(collect(engine, GenerationRequest(prompt, sampling)))
    assert all(len(tokens) == 80 for tokens in result.tokens.values())
    assert engine.stats().speculation.steps == 0


def test_a_self_draft_keeps_every_proposal_and_the_output(make_engine, tiny_model_path):
    """The draft is the target: greedy proposals are the target's own tokens."""
    prompts = _prompts(12, seed=11)
    draft = {"speculative": f"draft:{tiny_model_path}", "speculative_max_batch": 64}
    plain_engine = make_engine()
    plain = run(_together(plain_engine, _requests(prompts, 12, temperature=0.0)))
    engine = make_engine(**draft)
    # The draft's weights are planned for: the model's twice.
    assert engine.plan.weights_bytes == 2 * plain_engine.plan.weights_bytes
    fast = run(_together(engine, _requests(prompts, 12, temperature=0.0)))
    assert [r.tokens for r in fast] == [r.tokens for r in plain]
    spec = engine.stats().speculation
    assert spec.proposed > 100 and spec.accepted == spec.proposed


def test_a_draft_with_another_tokenizer_is_refused(make_engine, synthetic_cache):
    other = ensure_model("tiny", cache_dir=synthetic_cache, seed=1)
    with pytest.raises(SpeculationError, match="tokenizer differs"):
        make_engine(speculative=f"draft:{other}")
    with pytest.raises(SpeculationError, match="not a model directory"):
        make_engine(speculative=f"draft:{other / 'nowhere'}")


def test_an_abort_ends_a_speculating_row_and_its_neighbours_go_on(make_engine):
    plain_engine, engine = make_engine(), make_engine(**SPECULATIVE)
    neighbour = _prompts(1, seed=13)[0]
    want = run(collect(plain_engine, GenerationRequest(neighbour, _greedy(120))))

    async def scenario():
        other = asyncio.create_task(
            collect(engine, GenerationRequest(neighbour, _greedy(120)))
        )
        request = GenerationRequest(_prompts(1, seed=14)[0], _greedy(100_000))
        seen = []
        async for event in engine.submit(request):
            seen.append(event)
            if len(seen) == 40:
                engine.abort(request.request_id)
        return seen, await other

    seen, other = run(scenario())
    assert seen[-1].finish_reason == "abort" and seen[-1].error is None
    assert seen[-1].usage.completion_tokens == sum(len(e.token_ids) for e in seen)
    assert other.tokens == want.tokens
    assert engine.stats().speculation.accepted > 0
    assert engine.stats().running == 0


def _greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0)


# The back-off and the limits, with a proposer that is always wrong.


class _Wrong:
    """Proposes a token the model never writes."""

    weights_bytes = 0

    def propose(self, seq: Sequence, k: int) -> list[int]:
        return [-5] * k


def test_a_row_whose_proposals_fail_rests_longer_each_time():
    speculator = Speculator(_Wrong(), k=4, max_batch=8, cooldown=10)
    seq = sequence([1, 2, 3], max_tokens=1000)
    proposed = []
    for _ in range(120):
        drafts = speculator.propose([seq])
        proposed.append(len(drafts[0]))
        speculator.record([seq], drafts, [0])
        seq.output.append(0)
    # Its first proposal is 4 tokens, then 1 after each rejection.
    assert proposed[:2] == [4, 1]
    rests = "".join("x" if n else "." for n in proposed).strip(".").split("x")
    assert [len(r) for r in rests if r] == [10, 20, 40]
    assert speculator.totals.accepted == 0


def test_proposals_never_reach_past_max_tokens():
    speculator = Speculator(_Wrong(), k=4, max_batch=8)
    seq = sequence([1, 2, 3], max_tokens=3)
    seq.output = [0]
    assert speculator.propose([seq]) == [[-5]]
    seq.output.append(0)
    assert speculator.propose([seq]) == [[]]
