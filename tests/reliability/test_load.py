"""Load: many concurrent streams end complete or cleanly refused, never broken."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections import Counter

import pytest

from .clients import CHAT, Outcome, async_client, stream, stream_body
from .conftest import Launch

RPM = 120  # a burst of 200 is more than the bucket holds: some get 429
BURST = 200
UNLIMITED = 100


async def burst(url: str, n: int) -> tuple[list[Outcome], float]:
    """`n` streaming clients at once, each on its own connection."""
    async with async_client(n) as client:
        started = time.monotonic()
        bodies = [stream_body(f"Hello number {i}", max_tokens=8) for i in range(n)]
        outcomes = await asyncio.gather(*(stream(client, url, b) for b in bodies))
    return list(outcomes), time.monotonic() - started


def tally(outcomes: list[Outcome]) -> Counter:
    return Counter(
        "complete" if o.complete else f"refused {o.status}" if o.refused else "bad"
        for o in outcomes
    )


@pytest.fixture(scope="module")
def limited(launch: Launch):
    # A small batch and queue and a request rate under the burst: both the
    # rate limiter (429) and the engine's queue bound (503) have work to do.
    return launch("--max-batch-size", "4", "--max-queue", "4",
                  "--rate-limit-rpm", str(RPM))  # fmt: skip


def test_a_burst_over_the_limits_is_served_or_refused_cleanly(limited):
    outcomes, elapsed = asyncio.run(burst(limited.url(CHAT), BURST))
    counts = tally(outcomes)
    bad = [o.describe() for o in outcomes if not (o.complete or o.refused)]
    assert not bad, f"{counts}: {bad[:5]}"
    assert counts["refused 429"] > 0, counts
    assert counts["refused 503"] > 0, counts  # the engine's queue bound held
    # The bucket starts full and refills at RPM/60 per second: no more got in.
    admitted = BURST - counts["refused 429"]
    assert admitted <= RPM + RPM * elapsed / 60 + 1, (counts, elapsed)
    assert counts["complete"] > 0, counts
    for o in outcomes:
        if o.complete:
            assert o.usage["completion_tokens"] >= 1
    assert limited.alive()


def test_with_limits_off_every_stream_completes(launch: Launch):
    server = launch()
    outcomes, _ = asyncio.run(burst(server.url(CHAT), UNLIMITED))
    bad = [o.describe() for o in outcomes if not o.complete]
    assert not bad, f"{len(bad)} of {UNLIMITED} did not complete: {bad[:5]}"
    gauges = server.gauges()
    assert gauges["mlx_gen_running_sequences"] == 0
    assert gauges["mlx_gen_kv_tokens_used"] == 0


def test_the_listen_backlog_holds_a_burst_of_connections(limited):
    """uvicorn's backlog (2048) is in force: with the server stopped, so that
    nothing is accepted, 300 connections still complete their handshake."""
    host, port = limited.base.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    limited.signal(signal.SIGSTOP)
    try:
        for _ in range(300):
            sock = socket.socket()
            sockets.append(sock)
            sock.settimeout(5)
            sock.connect((host, int(port)))  # a full accept queue drops the SYN
    finally:
        limited.signal(signal.SIGCONT)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
    assert len(sockets) == 300
    assert limited.alive()
