"""Prompt logprobs on /v1/completions, against mlx-lm's own log-softmax.

The server runs the tiny model with 16-token prefill chunks and a prefix
cache; the reference loads the same model with `mlx_lm.load` and runs the
whole prompt at once. The prompts are longer than a chunk and than the model's
sliding window (32 tokens).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import mlx.core as mx
import openai
import pytest

from mlx_gen.engine.detokenizer import decoder_for

from ..conftest import MODEL
from ..helpers import live, settings_for, sse_lines, sse_payloads

TOL = 1e-4


@pytest.fixture(scope="module")
def scoring_server(tiny_model_path, served) -> Iterator[Any]:
    """The tiny model served with 16-token prefill chunks and a prefix cache."""
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import load_engine
    from mlx_gen.server.app import create_app

    config = EngineConfig(
        max_batch_size=8, prefill_step_size=16, prefix_cache_bytes=4 << 20
    )
    engine = load_engine(tiny_model_path, config)
    try:
        app = create_app(settings_for(), replace(served, engine=engine))
        with live(app) as running:
            yield running
    finally:
        engine.shutdown()


@pytest.fixture
def sdk(scoring_server) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=scoring_server.url("/v1"), api_key="none", max_retries=0
    )


def prompt_ids(seed: int, length: int) -> list[int]:
    return random.Random(seed).choices(range(1, 1000), k=length)


def reference(tiny_model, ids: list[int]) -> list[list[float]]:
    """mlx-lm's log-softmax over the whole prompt at once: row p scores p+1."""
    logits = tiny_model[0](mx.array(ids)[None])[0].astype(mx.float32)
    return (logits - mx.logsumexp(logits, axis=-1, keepdims=True)).tolist()


def best(row: list[float], k: int) -> list[int]:
    return sorted(range(len(row)), key=lambda t: -row[t])[:k]


def assert_legacy_scores(logprobs, rows, ids, text, k: int) -> None:
    """The legacy shape of a prompt's tokens equals the reference."""
    assert logprobs.tokens[: len(ids)] == [text(t) for t in ids]
    assert logprobs.token_logprobs[0] is None and logprobs.top_logprobs[0] is None
    for p in range(1, len(ids)):
        row = rows[p - 1]
        assert logprobs.token_logprobs[p] == pytest.approx(row[ids[p]], abs=TOL)
        expected: dict[str, float] = {}  # of tokens written alike, the likeliest
        for t in best(row, k):
            expected.setdefault(text(t), row[t])
        assert logprobs.top_logprobs[p] == pytest.approx(expected, abs=TOL)
    lengths = [len(token) for token in logprobs.tokens]
    assert logprobs.text_offset == [sum(lengths[:i]) for i in range(len(lengths))]


def test_echo_logprobs_equal_mlx_lm_with_and_without_a_prefix_hit(
    sdk, tiny_model, tiny_tokenizer
):
    ids = prompt_ids(1, 100)
    rows = reference(tiny_model, ids)
    text = decoder_for(tiny_tokenizer).token_text
    replies = [
        sdk.completions.create(
            model=MODEL, prompt=ids, echo=True, logprobs=3, max_tokens=0
        )
        for _ in range(2)  # the second finds the first's prompt in the prefix cache
    ]
    for reply in replies:
        (choice,) = reply.choices
        assert choice.finish_reason == "length"
        assert choice.text == tiny_tokenizer.decode(ids)
        assert len(choice.logprobs.tokens) == len(ids)
        assert_legacy_scores(choice.logprobs, rows, ids, text, 3)
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (100, 0)
    # A plain request after them does use the prefix cache.
    plain = sdk.completions.create(model=MODEL, prompt=ids, max_tokens=1)
    assert plain.usage.prompt_tokens_details.cached_tokens == len(ids) - 1


def test_echo_logprobs_then_the_generated_tokens(sdk, tiny_model, tiny_tokenizer):
    ids = prompt_ids(2, 60)
    text = decoder_for(tiny_tokenizer).token_text
    reply = sdk.completions.create(
        model=MODEL, prompt=ids, echo=True, logprobs=2, max_tokens=1, temperature=0
    )
    (choice,) = reply.choices
    generated = tiny_tokenizer.encode(choice.text[len(tiny_tokenizer.decode(ids)) :])
    rows = reference(tiny_model, [*ids, *generated])
    lp = choice.logprobs
    assert len(lp.tokens) == len(ids) + 1 == len(lp.token_logprobs)
    assert_legacy_scores(lp, rows, ids, text, 2)
    # The last prompt token's prediction is the generated token's distribution.
    last = rows[len(ids) - 1]
    assert lp.tokens[-1] == text(best(last, 1)[0])
    assert lp.token_logprobs[-1] == pytest.approx(max(last), abs=TOL)
    assert reply.usage.completion_tokens == 1


