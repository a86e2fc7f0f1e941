"""SSE framing: keep-alive comments while a long answer is generated."""

from __future__ import annotations

import httpx

from .conftest import MODEL
from .helpers import script_ids, sse_lines

HI = [{"role": "user", "content": "Hi"}]
FINAL = "<|channel|>final<|message|>"


def chat_body(**fields) -> dict:
    return {"model": MODEL, "messages": HI, "stream": True, **fields}


def test_keep_alive_comments_while_waiting(make_server, script, tiny_tokenizer):
    server = make_server(sse_keepalive_seconds=0.02)
    # A long forced answer: the stream lasts well over the keep-alive period.
    script.ids = script_ids(tiny_tokenizer, FINAL + "la")
    with httpx.stream(
        "POST", server.url("/v1/chat/completions"), json=chat_body(max_tokens=400)
    ) as r:
        lines = sse_lines(r)
    assert any(line.startswith(":") for line in lines)
    # sse-starlette pings from a task of its own, so one may land just after
    # the last event; comments are ignored by SSE clients, events are not.
    assert [line for line in lines if line.startswith("data:")][-1] == "data: [DONE]"
