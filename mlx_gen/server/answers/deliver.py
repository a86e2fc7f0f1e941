"""The one place engine events become the response, streamed or whole.

A chat stream is the role chunk of each choice, the deltas, a chunk with each
choice's finish_reason, the usage chunk (`choices: []`) when asked, then
`data: [DONE]`; an error after the 200 went out is a `data: {"error": ...}`
frame (the SDKs raise it) followed by `[DONE]`. The other APIs' answers
choose their own chunks, frames and end (answers/responses.py,
answers/messages.py). A whole answer is collected, then sent as one JSON
object.

However a request ends (done, failed, client gone), it is aborted in the
engine if still running, its unused rate-limit tokens are given back and its
usage goes to the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.answers.base import UsageTally
from mlx_gen.server.context import info_of
from mlx_gen.server.errors import APIError, internal_error
from mlx_gen.server.metrics import TokenTimer
from mlx_gen.server.rate_limits import Reservation
from mlx_gen.server.served import EventStream
from mlx_gen.server.sse import Frame, sse_response
from mlx_gen.server.state import AppState

logger = logging.getLogger("mlx_gen.server")


class Answer(Protocol):
    request_id: str
    stream: bool
    include_usage: bool
    failure: APIError | None
    tally: UsageTally
    generated: int

    @property
    def done(self) -> bool: ...

    stream_end: tuple[Frame, ...]

    def start_chunks(self) -> list[dict[str, Any]]: ...

    def frame(self, chunk: dict[str, Any]) -> Frame: ...

    def error_chunk(self, error: APIError) -> dict[str, Any]: ...

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]: ...

    def usage_chunk(self) -> dict[str, Any]: ...

    def failure_chunks(self) -> list[dict[str, Any]]: ...

    def response(self) -> dict[str, Any]: ...


async def respond(
    request: Request,
    state: AppState,
    answer: Answer,
    events: EventStream,
    reservation: Reservation,
    prompt_tokens: int,
) -> Response:
    timed = _timed(events, TokenTimer(state.metrics, info_of(request.scope)))
    close = _closer(request, events, answer, reservation, prompt_tokens)
    if answer.stream:
        frames = _frames(answer, timed, close)
        return sse_response(frames, state.settings, reservation.headers)
    try:
        finished = await _collect_until_disconnect(request, timed, answer.feed)
    finally:
        close()
    if not finished:
        return _client_gone().response(request.scope["path"])
    if answer.failure is not None:
        raise answer.failure
    return JSONResponse(answer.response(), headers=reservation.headers)


async def _timed(
    events: AsyncIterator[GenerationEvent], timer: TokenTimer
) -> AsyncIterator[GenerationEvent]:
    async for event in events:
        timer.on_event(event)
        yield event


def _closer(
    request: Request,
    events: EventStream,
    answer: Answer,
    reservation: Reservation,
    prompt_tokens: int,
) -> Callable[[], None]:
    def close() -> None:
        if not answer.done:
            events.close()  # aborts the engine requests still running
        reservation.settle(prompt_tokens + answer.generated)
        usage = answer.tally.as_dict()
        usage["prompt_tokens"] = usage["prompt_tokens"] or prompt_tokens
        usage["completion_tokens"] = max(usage["completion_tokens"], answer.generated)
        info_of(request.scope).add_usage(usage)

    return close


async def _frames(
    answer: Answer,
    events: AsyncIterator[GenerationEvent],
    on_close: Callable[[], None],
) -> AsyncIterator[Frame]:
    """The frames of a stream. `on_close` runs however the stream ends,
    including when the client disconnects (the generator is then closed)."""
    try:
        for chunk in answer.start_chunks():
            yield answer.frame(chunk)
        async for event in events:
            for chunk in answer.feed(event):
                yield answer.frame(chunk)
            if answer.failure is not None:
                break
        if answer.failure is not None:
            for chunk in answer.failure_chunks():
                yield answer.frame(chunk)
        elif answer.include_usage:
            yield answer.frame(answer.usage_chunk())
        for end in answer.stream_end:
            yield end
    except Exception:
        logger.exception("stream %s failed", answer.request_id)
        yield answer.frame(answer.error_chunk(internal_error()))
        for end in answer.stream_end:
            yield end
    finally:
        on_close()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _collect_until_disconnect(
    request: Request,
    events: AsyncIterator[GenerationEvent],
    on_event: Callable[[GenerationEvent], object],
) -> bool:
    """Consume all events, or stop early if the client leaves first.

    A non-streaming handler has no other way to learn of the disconnect: once
    the body is read, the next ASGI message can only be `http.disconnect`.
    Returns False when the client left (the caller then aborts the request).
    """

    async def consume() -> None:
        async for event in events:
            on_event(event)

    consumer = asyncio.ensure_future(consume())
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait(
            {consumer, watcher}, return_when=asyncio.FIRST_COMPLETED
        )
        if consumer in done:
            consumer.result()
            return True
        return False
    finally:
        for task in (consumer, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _client_gone() -> APIError:
    """Answers a client that left: never delivered, but logged (status 499)."""
    return APIError(499, "The client closed the connection.", code="client_closed")
