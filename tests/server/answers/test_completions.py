"""A text completion answer on the wire: echo, deltas, finish, usage."""

from __future__ import annotations

import httpx

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