def test_vllm_prompt_logprobs(sdk, tiny_model, tiny_tokenizer):
    prompt = tiny_tokenizer.decode(prompt_ids(3, 50))
    ids = tiny_tokenizer.encode(prompt)  # as the server tokenizes it
    assert len(ids) > 32
    rows = reference(tiny_model, ids)
    text = decoder_for(tiny_tokenizer).token_text
    reply = sdk.completions.create(
        model=MODEL, prompt=prompt, max_tokens=2, extra_body={"prompt_logprobs": 2}
    )
    (choice,) = reply.choices
    assert choice.logprobs is None
    scores = choice.model_extra["prompt_logprobs"]
    assert len(scores) == len(ids) and scores[0] is None
    for p in range(1, len(ids)):
        row, token = rows[p - 1], ids[p]
        expected = {token, *best(row, 2)}
        assert {int(t) for t in scores[p]} == expected
        for t, entry in scores[p].items():
            t = int(t)
            assert entry["logprob"] == pytest.approx(row[t], abs=TOL)
            assert entry["rank"] == 1 + sum(x > row[t] for x in row)
            assert entry["decoded_token"] == text(t)


def test_an_lm_eval_harness_request(scoring_server, tiny_model):
    """What lm-evaluation-harness's `local-completions` sends for loglikelihood
    (tokenized, batched), and how it reads the answer."""
    contexts = [prompt_ids(4, 40), prompt_ids(5, 7)]
    continuations = [prompt_ids(6, 3), prompt_ids(7, 1)]
    inputs = [c + x for c, x in zip(contexts, continuations, strict=True)]
    payload = {
        "model": MODEL,
        "prompt": inputs,
        "temperature": 0,
        "max_tokens": 1,
        "logprobs": 1,
        "seed": 1234,
        "echo": True,
    }
    reply = httpx.post(scoring_server.url("/v1/completions"), json=payload, timeout=60)
    assert reply.status_code == 200
    choices = sorted(reply.json()["choices"], key=lambda c: c["index"])
    assert [c["index"] for c in choices] == [0, 1]
    for choice, ids, context in zip(choices, inputs, contexts, strict=True):
        ctxlen = len(context)
        token_logprobs = choice["logprobs"]["token_logprobs"][ctxlen:-1]
        top_logprobs = choice["logprobs"]["top_logprobs"][ctxlen:-1]
        rows = reference(tiny_model, ids)
        expected = [rows[p - 1][ids[p]] for p in range(ctxlen, len(ids))]
        assert sum(token_logprobs) == pytest.approx(sum(expected), abs=TOL * len(ids))
        greedy = all(
            tok == max(top.values())
            for tok, top in zip(token_logprobs, top_logprobs, strict=True)
        )
        assert greedy == all(
            rows[p - 1][ids[p]] == max(rows[p - 1]) for p in range(ctxlen, len(ids))
        )
    # Without a tokenizer of its own (tokenized_requests=False) it sends text.
    text_payload = payload | {"prompt": "The capital of France is Paris"}
    reply = httpx.post(scoring_server.url("/v1/completions"), json=text_payload)
    assert reply.status_code == 200
    (choice,) = reply.json()["choices"]
    assert choice["logprobs"]["token_logprobs"][0] is None
    assert all(isinstance(x, float) for x in choice["logprobs"]["token_logprobs"][1:])


def test_streamed_echo_logprobs_equal_the_whole_answer(scoring_server, sdk):
    ids = prompt_ids(8, 40)
    body = {"model": MODEL, "prompt": ids, "echo": True, "logprobs": 2,
            "max_tokens": 3, "temperature": 0, "n": 2}  # fmt: skip
    with httpx.stream(
        "POST", scoring_server.url("/v1/completions"), json=body | {"stream": True}
    ) as r:
        chunks = sse_payloads(sse_lines(r))
    streamed: dict[int, dict[str, list]] = {}
    for chunk in chunks:
        (choice,) = chunk["choices"]
        for key, values in (choice["logprobs"] or {}).items():
            streamed.setdefault(choice["index"], {}).setdefault(key, []).extend(values)
    whole = httpx.post(scoring_server.url("/v1/completions"), json=body).json()
    for choice in whole["choices"]:
        assert len(choice["logprobs"]["tokens"]) == len(ids) + 3
        assert streamed[choice["index"]] == choice["logprobs"]
