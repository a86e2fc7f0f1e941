"""Rate limits: per-key token buckets for requests and tokens per minute."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlx_gen.server.errors import APIError


def _duration(seconds: float) -> str:
    """OpenAI's reset format: '20ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{int(rest)}s"


class TokenBucket:
    """`per_minute` units, refilled continuously; starts full."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it is now)."""
        return max(0.0, (amount - self.level) / self.rate)

    def until_full(self) -> float:
        return (self.capacity - self.level) / self.rate


@dataclass
class _KeyBuckets:
    requests: TokenBucket | None
    tokens: TokenBucket | None


@dataclass
class Reservation:
    """Tokens held for one request; `settle` gives back what was not used."""

    limiter: RateLimiter | None
    key_id: str
    reserved: int
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False

    def settle(self, used: int) -> None:
        if self.settled or self.limiter is None:
            return
        self.settled = True
        self.limiter.refund(self.key_id, max(0, self.reserved - used))


class RateLimiter:
    """Requests and tokens per minute, per API key id."""

    def __init__(
        self,
        rpm: int | None,
        tpm: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.clock = clock
        self._keys: dict[str, _KeyBuckets] = {}

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def _buckets(self, key_id: str, now: float) -> _KeyBuckets:
        buckets = self._keys.get(key_id)
        if buckets is None:
            buckets = _KeyBuckets(
                TokenBucket(self.rpm, now) if self.rpm else None,
                TokenBucket(self.tpm, now) if self.tpm else None,
            )
            self._keys[key_id] = buckets
        for bucket in (buckets.requests, buckets.tokens):
            if bucket is not None:
                bucket.refill(now)
        return buckets

    def admit(self, key_id: str, tokens: int) -> Reservation:
        """Take one request and `tokens` tokens, or raise a 429 taking nothing."""
        if not self.enabled:
            return Reservation(None, key_id, 0)
        # No await in here: on the event loop this check-and-take is atomic.
        b = self._buckets(key_id, self.clock())
        if b.tokens is not None and tokens > b.tokens.capacity:
            raise self._too_large(b, tokens)
        waits = {
            "requests": b.requests.wait_for(1) if b.requests else 0.0,
            "tokens": b.tokens.wait_for(tokens) if b.tokens else 0.0,
        }
        kind, wait = max(waits.items(), key=lambda kv: kv[1])
        if wait > 0:
            raise self._limited(b, kind, wait)
        if b.requests is not None:
            b.requests.level -= 1
        if b.tokens is not None:
            b.tokens.level -= tokens
        return Reservation(self, key_id, tokens, self._headers(b))

    def refund(self, key_id: str, tokens: int) -> None:
        b = self._buckets(key_id, self.clock())
        if b.tokens is not None:
            b.tokens.level = min(b.tokens.capacity, b.tokens.level + tokens)

    def _headers(self, b: _KeyBuckets) -> dict[str, str]:
        headers = {}
        for kind, bucket in (("requests", b.requests), ("tokens", b.tokens)):
            if bucket is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(int(bucket.capacity))
                headers[f"x-ratelimit-remaining-{kind}"] = str(int(bucket.level))
                headers[f"x-ratelimit-reset-{kind}"] = _duration(bucket.until_full())
        return headers

    def _limited(self, b: _KeyBuckets, kind: str, wait: float) -> APIError:
        limit = self.rpm if kind == "requests" else self.tpm
        headers = self._headers(b) | {"Retry-After": str(max(1, math.ceil(wait)))}
        return APIError(
            429,
            f"Rate limit reached: {limit} {kind} per minute. "
            f"Please try again in {_duration(wait)}.",
            type=kind,
            code="rate_limit_exceeded",
            headers=headers,
        )

    def _too_large(self, b: _KeyBuckets, tokens: int) -> APIError:
        headers = self._headers(b) | {"Retry-After": "60"}
        return APIError(
            429,
            f"Request too large: it needs {tokens} tokens (prompt + max tokens) but "
            f"the limit is {self.tpm} tokens per minute.",
            type="tokens",
            code="rate_limit_exceeded",
            headers=headers,
        )
