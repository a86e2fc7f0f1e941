"""Delivering an answer, streamed or whole, and closing its books.

However a request ends (done, failed, client gone), it is aborted in the
engine if still running, its unused rate-limit tokens are given back and its
usage goes to the access log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.context import info_of
from mlx_gen.server.generation import client_gone, collect_until_disconnect
from mlx_gen.server.limits import Reservation
from mlx_gen.server.metrics import TokenTimer
from mlx_gen.server.outputs import UsageTally
from mlx_gen.server.state import AppState
from mlx_gen.server.streaming import StreamedAnswer, sse_response


class Answer(StreamedAnswer, Protocol):
    tally: UsageTally
    generated: int

    @property
    def done(self) -> bool: ...

    def response(self) -> dict[str, Any]: ...


async def _timed(
    events: AsyncIterator[GenerationEvent], timer: TokenTimer
) -> AsyncIterator[GenerationEvent]:
    async for event in events:
        timer.on_event(event)
        yield event


def _closer(
    request: Request,
    state: AppState,
    answer: Answer,
    reservation: Reservation,
    prompt_tokens: int,
) -> Callable[[], None]:
    def close() -> None:
        if not answer.done:
            state.served.engine.abort(answer.request_id)
        reservation.settle(prompt_tokens + answer.generated)
        usage = answer.tally.as_dict()
        usage["prompt_tokens"] = usage["prompt_tokens"] or prompt_tokens
        usage["completion_tokens"] = max(usage["completion_tokens"], answer.generated)
        info_of(request.scope).add_usage(usage)

    return close


async def respond(
    request: Request,
    state: AppState,
    answer: Answer,
    events: AsyncIterator[GenerationEvent],
    reservation: Reservation,
    prompt_tokens: int,
    stream: bool,
) -> Response:
    timed = _timed(events, TokenTimer(state.metrics, info_of(request.scope)))
    close = _closer(request, state, answer, reservation, prompt_tokens)
    if stream:
        return sse_response(answer, timed, close, state.settings, reservation.headers)
    try:
        finished = await collect_until_disconnect(request, timed, answer.feed)
    finally:
        close()
    if not finished:
        return client_gone().response()
    if answer.failure is not None:
        raise answer.failure
    return JSONResponse(answer.response(), headers=reservation.headers)
