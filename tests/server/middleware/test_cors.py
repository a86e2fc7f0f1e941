"""The app's stack: CORS off unless configured, and before auth when on."""

from __future__ import annotations

import httpx

ORIGIN = "http://app.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def test_cors_is_off_by_default(server):
    answer = httpx.get(server.url("/v1/models"), headers={"Origin": ORIGIN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = httpx.options(server.url("/v1/chat/completions"), headers=PREFLIGHT)
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


def test_configured_origins_pass_preflight_even_with_auth(make_server):
    server = make_server(cors_origins=[ORIGIN], api_keys=["sk-cors"])
    preflight = httpx.options(server.url("/v1/chat/completions"), headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    other = httpx.options(
        server.url("/v1/chat/completions"),
        headers={**PREFLIGHT, "Origin": "http://evil.example"},
    )
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "cors_rejected"
    answer = httpx.get(
        server.url("/v1/models"),
        headers={"Origin": ORIGIN, "Authorization": "Bearer sk-cors"},
    )
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"]


def test_anthropics_headers_pass_preflight(make_server):
    """A browser calling /v1/messages sends Anthropic's version and beta headers."""
    server = make_server(cors_origins=[ORIGIN], api_keys=["sk-cors"])
    asked = "x-api-key, anthropic-version, anthropic-beta, content-type"
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": asked}
    preflight = httpx.options(server.url("/v1/messages"), headers=headers)
    assert preflight.status_code == 200, preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"anthropic-version", "anthropic-beta", "x-api-key"} <= set(
        allowed.replace(" ", "").split(",")
    )
