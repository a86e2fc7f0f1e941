"""A text completion answer on the wire: echo, deltas, finish, usage."""

from __future__ import annotations

import httpx

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.engine.types import GenerationEvent, TokenLogprob, Usage
from mlx_gen.server.answers.completions import CompletionAnswer

from ..conftest import MODEL
from ..helpers import script_ids, sse_lines, sse_payloads


def test_text_completion_stream(server, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "Hello there<|return|>")
    body = {"model": MODEL, "prompt": "Say", "max_tokens": 20, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", server.url("/v1/completions"), json=body) as r:
        lines = sse_lines(r)
    chunks = sse_payloads(lines)
    assert lines[-1] == "data: [DONE]"
    assert all(c["object"] == "text_completion" for c in chunks)
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == "Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == len(script.ids)


def test_a_whole_answer_builds_no_chunks_and_equals_the_streamed_one(tiny_tokenizer):
    ids = tiny_tokenizer.encode("Hello there")
    events = [
        GenerationEvent(
            request_id="r",
            index=0,
            token_ids=[token],
            text=tiny_tokenizer.decode([token]),
            logprobs=[TokenLogprob(token, -0.5, [(token, -0.5)])],
            finish_reason="stop" if i == len(ids) - 1 else None,
            usage=Usage(3, len(ids)) if i == len(ids) - 1 else None,
        )
        for i, token in enumerate(ids)
    ]
    decoder = decoder_for(tiny_tokenizer)
    say = [tiny_tokenizer.encode("Say")]
    streamed = CompletionAnswer(
        "cmpl-1", MODEL, 1, decoder, 1, say, ["Say"], stream=True
    )
    whole = CompletionAnswer("cmpl-1", MODEL, 1, decoder, 1, say, ["Say"])
    whole.created = streamed.created
    assert all(streamed.feed(e) for e in events)
    assert [whole.feed(e) for e in events] == [[]] * len(events)
    assert whole.response() == streamed.response()
    choice = whole.response()["choices"][0]
    assert choice["text"] == "SayHello there"
    assert choice["logprobs"]["tokens"] == [tiny_tokenizer.decode([t]) for t in ids]
