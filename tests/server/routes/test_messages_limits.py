"""/v1/messages under the same rate limits, queue, metrics and slot
discipline as chat."""

from __future__ import annotations

import logging

import anthropic
import httpx
import pytest
from polling import wait_until

from ..conftest import MODEL
from ..helpers import access_lines, script_ids
from ..test_metrics import samples, value
from .test_messages import prompt_of

ROUTE = "/v1/messages"
HI = [{"role": "user", "content": "Hi"}]


def test_rate_limited_like_chat(make_server):
    server = make_server(rate_limit_rpm=1)
    with anthropic.Anthropic(
        base_url=server.url(""), api_key="x", max_retries=0
    ) as claude:
        claude.messages.create(model=MODEL, messages=HI, max_tokens=2)
        with pytest.raises(anthropic.RateLimitError) as limited:
            claude.messages.create(model=MODEL, messages=HI, max_tokens=2)
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert limited.value.response.headers["retry-after"]


def test_a_full_queue_is_overloaded(one_slot_server):
    url = one_slot_server.url(ROUTE)
    long = {"model": MODEL, "messages": HI, "max_tokens": 3000, "stream": True}
    with httpx.stream("POST", url, json=long) as running, \
            httpx.stream("POST", url, json=long) as waiting:  # fmt: skip
        assert running.status_code == waiting.status_code == 200
        full = httpx.post(url, json=long | {"stream": False})
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert full.json()["error"]["type"] == "overloaded_error"


def test_metrics_are_labelled_by_the_route(make_server):
    server = make_server()
    with anthropic.Anthropic(
        base_url=server.url(""), api_key="x", max_retries=0
    ) as claude:
        claude.messages.create(model=MODEL, messages=HI, max_tokens=2)
        claude.messages.count_tokens(model=MODEL, messages=HI)

    def counted() -> dict | None:
        # A request is counted after its last byte went out: soon, not at once.
        found = samples(server)
        counts = [
            value(found, "mlx_gen_requests_total", endpoint=route, status="200")
            for route in (ROUTE, ROUTE + "/count_tokens")
        ]
        return found if counts == [1, 1] else None

    assert wait_until(counted, 5) is not None, samples(server)


def test_a_repeated_prompt_reports_its_cache_reads(claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>ok<|return|>")
    # Words no other test sends: only the shared system prompt can be cached.
    messages = [{"role": "user", "content": "cached " * 64 + "messages quokka"}]
    first = claude.messages.create(model=MODEL, messages=messages, max_tokens=8)
    again = claude.messages.create(model=MODEL, messages=messages, max_tokens=8)
    assert prompt_of(again.usage) == prompt_of(first.usage)
    # The user's words were new the first time, cached the second.
    assert first.usage.input_tokens > 64
    assert (
        again.usage.cache_read_input_tokens >= first.usage.cache_read_input_tokens + 64
    )
    assert again.usage.input_tokens >= 1


def test_the_access_log_has_its_line(server, script, tiny_tokenizer, caplog):
    script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>ok<|return|>")
    body = {"model": MODEL, "messages": HI, "max_tokens": 8}
    with caplog.at_level(logging.INFO, logger="mlx_gen.access"):
        reply = httpx.post(server.url(ROUTE), json=body).json()
        (line,) = access_lines(caplog, 1)
    assert line["path"] == ROUTE and line["status"] == 200 and line["model"] == MODEL
    usage = reply["usage"]
    assert (
        line["prompt_tokens"]
        == usage["input_tokens"] + usage["cache_read_input_tokens"]
    )
    assert line["cached_tokens"] == usage["cache_read_input_tokens"]
    assert line["completion_tokens"] == usage["output_tokens"] == len(script.ids)
