"""An answer of one choice sent as typed events (Responses', Anthropic's):
a builder turns the parsed events into the API's items and their events,
and the whole answer runs the same builder over the whole turn, so the
streamed answer's final form is the whole one's."""

from __future__ import annotations

from typing import Any, Protocol

from mlx_gen.chat.base import ParsedEvent
from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.answers.chat import ChatAnswer


class Builder(Protocol):
    def feed(self, event: ParsedEvent) -> list[dict[str, Any]]: ...


class TypedEventsAnswer(ChatAnswer):
    streamed: Builder

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """The events of one engine event when streamed: its parsed events
        built, the open item closed once the choice ends, the answer's last
        events once the request is done."""
        step = self.advance(event)
        if step is None or not self.stream:
            return []
        parsed, ends_now = step
        events = [e for p in parsed for e in self.streamed.feed(p)]
        if ends_now:
            events += self.close_streamed()
        if self.done:
            events += self.last_events(self.response())
        return events

    def close_streamed(self) -> list[dict[str, Any]]:
        """The events that end the streamed builder's open item."""
        raise NotImplementedError

    def last_events(self, whole: dict[str, Any]) -> list[dict[str, Any]]:
        """The events after the last item, from the whole answer."""
        raise NotImplementedError
