"""Bounded polls: wait for what another thread, task or process does soon.

A server logs a request's access line, counts it in its metrics, frees its
slot or prints its address a moment after the client saw the answer; a test
that reads such a thing once, or after a fixed sleep, fails on a slow or busy
machine. These wait until the condition holds, up to a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.01) -> T:
    """Call `check` until it returns something true or `timeout` seconds have
    passed; returns its last result (false on timeout). `check` may raise to
    give up early, e.g. when the process it waits for has exited."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result


async def wait_until_async(
    check: Callable[[], T], timeout: float, interval: float = 0.001
) -> T:
    """`wait_until` for a coroutine: the event loop runs while it waits."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
    return result


def answers(url: str, status: int = 200) -> bool:
    """A GET of `url` answers `status` now (no answer at all is False)."""
    try:  # loopback: never through a proxy from the environment
        return httpx.get(url, timeout=5, trust_env=False).status_code == status
    except httpx.TransportError:
        return False
