"""API-key authentication as a pure ASGI middleware.

The decision uses only `scope["path"]` (never a URL rebuilt from the Host
header). A presented key is hashed and compared, in constant time, against the
hash of every configured key, all of them, so timing says nothing about which
key nearly matched. Keys are never logged: a key is named by `key_id`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from mlx_gen.server.context import info_of
from mlx_gen.server.errors import APIError

ANONYMOUS = "anonymous"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id(key: str) -> str:
    """A short, stable, non-secret name for a key (first 8 hex of its sha256)."""
    return _digest(key).hex()[:8]


def presented_key(headers: Headers) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class KeyRing:
    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(k) for k in dict.fromkeys(keys) if k]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def matches(self, key: str) -> bool:
        given = _digest(key)
        found = False
        for digest in self._digests:  # no early exit: every key is compared
            found |= hmac.compare_digest(given, digest)
        return found


def _auth_error(message: str) -> APIError:
    return APIError(
        401,
        message,
        code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="mlx-gen"'},
    )


class AuthMiddleware:
    def __init__(
        self, app: ASGIApp, keys: KeyRing, exempt_paths: Iterable[str]
    ) -> None:
        self.app = app
        self.keys = keys
        self.exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.keys.enabled:
            info_of(scope).key_id = ANONYMOUS
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        if key is None:
            error = _auth_error(
                "You didn't provide an API key. Give it as 'Authorization: Bearer "
                "YOUR_KEY' or in an 'x-api-key' header."
            )
        elif not self.keys.matches(key):
            error = _auth_error("Incorrect API key provided.")
        else:
            info_of(scope).key_id = key_id(key)
            await self.app(scope, receive, send)
            return
        await error.response(scope["path"])(scope, receive, send)
