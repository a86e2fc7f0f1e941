"""POST /tokenize and /detokenize: the exact prompt a chat request becomes."""

from __future__ import annotations

import httpx

from ..conftest import MODEL

HI = [{"role": "user", "content": "Hi <|end|>"}]
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look up"}}


def test_chat_rendering_matches_the_chat_format(server, harmony):
    answer = httpx.post(
        server.url("/tokenize"),
        json={
            "model": MODEL,
            "messages": HI,
            "tools": [TOOL],
            "reasoning_effort": "low",
        },
    ).json()
    expected = harmony.render(HI, [TOOL], "low")
    assert (
        answer["prompt"].split("Current date:")[0]
        == expected.text.split("Current date:")[0]
    )
    assert answer["count"] == len(answer["tokens"])
    assert answer["max_model_len"] == 4096
    assert "lookup" in answer["prompt"] and "Reasoning: low" in answer["prompt"]
    assert answer["prompt"].endswith("<|start|>assistant")
    bare = httpx.post(
        server.url("/tokenize"),
        json={"model": MODEL, "messages": HI, "add_generation_prompt": False},
    ).json()
    assert not bare["prompt"].endswith("<|start|>assistant")


def test_prompt_round_trip(server, tiny_tokenizer):
    tokens = httpx.post(
        server.url("/tokenize"), json={"model": MODEL, "prompt": "hello world"}
    ).json()
    assert tokens["tokens"] == tiny_tokenizer.encode("hello world")
    assert tokens["prompt"] == "hello world"
    text = httpx.post(
        server.url("/detokenize"), json={"model": MODEL, "tokens": tokens["tokens"]}
    ).json()
    assert text == {"prompt": "hello world"}


def test_bad_requests(server):
    url = server.url("/tokenize")
    assert httpx.post(url, json={"model": MODEL}).status_code == 400
    assert httpx.post(url, json={"model": "x", "prompt": "a"}).status_code == 404
    out_of_vocab = httpx.post(
        server.url("/detokenize"), json={"model": MODEL, "tokens": [1, 10**6]}
    )
    assert out_of_vocab.status_code == 400
    assert out_of_vocab.json()["error"]["param"] == "tokens"
