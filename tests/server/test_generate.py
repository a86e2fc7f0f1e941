"""A request's bounds against the served model, and the engine's refusals."""

from __future__ import annotations

import httpx

HI = [{"role": "user", "content": "Hi"}]
CHAT = {"model": "tiny", "messages": HI, "max_tokens": 1}


def test_bounds_on_messages_context_and_vocabulary(make_server):
    server = make_server(max_messages=3)
    url = server.url("/v1/chat/completions")
    too_many = httpx.post(url, json={**CHAT, "messages": HI * 4})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "messages"
    long = httpx.post(url, json={**CHAT, "max_tokens": 4096})
    error = long.json()["error"]
    assert long.status_code == 400 and error["code"] == "context_length_exceeded"
    assert "4096" in error["message"]
    bias = httpx.post(url, json={**CHAT, "logit_bias": {"99999": 5}})
    assert bias.status_code == 400 and bias.json()["error"]["param"] == "logit_bias"


def test_full_engine_queue_is_503_with_retry_after(one_slot_server):
    url = one_slot_server.url("/v1/chat/completions")
    long = {**CHAT, "max_tokens": 3000, "stream": True}
    with httpx.stream("POST", url, json=long) as running, \
            httpx.stream("POST", url, json=long) as waiting:  # fmt: skip
        assert running.status_code == waiting.status_code == 200
        full = httpx.post(url, json=CHAT)
    assert full.status_code == 503
    assert full.headers["retry-after"] == "1"
    assert full.json()["error"]["code"] == "server_overloaded"
