"""The asyncio side of a request: the async iterator `submit` returns.

The engine thread never touches it directly: it hands batches of events to
the request's event loop with `loop.call_soon_threadsafe(deliver, ...)`, one
call per loop per engine step.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from mlx_gen.engine.types import GenerationEvent


class EventStream:
    """The events of requests submitted together, in order; ends after every
    choice has finished. Each request has `choices` choices; request k's
    choice i arrives as index k * choices + i.

    Closing it, cancelling the task that awaits it, or dropping it before the
    end aborts its requests.
    """

    def __init__(
        self, request_ids: list[str], choices: int, abort: Callable[[str], None]
    ) -> None:
        self.request_ids = request_ids
        self._first = {rid: k * choices for k, rid in enumerate(request_ids)}
        self._open = choices * len(request_ids)
        self._abort = abort
        # A deque and one future, lighter than an asyncio.Queue per token.
        self._events: deque[GenerationEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> GenerationEvent:
        if self._open <= 0:
            raise StopAsyncIteration
        while not self._events:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            except BaseException:  # cancelled while waiting: nobody will read on
                self.close()
                raise
            finally:
                self._waiter = None
        event = self._events.popleft()
        if event.finish_reason is not None:
            self._open -= 1
        return event

    def close(self) -> None:
        """Stop reading; abort the requests if they have not finished."""
        if self._open > 0:
            self._open = 0
            for request_id in self.request_ids:
                self._abort(request_id)

    async def aclose(self) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def push(self, event: GenerationEvent) -> None:
        event.index += self._first[event.request_id]
        self._events.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def deliver(items: list[tuple[EventStream, GenerationEvent]]) -> None:
    """Runs on the event loop: hand a step's events to their streams."""
    for stream, event in items:
        stream.push(event)


Sink = tuple[asyncio.AbstractEventLoop, EventStream]


def hand_over(outbox: list[tuple[Sink, GenerationEvent]]) -> list[str]:
    """Runs on the engine thread: one `call_soon_threadsafe` per event loop.
    Returns the ids of the requests whose loop has closed."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for (loop, stream), event in outbox:
        by_loop.setdefault(loop, []).append((stream, event))
    orphans = []
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(deliver, items)
        except RuntimeError:  # the loop is closed: nobody is listening
            orphans += [event.request_id for _, event in items]
    return list(dict.fromkeys(orphans))
