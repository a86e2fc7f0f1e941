"""API keys: extraction from headers, constant-time matching, key ids."""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers

from mlx_gen.server.auth import KeyRing, key_id, presented_key


def test_keys_are_taken_from_bearer_or_x_api_key():
    assert presented_key(Headers({"authorization": "Bearer sk-1"})) == "sk-1"
    assert presented_key(Headers({"authorization": "bearer  sk-1 "})) == "sk-1"
    assert presented_key(Headers({"x-api-key": "sk-2"})) == "sk-2"
    assert presented_key(Headers({"authorization": "Basic abc"})) is None
    assert presented_key(Headers({"authorization": "Bearer "})) is None
    assert presented_key(Headers({})) is None


def test_key_ring_matches_any_configured_key_only():
    ring = KeyRing(["alpha", "beta", "alpha", ""])
    assert ring.enabled and len(ring) == 2
    assert ring.matches("alpha") and ring.matches("beta")
    assert not ring.matches("alph") and not ring.matches("alphaa")
    assert not ring.matches("")
    assert not KeyRing([]).enabled


def test_key_id_is_a_short_hash_never_the_key():
    kid = key_id("sk-secret-value")
    assert kid == hashlib.sha256(b"sk-secret-value").hexdigest()[:8]
    assert "secret" not in kid
