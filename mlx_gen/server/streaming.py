"""Server-sent events: an answer's chunks as `data:` frames, then `[DONE]`.

Order of a stream: the role chunk of each choice, the deltas, a chunk with
each choice's finish_reason, the usage chunk (`choices: []`) when asked, then
`data: [DONE]`. An error after the 200 went out is a `data: {"error": ...}`
frame (the SDKs raise it) followed by `[DONE]`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from sse_starlette import EventSourceResponse

from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.errors import APIError, internal_error
from mlx_gen.settings import Settings

logger = logging.getLogger("mlx_gen.server")


class StreamedAnswer(Protocol):
    request_id: str
    failure: APIError | None
    include_usage: bool

    def start_chunks(self) -> list[dict[str, Any]]: ...

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]: ...

    def usage_chunk(self) -> dict[str, Any]: ...


# json.dumps leaves U+0085, U+2028 and U+2029 raw, and clients that split lines
# the way str.splitlines does (httpx's iter_lines among them) cut a frame there.
# Escaped, the JSON means the same and each frame stays one line.
_LINE_BREAKS = str.maketrans(
    {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _data(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS)


async def frames(
    answer: StreamedAnswer,
    events: AsyncIterator[GenerationEvent],
    on_close: Callable[[], None],
) -> AsyncIterator[str]:
    """The data of each frame. `on_close` runs however the stream ends,
    including when the client disconnects (the generator is then closed)."""
    try:
        for chunk in answer.start_chunks():
            yield _data(chunk)
        async for event in events:
            for chunk in answer.feed(event):
                yield _data(chunk)
            if answer.failure is not None:
                break
        if answer.failure is not None:
            yield _data(answer.failure.body())
        elif answer.include_usage:
            yield _data(answer.usage_chunk())
        yield "[DONE]"
    except Exception:
        logger.exception("stream %s failed", answer.request_id)
        yield _data(internal_error().body())
        yield "[DONE]"
    finally:
        on_close()


def sse_response(
    answer: StreamedAnswer,
    events: AsyncIterator[GenerationEvent],
    on_close: Callable[[], None],
    settings: Settings,
    headers: dict[str, str],
) -> EventSourceResponse:
    return EventSourceResponse(
        frames(answer, events, on_close),
        headers=headers,
        # Comment lines keep proxies and clients from timing out a long prefill.
        ping=settings.sse_keepalive_seconds,
        sep="\n",
        # On SIGTERM a stream in flight may finish within the drain timeout.
        shutdown_grace_period=settings.drain_timeout,
    )
