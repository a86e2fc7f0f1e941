"""POST /v1/completions: text or token ids in, text out, no chat format."""

from __future__ import annotations

import openai
import pytest

from ..conftest import MODEL
from ..helpers import script_ids


def test_text_prompt(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "Hello there<|return|>")
    reply = client.completions.create(model=MODEL, prompt="Say hello", max_tokens=20)
    assert reply.object == "text_completion"
    choice = reply.choices[0]
    assert choice.text == "Hello there" and choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens == len(tiny_tokenizer.encode("Say hello"))
    assert reply.usage.completion_tokens == len(script.ids)


def test_token_id_prompt_echo_and_stop(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "Hello there<|return|>")
    prompt = tiny_tokenizer.encode("Say")
    reply = client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=20, echo=True, stop=["there"]
    )
    assert reply.choices[0].text == "SayHello "
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == len(prompt)


def test_length_and_logprobs(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "Hello there, all of you")
    reply = client.completions.create(
        model=MODEL, prompt="abc", max_tokens=4, logprobs=2, n=2
    )
    for choice in reply.choices:
        assert choice.finish_reason == "length"
        lp = choice.logprobs
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 4
        assert lp.tokens == ["H", "el", "lo", " th"]
        assert choice.text == "Hello th"
        assert lp.text_offset == [0, 1, 3, 5]
        assert all(lp_ == 0.0 for lp_ in lp.token_logprobs)  # forced: certain
        assert all(len(top) <= 2 for top in lp.top_logprobs)
    assert reply.usage.completion_tokens == 8


def test_refusals(client):
    with pytest.raises(openai.BadRequestError) as vocab:
        client.completions.create(model=MODEL, prompt=[5, 100_000], max_tokens=1)
    assert vocab.value.param == "prompt"
    with pytest.raises(openai.BadRequestError) as element:
        client.completions.create(model=MODEL, prompt=[[5], [6, 100_000]], max_tokens=1)
    assert element.value.param == "prompt[1]"
    with pytest.raises(openai.BadRequestError) as empty:
        client.completions.create(model=MODEL, prompt=["a", ""], max_tokens=1)
    assert "prompt[1] is empty" in empty.value.message
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="other", prompt="x")
