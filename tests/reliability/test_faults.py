"""Faults: clients that leave, engine errors, requests too big, a dying engine."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from mlx_gen.server.faults import FAULT_USER_ENV, KILL_SUFFIX, marker_from_env

from .clients import (
    CHAT,
    MESSAGES,
    RESPONSES,
    Outcome,
    async_client,
    chat_body,
    is_openai_error,
    post,
    started_streams,
    stream,
    stream_body,
)
from .conftest import Launch
from .server_process import MODEL

MARKER = "reliability-fault-marker-7f3a"
LONG = 3000  # tokens: far longer than any bound below, if nothing stops it
FREED_WITHIN = 5.0  # seconds for every slot to be freed once its client left


@pytest.fixture(scope="module")
def server(launch: Launch):
    return launch("--max-batch-size", "32", env={FAULT_USER_ENV: MARKER})


async def leave_mid_stream(client, url: str, body: dict, frames: int) -> int:
    """Read `frames` frames (0: only the headers), then drop the connection."""
    read = 0
    async with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if read >= frames:
                break
            read += line.startswith("data: ")
    return read


async def leave_while_waiting(url: str, body: dict, after: float) -> None:
    """A whole-answer request whose client gives up before the answer."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=after)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, json=body)


def test_clients_that_leave_mid_stream_free_every_slot(server):
    url, bias = server.url(CHAT), server.no_eos_bias()
    rng = random.Random(7)

    async def main() -> list[int]:
        async with async_client(40) as client:
            streams = [
                leave_mid_stream(client, url, stream_body(f"leave {i}", LONG,
                                 logit_bias=bias), rng.randint(0, 60))
                for i in range(30)
            ]  # fmt: skip
            waits = [
                leave_while_waiting(url, chat_body(f"wait {i}", LONG, logit_bias=bias),
                                    rng.uniform(0.2, 1.5))
                for i in range(6)
            ]  # fmt: skip
            return (await asyncio.gather(*streams, *waits))[:30]

    read = asyncio.run(main())
    assert max(read) > 10  # some left well into their stream
    assert server.engine_idle(FREED_WITHIN), f"slots still held: {server.gauges()}"
    assert server.alive()


def test_messages_and_responses_clients_that_leave_free_every_slot(server):
    rng = random.Random(11)

    def body(path: str, i: int) -> dict:
        if path == MESSAGES:
            said = {"messages": [{"role": "user", "content": f"leave {i}"}],
                    "max_tokens": LONG}  # fmt: skip
        else:
            said = {"input": f"leave {i}", "max_output_tokens": LONG}
        return {"model": MODEL, "stream": True, **said}

    async def main() -> list[int]:
        async with async_client(40) as client:
            # Streams only: these APIs take no logit_bias to keep a whole
            # answer from ending before its client leaves (chat's test above
            # covers that path, which every API shares).
            streams = [
                leave_mid_stream(client, server.url(path), body(path, i),
                                 rng.randint(0, 60))
                for i in range(15) for path in (MESSAGES, RESPONSES)
            ]  # fmt: skip
            return await asyncio.gather(*streams)

    read = asyncio.run(main())
    assert max(read) > 10  # some left well into their stream
    assert server.engine_idle(FREED_WITHIN), f"slots still held: {server.gauges()}"
    assert server.alive()


def test_an_engine_fault_fails_only_its_requests(server):
    # No end token: a faulty request surely reaches the token where it fails.
    url, bias = server.url(CHAT), server.no_eos_bias()

    async def main() -> tuple[list[Outcome], list[Outcome]]:
        async with async_client(40) as client:
            faulty = [
                stream(client, url, stream_body("f", 16, user=MARKER, logit_bias=bias)),
                post(client, url, chat_body("f", 16, user=MARKER, logit_bias=bias)),
            ] * 3
            healthy = [
                stream(client, url, stream_body(f"ok {i}", 16, user="alice"))
                for i in range(12)
            ]
            healthy += [post(client, url, chat_body(f"ok {i}", 16)) for i in range(6)]
            outcomes = await asyncio.gather(*faulty, *healthy)  # fmt: skip
        return outcomes[: len(faulty)], outcomes[len(faulty) :]

    failed, served = asyncio.run(main())
    for outcome in served:
        assert outcome.complete, outcome.describe()
    for outcome in failed:
        if outcome.status == 200:  # streamed: the error arrives in the stream
            assert outcome.done and is_openai_error(outcome.stream_error)
            error = outcome.stream_error["error"]
        else:
            assert outcome.status == 500 and is_openai_error(outcome.body)
            error = outcome.body["error"]
        assert error["code"] == "engine_error" and "fault injected" in error["message"]
    assert server.engine_idle(FREED_WITHIN), server.gauges()


def test_a_request_that_can_never_fit_is_a_400_and_harms_nothing(server):
    url = server.url(CHAT)

    async def main() -> tuple[list[Outcome], list[Outcome]]:
        async with async_client(20) as client:
            too_big = [post(client, url, chat_body("Hi", 4096)),
                       post(client, url, chat_body("word " * 5000, 1)),
                       stream(client, url, stream_body("Hi", 4096))]  # fmt: skip
            fine = [stream(client, url, stream_body(f"ok {i}", 16)) for i in range(8)]
            outcomes = await asyncio.gather(*too_big, *fine)
        return outcomes[:3], outcomes[3:]

    refused, served = asyncio.run(main())
    for outcome in refused:
        assert outcome.status == 400 and is_openai_error(outcome.body)
        assert outcome.body["error"]["code"] == "context_length_exceeded"
    assert all(o.complete for o in served), [o.describe() for o in served]


def test_the_marker_must_be_long_and_is_off_unless_set():
    assert marker_from_env({}) is None
    assert marker_from_env({FAULT_USER_ENV: "short"}) is None
    assert marker_from_env({FAULT_USER_ENV: MARKER}) == MARKER


def test_without_the_variable_the_marker_is_an_ordinary_user(launch: Launch):
    plain = launch()
    answer = httpx.post(plain.url(CHAT), json=chat_body("Hi", 4, user=MARKER))
    assert answer.status_code == 200, answer.text


def test_a_dead_engine_thread_is_unready_still_answers_and_ends_streams(server):
    """Last in this module: it kills the engine of the module's server."""
    url, bias = server.url(CHAT), server.no_eos_bias()

    async def main() -> list[Outcome]:
        async with async_client(10) as client:
            bodies = [stream_body(f"r{i}", LONG, logit_bias=bias) for i in range(3)]
            running = await started_streams(client, url, bodies, 60)  # decoding
            kill = stream_body("k", 16, user=MARKER + KILL_SUFFIX, logit_bias=bias)
            ended = asyncio.gather(*running, stream(client, url, kill))
            return list(await asyncio.wait_for(ended, 30))

    for outcome in asyncio.run(main()):  # every stream ended, none hangs
        assert outcome.status == 200 and outcome.done, outcome.describe()
        assert is_openai_error(outcome.stream_error), outcome.describe()
    started = time.monotonic()
    ready = httpx.get(server.url("/ready"), timeout=5)
    health = httpx.get(server.url("/health"), timeout=5)
    assert time.monotonic() - started < 5
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "engine_dead"
    # Liveness still answers, and says the engine is gone.
    assert health.status_code == 503 and is_openai_error(health.json())
    assert "InjectedEngineDeath" in health.json()["error"]["message"]
    refused = httpx.post(url, json=chat_body("Hi", 4), timeout=5)
    assert refused.status_code == 503 and is_openai_error(refused.json())
    assert refused.json()["error"]["code"] == "engine_unavailable"
    assert server.alive()
