"""SSE on the wire: framing, keep-alive, in-stream errors, disconnects."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from polling import wait_until

from .conftest import MODEL
from .helpers import script_ids, sse_lines

HI = [{"role": "user", "content": "Hi"}]
FINAL = "<|channel|>final<|message|>"


def chat_body(**fields) -> dict:
    return {"model": MODEL, "messages": HI, "stream": True, **fields}


def payloads(lines: list[str]) -> list[dict]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_frames_role_deltas_finish_usage_done(server, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, FINAL + "Hello there<|return|>")
    body = chat_body(max_tokens=32, stream_options={"include_usage": True})
    with httpx.stream("POST", server.url("/v1/chat/completions"), json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        raw = r.read().decode()
    assert raw.endswith("data: [DONE]\n\n")
    lines = [line for line in raw.split("\n") if line]
    assert all(line.startswith(("data: ", ":")) for line in lines)
    chunks = payloads(lines)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == "Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(script.ids)


def test_no_usage_chunk_unless_asked(server):
    with httpx.stream(
        "POST", server.url("/v1/chat/completions"), json=chat_body(max_tokens=3)
    ) as r:
        chunks = payloads(sse_lines(r))
    assert all(c["choices"] for c in chunks)
    assert all("usage" not in c for c in chunks)


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


def test_an_error_after_the_200_is_sent_in_stream(server, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, FINAL + "la")
    script.fail_after = 3
    with httpx.stream(
        "POST", server.url("/v1/chat/completions"), json=chat_body(max_tokens=50)
    ) as r:
        assert r.status_code == 200
        lines = sse_lines(r)
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][6:])["error"]
    assert error["type"] == "server_error" and error["code"] == "engine_error"
    assert set(error) == {"message", "type", "param", "code"}

    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    with pytest.raises(openai.APIError, match="Generation failed"):
        for _ in client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=50, stream=True
        ):
            pass


def test_a_client_that_leaves_has_its_stream_aborted(
    server, engine, script, tiny_tokenizer
):
    script.ids = script_ids(tiny_tokenizer, FINAL + "la")
    generated_before = engine.stats().generated_tokens_total
    body = chat_body(max_tokens=3000)
    with httpx.stream("POST", server.url("/v1/chat/completions"), json=body) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i == 4:
                break
    assert wait_until(lambda: engine.stats().running == 0, timeout=2.0)
    assert engine.stats().generated_tokens_total - generated_before < 3000


def test_a_non_streaming_client_that_leaves_is_aborted_too(
    server, engine, script, tiny_tokenizer
):
    script.ids = script_ids(tiny_tokenizer, FINAL + "la")
    body = {"model": MODEL, "messages": HI, "max_tokens": 3000}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url("/v1/chat/completions"), json=body, timeout=0.3)
    assert wait_until(lambda: engine.stats().running == 0, timeout=2.0)


def test_text_completion_stream(server, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "Hello there<|return|>")
    body = {"model": MODEL, "prompt": "Say", "max_tokens": 20, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", server.url("/v1/completions"), json=body) as r:
        lines = sse_lines(r)
    chunks = payloads(lines)
    assert lines[-1] == "data: [DONE]"
    assert all(c["object"] == "text_completion" for c in chunks)
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == "Hello there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == len(script.ids)
