"""Token buckets per key: admission, 429s with their headers, refunds."""

from __future__ import annotations

import httpx
import openai
import pytest

from mlx_gen.server.errors import APIError
from mlx_gen.server.rate_limits import RateLimiter, _duration

from .helpers import script_ids


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_refill_continuously():
    clock = Clock()
    limiter = RateLimiter(rpm=3, tpm=None, clock=clock)
    remaining = [
        limiter.admit("k", 10).headers["x-ratelimit-remaining-requests"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(APIError) as info:
        limiter.admit("k", 10)
    error = info.value
    assert (error.status, error.code, error.type) == (
        429,
        "rate_limit_exceeded",
        "requests",
    )
    assert error.headers["Retry-After"] == "20"  # one request every 20 s
    assert error.headers["x-ratelimit-limit-requests"] == "3"
    assert "x-ratelimit-limit-tokens" not in error.headers
    clock.now += 20
    limiter.admit("k", 10)


def test_keys_have_their_own_buckets():
    limiter = RateLimiter(rpm=1, tpm=None, clock=Clock())
    limiter.admit("a", 1)
    limiter.admit("b", 1)
    with pytest.raises(APIError):
        limiter.admit("a", 1)


def test_tokens_are_reserved_then_unused_ones_refunded():
    clock = Clock()
    limiter = RateLimiter(rpm=None, tpm=1000, clock=clock)
    first = limiter.admit("k", 600)
    assert first.headers["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(APIError) as info:
        limiter.admit("k", 600)
    assert info.value.type == "tokens"
    assert info.value.headers["Retry-After"] == "12"  # 200 tokens at 1000/min
    first.settle(100)  # 500 unused tokens come back
    first.settle(0)  # settling twice gives nothing more
    second = limiter.admit("k", 600)
    assert second.headers["x-ratelimit-remaining-tokens"] == "300"


def test_a_rejected_request_takes_nothing():
    clock = Clock()
    limiter = RateLimiter(rpm=5, tpm=100, clock=clock)
    limiter.admit("k", 90)
    with pytest.raises(APIError):
        limiter.admit("k", 50)
    # The refused request took neither a request nor tokens.
    headers = limiter.admit("k", 10).headers
    assert headers["x-ratelimit-remaining-requests"] == "3"
    assert headers["x-ratelimit-remaining-tokens"] == "0"


def test_a_request_over_the_whole_budget_says_so():
    limiter = RateLimiter(rpm=None, tpm=100, clock=Clock())
    with pytest.raises(APIError) as info:
        limiter.admit("k", 101)
    assert info.value.status == 429
    assert "101" in info.value.message and "100" in info.value.message


def test_disabled_limiter_admits_everything():
    limiter = RateLimiter(rpm=None, tpm=None)
    reservation = limiter.admit("k", 10**9)
    assert reservation.headers == {}
    reservation.settle(0)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.02, "20ms"), (1.5, "1.5s"), (360, "6m0s"), (61.9, "1m1s")]
)
def test_reset_durations_in_openai_format(seconds, text):
    assert _duration(seconds) == text


HI = [{"role": "user", "content": "Hi"}]
CHAT = {"model": "tiny", "messages": HI, "max_tokens": 1}


def test_429_with_retry_after_and_ratelimit_headers(make_server):
    server = make_server(rate_limit_rpm=2)
    url = server.url("/v1/chat/completions")
    ok = httpx.post(url, json=CHAT)
    assert ok.headers["x-ratelimit-limit-requests"] == "2"
    assert ok.headers["x-ratelimit-remaining-requests"] == "1"
    assert ok.headers["x-ratelimit-reset-requests"].endswith("s")
    httpx.post(url, json=CHAT)
    limited = httpx.post(url, json=CHAT)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    client = openai.OpenAI(base_url=server.url("/v1"), api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="tiny", messages=HI, max_tokens=1)


def test_unused_tokens_are_refunded(make_server, script, tiny_tokenizer):
    server = make_server(rate_limit_tpm=1200)
    url = server.url("/v1/chat/completions")
    body = {**CHAT, "max_tokens": 500}
    prompt = httpx.post(server.url("/tokenize"), json={"model": "tiny", "messages": HI})
    need = prompt.json()["count"] + 500  # reserved at admission
    # Short answers give most of their reservation back.
    script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>Hi<|return|>")
    first = httpx.post(url, json=body)
    assert first.status_code == 200
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < need  # no room...
    second = httpx.post(url, json=body)
    assert second.status_code == 200  # ...but for the refund
    # An answer that uses its whole budget gives nothing back.
    script.ids = script_ids(tiny_tokenizer, "<|channel|>final<|message|>la")
    assert httpx.post(url, json=body).status_code == 200
    assert httpx.post(url, json=body).status_code == 429


def test_tokenizer_lookups_count_as_requests(make_server):
    """/tokenize, /detokenize and count_tokens generate nothing, but each is
    one request against the key's requests per minute."""
    server = make_server(rate_limit_rpm=3)
    lookups = [
        ("/tokenize", {"model": "tiny", "prompt": "Hi"}),
        ("/detokenize", {"model": "tiny", "tokens": [1, 2]}),
        ("/v1/messages/count_tokens", {"model": "tiny", "messages": HI}),
    ]
    for path, body in lookups:
        ok = httpx.post(server.url(path), json=body)
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit-requests"] == "3"
    for path, body in lookups:
        limited = httpx.post(server.url(path), json=body)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
    assert httpx.post(server.url("/v1/chat/completions"), json=CHAT).status_code == 429
