"""Batched prompts on /v1/completions: each choice as its prompt alone."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..conftest import MODEL
from ..helpers import sse_lines, sse_payloads

PROMPTS = ["The first prompt", "A second, longer prompt than the first", "3"]


def alone(client, prompt, **kw):
    return client.completions.create(model=MODEL, prompt=prompt, **kw)


@pytest.mark.parametrize(
    "sampling",
    [{"temperature": 0}, {"temperature": 1.0, "seed": 11, "n": 2}],
    ids=["greedy", "seeded"],
)
def test_each_choice_is_its_prompt_alone(client, sampling):
    n = sampling.get("n", 1)
    batch = client.completions.create(
        model=MODEL, prompt=PROMPTS, max_tokens=12, **sampling
    )
    singles = [alone(client, p, max_tokens=12, **sampling) for p in PROMPTS]
    assert [c.index for c in batch.choices] == list(range(len(PROMPTS) * n))
    for k, single in enumerate(singles):
        for i, choice in enumerate(single.choices):
            mine = batch.choices[k * n + i]
            assert (mine.text, mine.finish_reason) == (
                choice.text,
                choice.finish_reason,
            )
    usage = batch.usage
    assert usage.prompt_tokens == sum(s.usage.prompt_tokens for s in singles)
    assert usage.completion_tokens == sum(s.usage.completion_tokens for s in singles)


def test_token_id_batches_echo_and_score_each_prompt(client, tiny_tokenizer):
    ids = [tiny_tokenizer.encode(p) for p in PROMPTS]
    batch = client.completions.create(
        model=MODEL, prompt=ids, echo=True, logprobs=1, max_tokens=0
    )
    for prompt, text, choice in zip(ids, PROMPTS, batch.choices, strict=True):
        single = alone(client, prompt, echo=True, logprobs=1, max_tokens=0)
        assert choice.text == text and choice.finish_reason == "length"
        assert choice.logprobs == single.choices[0].logprobs
        assert len(choice.logprobs.tokens) == len(prompt)
    assert batch.usage.completion_tokens == 0
    assert batch.usage.prompt_tokens == sum(len(p) for p in ids)


def test_a_streamed_batch_numbers_its_chunks(server, client):
    body = {"model": MODEL, "prompt": PROMPTS, "max_tokens": 8, "temperature": 0,
            "n": 2, "echo": True, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", server.url("/v1/completions"), json=body) as r:
        chunks = sse_payloads(sse_lines(r))
    texts: dict[int, str] = {}
    finished = set()
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
        if choice["finish_reason"]:
            finished.add(choice["index"])
    whole = client.completions.create(
        **{k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    )
    assert finished == set(range(6))
    assert texts == {c.index: c.text for c in whole.choices}
    usage = chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )


def test_the_rate_limit_counts_every_prompt(make_server, tiny_tokenizer):
    prompts = ["one two three four five six"] * 3
    one = len(tiny_tokenizer.encode(prompts[0])) + 4
    server = make_server(rate_limit_tpm=2 * one)
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as too_large:
        client.completions.create(model=MODEL, prompt=prompts, max_tokens=4)
    assert str(3 * one) in too_large.value.message
    reply = client.completions.create(model=MODEL, prompt=prompts[:2], max_tokens=4)
    assert len(reply.choices) == 2


def test_a_batch_the_queue_can_never_hold_is_refused(make_server):
    server = make_server(max_queue=1, max_batch_size=2)
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model=MODEL, prompt=["a"] * 4, max_tokens=1)
    assert refused.value.param == "prompt" and "At most 3 prompts" in str(refused.value)
    reply = client.completions.create(model=MODEL, prompt=["a"] * 3, max_tokens=1)
    assert len(reply.choices) == 3
