"""API keys: extraction from headers, constant-time matching, key ids."""

from __future__ import annotations

import hashlib
import logging
import socket

import httpx
import openai
import pytest
from starlette.datastructures import Headers

from mlx_gen.server.auth import KeyRing, key_id, presented_key

from .helpers import access_lines


def test_keys_are_taken_from_bearer_or_x_api_key():
    assert presented_key(Headers({"authorization": "Bearer sk-1"})) == "sk-1"
    assert presented_key(Headers({"authorization": "bearer  sk-1 "})) == "sk-1"
    assert presented_key(Headers({"x-api-key": "sk-2"})) == "sk-2"
    assert presented_key(Headers({"authorization": "Basic abc"})) is None
    assert presented_key(Headers({"authorization": "Bearer "})) is None
    assert presented_key(Headers({})) is None


def test_key_ring_matches_any_configured_key_only():
    ring = KeyRing(["alpha", "beta", "alpha", ""])
    assert ring.enabled
    assert ring.matches("alpha") and ring.matches("beta")
    assert not ring.matches("alph") and not ring.matches("alphaa")
    assert not ring.matches("")
    assert not KeyRing([]).enabled


def test_key_id_is_a_short_hash_never_the_key():
    kid = key_id("sk-secret-value")
    assert kid == hashlib.sha256(b"sk-secret-value").hexdigest()[:8]
    assert "secret" not in kid


KEYS = ["sk-first-0123456789", "sk-second-abcdefghij"]
HI = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}


def test_the_server_refuses_missing_and_wrong_keys(make_server):
    server = make_server(api_keys=KEYS)
    url = server.url("/v1/chat/completions")
    wrong = ({}, {"Authorization": "Bearer sk-nope"}, {"x-api-key": KEYS[0][:-1]},
             {"Authorization": f"Basic {KEYS[0]}"})  # fmt: skip
    for headers in wrong:
        response = httpx.post(url, json=HI, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(server.url("/v1/models")).status_code == 401


def test_every_configured_key_works_in_either_header(make_server, tmp_path):
    key_file = tmp_path / "keys.txt"
    key_file.write_text("sk-from-file\n\n", encoding="utf-8")
    server = make_server(api_keys=KEYS, api_key_file=key_file)
    url = server.url("/v1/chat/completions")
    for headers in ({"Authorization": f"Bearer {KEYS[0]}"}, {"x-api-key": KEYS[1]},
                    {"Authorization": "Bearer sk-from-file"}):  # fmt: skip
        assert httpx.post(url, json=HI, headers=headers).status_code == 200
    client = openai.OpenAI(base_url=server.url("/v1"), api_key=KEYS[1], max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny"]
    bad = openai.OpenAI(base_url=server.url("/v1"), api_key="sk-bad", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_operational_paths_are_exempt(make_server):
    server = make_server(api_keys=KEYS)
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(server.url(path)).status_code == 200


def test_the_decision_uses_the_path_not_the_host_header(make_server):
    """A Host header cannot make a protected path look like an exempt one."""
    server = make_server(api_keys=KEYS)
    host = server.base.removeprefix("http://")
    with socket.create_connection(host.split(":")) as sock:  # raw: httpx fixes Host
        sock.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: " + host.encode()
            + b"/health?\r\nConnection: close\r\n\r\n"
        )  # fmt: skip
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 401")


def test_keys_never_reach_the_logs(make_server, caplog):
    server = make_server(api_keys=KEYS)
    with caplog.at_level(logging.DEBUG):
        httpx.post(server.url("/v1/chat/completions"), json=HI,
                   headers={"Authorization": f"Bearer {KEYS[0]}"})  # fmt: skip
        httpx.post(server.url("/v1/chat/completions"), json=HI,
                   headers={"Authorization": "Bearer sk-wrong-guess"})  # fmt: skip
        access = access_lines(caplog, 2)
    assert [a["key_id"] for a in access] == [key_id(KEYS[0]), "-"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert KEYS[0] not in text and "sk-wrong-guess" not in text
