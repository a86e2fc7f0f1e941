"""Auth bypass attempts are 401s; a wrong key's check takes the same time
however much of the real key it shares."""

from __future__ import annotations

import json
import random
import statistics
import time

import pytest

from mlx_gen.server.middleware.auth import KeyRing

from .clients import (
    COUNT_TOKENS,
    MESSAGES,
    Outcome,
    is_anthropic_error,
    is_openai_error,
    raw_exchange,
)
from .conftest import Launch

KEY = "sk-reliability-0123456789abcdefghij"
CHAT_BODY = b'{"model":"tiny","messages":[{"role":"user","content":"Hi"}]}'
# count_tokens takes the chat body as it is; /v1/messages needs max_tokens too.
BODIES = {COUNT_TOKENS: CHAT_BODY, MESSAGES: CHAT_BODY[:-1] + b',"max_tokens":1}'}


@pytest.fixture(scope="module")
def server(launch: Launch):
    return launch(env={"MLX_GEN_API_KEYS": json.dumps([KEY])})


def request(
    target: str = "/v1/models",
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes = b"",
) -> bytes:
    """An HTTP/1.1 request exactly as written: no client normalizes it."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in
             ({"Host": "127.0.0.1"} | (headers or {})).items())]  # fmt: skip
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_refused(outcome: Outcome) -> None:
    assert outcome.status == 401, outcome.describe()
    assert is_openai_error(outcome.body) and outcome.body["error"]["code"] == (
        "invalid_api_key"
    )
    assert outcome.headers["www-authenticate"].startswith("Bearer")


def test_the_key_itself_is_accepted(server):
    # The control: without it every 401 below could be a broken server.
    for header in ({"Authorization": f"Bearer {KEY}"}, {"x-api-key": KEY},
                   {"Authorization": f"bEaReR {KEY}"},  # the scheme is case-blind
                   {"Authorization": f"Bearer {KEY} \t"}):  # fmt: skip
        outcome = raw_exchange(server.base, request(headers=header))
        assert outcome.status == 200, (header, outcome.describe())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Host": "localhost"},
        {"Host": "localhost/health"},
        {"Host": "127.0.0.1:1"},
        {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        {"Forwarded": "for=127.0.0.1;host=localhost"},
        {"X-Original-URL": "/health", "X-Rewrite-URL": "/health"},
        {"X-Forwarded-Prefix": "/health", "X-Forwarded-Host": "localhost"},
    ],
)
def test_host_and_proxy_headers_do_not_authenticate(server, headers):
    assert_refused(raw_exchange(server.base, request(headers=headers)))


@pytest.mark.parametrize(
    "target",
    ["//v1/models", "/v1/../v1/models", "/./v1/models", "/health/../v1/models",
     "/health/..%2Fv1/models", "/%76%31/models", "/v1%2Fmodels", "/v1/models/",
     "/V1/MODELS", "/v1/models?path=/health", "/health;/../v1/models",
     "/metrics/../v1/models", "/v1/models%00", "/ready%2F..%2Fv1%2Fmodels",
     "http://127.0.0.1/v1/models", "/health/", "/HEALTH"],
)  # fmt: skip
def test_path_tricks_do_not_reach_a_route_without_a_key(server, target):
    assert_refused(raw_exchange(server.base, request(target)))


@pytest.mark.parametrize(
    "target",
    ["/v1/chat/completions", "//v1/chat/completions", "/v1/%63hat/completions"],
)
def test_generation_is_refused_without_a_key_whatever_the_path(server, target):
    assert_refused(raw_exchange(server.base, request(target, method="POST",
                                                     body=CHAT_BODY)))  # fmt: skip


@pytest.mark.parametrize(
    ("method", "target"),
    [("POST", "/v1/responses"), ("POST", "//v1/responses"),
     ("GET", "/v1/responses/resp-1"), ("DELETE", "/v1/responses/resp-1"),
     ("GET", "/v1/responses/resp-1/input_items")],
)  # fmt: skip
def test_responses_are_refused_without_a_key(server, method, target):
    body = b'{"model":"tiny","input":"Hi"}' if method == "POST" else b""
    assert_refused(raw_exchange(server.base, request(target, method=method,
                                                     body=body)))  # fmt: skip


@pytest.mark.parametrize("target", [MESSAGES, COUNT_TOKENS])
@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": KEY[:-1]}, {"Authorization": f"Bearer {KEY}x"},
     {"x-api-key": ""}, {"anthropic-version": "2023-06-01"},
     {"x-api-key": f"Bearer {KEY}"}, {"Authorization": KEY}],
)  # fmt: skip
def test_messages_refuse_missing_and_wrong_keys_in_anthropics_shape(
    server, target, headers
):
    outcome = raw_exchange(
        server.base, request(target, headers, method="POST", body=BODIES[target])
    )
    assert outcome.status == 401, outcome.describe()
    assert is_anthropic_error(outcome.body), outcome.describe()
    assert outcome.body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("target", [MESSAGES, COUNT_TOKENS])
def test_messages_take_the_key_from_either_header(server, target):
    # The control of the test above.
    for header in ({"x-api-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        outcome = raw_exchange(
            server.base, request(target, header, method="POST", body=BODIES[target])
        )
        assert outcome.status == 200, (header, outcome.describe())


@pytest.mark.parametrize(
    "target", ["//v1/messages", "/v1/%6Dessages", "/v1/messages/", "/V1/MESSAGES",
               "/v1/messages/../messages", "/health/../v1/messages/count_tokens"],
)  # fmt: skip
def test_messages_path_tricks_are_refused_without_a_key(server, target):
    outcome = raw_exchange(
        server.base, request(target, method="POST", body=BODIES[MESSAGES])
    )
    assert outcome.status == 401, outcome.describe()
    assert is_anthropic_error(outcome.body) or is_openai_error(outcome.body)


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {KEY[:-1]}", f"Bearer {KEY}x", f"Bearer {KEY * 2}", f"Bearer {KEY[1:]}",
     f"Bearer {KEY[:-1]} ", f"Bearer {KEY.upper()}", f"Bearer {KEY[:-1]}é",
     f"Bearer {KEY} extra", f"Bearer {KEY},{KEY}", "Bearer", "Bearer ", "Bearer  \t ",
     f"Basic {KEY}", f"Token {KEY}", f"{KEY}", f"Bearer:{KEY}", f"BearerX {KEY}",
     "Bearer null", "Bearer undefined", "Bearer *"],
)  # fmt: skip
def test_wrong_empty_and_misshapen_keys_are_refused(server, authorization):
    headers = {"Authorization": authorization}
    assert_refused(raw_exchange(server.base, request(headers=headers)))


@pytest.mark.parametrize("api_key", ["", " ", KEY[:-1], f"{KEY}x", f" {KEY[:-1]} "])
def test_wrong_and_empty_x_api_keys_are_refused(server, api_key):
    assert_refused(raw_exchange(server.base, request(headers={"x-api-key": api_key})))


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "DELETE", "PUT"])
def test_other_methods_are_refused_before_routing(server, method):
    outcome = raw_exchange(server.base, request(method=method))
    if method == "HEAD":  # no body, but the same status and header
        assert outcome.status == 401 and "www-authenticate" in outcome.headers
    else:
        assert_refused(outcome)


# Long keys make a byte-by-byte early-exit compare measurable: sharing every
# character but the last costs a 256 KiB memcmp, sharing none costs nothing.
LONG_KEY_CHARS = 256 * 1024
ROUNDS = 300
TOLERANCE = 1.5  # median ratio; an early-exit compare is far beyond it


def wrong_keys(secret: str) -> tuple[str, str]:
    """Two wrong keys of the secret's length: one sharing all but its last
    character, one sharing not even its first."""
    other = "A" if secret[0] != "A" else "B"
    last = "A" if secret[-1] != "A" else "B"
    return secret[:-1] + last, other + secret[1:]


def median_ratio(matches, near: str, far: str) -> float:
    """Median time of checking `near` over that of `far`, interleaved in a
    random order so that load on the machine hits both alike."""
    timings: dict[str, list[int]] = {near: [], far: []}
    order = [near, far] * ROUNDS
    random.Random(0).shuffle(order)
    for key in order:
        started = time.perf_counter_ns()
        matches(key)
        timings[key].append(time.perf_counter_ns() - started)
    return statistics.median(timings[near]) / statistics.median(timings[far])


def test_wrong_key_checks_take_the_same_time_whatever_prefix_they_share():
    rng = random.Random(1)
    secret = "".join(rng.choice("abcdefghijklmnop") for _ in range(LONG_KEY_CHARS))
    ring = KeyRing([secret, "another-configured-key"])
    near, far = wrong_keys(secret)
    assert not ring.matches(near) and not ring.matches(far) and ring.matches(secret)
    ratio = median_ratio(ring.matches, near, far)
    assert 1 / TOLERANCE < ratio < TOLERANCE, f"near/far median time ratio {ratio:.2f}"
