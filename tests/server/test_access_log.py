"""One JSON line per request on the mlx_gen.access logger."""

from __future__ import annotations

import logging

import httpx

from .helpers import access_lines, script_ids


def test_one_line_per_request_with_tokens_and_timings(
    server, script, tiny_tokenizer, caplog
):
    script.ids = script_ids(
        tiny_tokenizer,
        "<|channel|>analysis<|message|>hmm<|end|><|start|>assistant"
        "<|channel|>final<|message|>ok<|return|>",
    )
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 40}  # fmt: skip
    with caplog.at_level(logging.INFO, logger="mlx_gen.access"):
        reply = httpx.post(
            server.url("/v1/chat/completions"),
            json=body,
            headers={"x-request-id": "trace-1"},
        )
        httpx.get(server.url("/nowhere"))
        chat, missing = access_lines(caplog, 2)
    usage = reply.json()["usage"]
    assert chat["request_id"] == "trace-1"
    assert chat["status"] == 200 and chat["model"] == "tiny"
    assert chat["key_id"] == "anonymous"
    assert chat["prompt_tokens"] == usage["prompt_tokens"]
    assert chat["completion_tokens"] == usage["completion_tokens"] == len(script.ids)
    assert (
        chat["reasoning_tokens"]
        == usage["completion_tokens_details"]["reasoning_tokens"]
    )
    assert chat["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert 0 < chat["ttft_ms"] <= chat["duration_ms"]
    assert missing["status"] == 404 and missing["path"] == "/nowhere"
    assert missing["ttft_ms"] is None
