"""SIGTERM under load: the streams in flight finish, new work is refused, exit 0."""

from __future__ import annotations

import asyncio
import time

import httpx

from .clients import (
    CHAT,
    Outcome,
    async_client,
    chat_body,
    post,
    started_streams,
    stream_body,
)
from .conftest import Launch

IN_FLIGHT = 20
TOKENS = 1000  # long enough that they are still running well after the signal


async def new_requests_after_signal(url: str, seconds: float) -> list[Outcome]:
    """New clients, each on a new connection, while the server drains."""
    outcomes = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with httpx.AsyncClient(timeout=30) as client:
            outcomes.append(await post(client, url, chat_body("late", 4)))
        await asyncio.sleep(0.02)
    return outcomes


# No answer at all: the listener had closed (refused), or it closed with the
# connection still waiting to be accepted or read (reset, or closed unanswered).
UNANSWERED = (
    "ConnectError",
    "ReadError",
    "WriteError",
    "RemoteProtocolError: Server disconnected without sending a response",
)


def refused_before_work(outcome: Outcome) -> bool:
    """A 503 `shutting_down` with Retry-After, or no answer and no work done."""
    if outcome.refused:
        return outcome.body["error"]["code"] == "shutting_down"
    return outcome.status is None and (outcome.exception or "").startswith(UNANSWERED)


def test_sigterm_under_load_drains_refuses_and_exits_0(launch: Launch):
    server = launch("--drain-timeout", "60")
    url, bias = server.url(CHAT), server.no_eos_bias()

    async def main() -> tuple[list[Outcome], list[Outcome]]:
        async with async_client(IN_FLIGHT) as client:
            bodies = [
                stream_body(f"s{i}", TOKENS, logit_bias=bias) for i in range(IN_FLIGHT)
            ]
            running = await started_streams(client, url, bodies, 60)
            server.signal()
            late = await new_requests_after_signal(url, 1.5)
            return list(await asyncio.gather(*running)), late

    in_flight, late = asyncio.run(main())
    assert server.wait(90) == 0, server.log()[-3000:]
    for outcome in in_flight:
        assert outcome.complete, outcome.describe()
        assert outcome.usage["completion_tokens"] == TOKENS
    assert late, "no request was tried after the signal"
    odd = [o.describe() for o in late if not refused_before_work(o)]
    assert not odd, odd[:5]
    assert "Traceback" not in server.log()
