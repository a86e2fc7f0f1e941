"""One chat choice: engine events through the format's parser to OpenAI pieces.

Streaming and non-streaming answers are built from the same parsed events, so
both always agree on reasoning, content and tool calls.
"""

from __future__ import annotations

from typing import Any

from mlx_gen.chat.answer import collect
from mlx_gen.chat.base import (
    ContentDelta,
    MessageEnd,
    OutputParser,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.engine.stop_strings import StopStrings
from mlx_gen.engine.types import GenerationEvent


def delta_of(event: ParsedEvent) -> dict[str, Any] | None:
    if isinstance(event, ReasoningDelta) and event.text:
        return {"reasoning": event.text, "reasoning_content": event.text}
    if isinstance(event, ContentDelta) and event.text:
        return {"content": event.text}
    if isinstance(event, ToolCallStart):
        call = {"name": event.name, "arguments": ""}
        return {
            "tool_calls": [
                {
                    "index": event.index,
                    "id": event.id,
                    "type": "function",
                    "function": call,
                }
            ]
        }
    if isinstance(event, ToolCallArgumentsDelta) and event.text:
        args = {"arguments": event.text}
        return {"tool_calls": [{"index": event.index, "function": args}]}
    return None  # a message end, or an empty text


def merge_deltas(events: list[ParsedEvent]) -> list[dict[str, Any]]:
    """Deltas of one engine step; runs of the same text kind become one."""
    out: list[dict[str, Any]] = []
    for event in events:
        delta = delta_of(event)
        if delta is None:
            continue
        last = out[-1] if out else None
        if (
            last is not None
            and last.keys() == delta.keys()
            and "tool_calls" not in delta
        ):
            for key in delta:
                last[key] += delta[key]
        else:
            out.append(delta)
    return out


class ChatChoice:
    """One choice's answer. It may end before the engine's sequence does: at a
    stop string in the content, or, with `one_call`, once the first tool call
    is complete. The caller then frees the engine's row."""

    def __init__(
        self,
        index: int,
        parser: OutputParser,
        stops: list[str] | None = None,
        one_call: bool = False,
    ) -> None:
        self.index = index
        self.parser = parser
        # Stops apply to the content the user sees: never to reasoning,
        # tool-call arguments or the format's headers.
        self.stops = StopStrings(stops or [])
        self.one_call = one_call
        self.called = False
        self.parsed: list[ParsedEvent] = []
        self.finish_reason: str | None = None

    @property
    def reasoning_tokens(self) -> int:
        return self.parser.reasoning_tokens

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """This step's deltas; sets `finish_reason` once the choice ends.
        What the engine makes after that is dropped."""
        if self.finish_reason is not None:
            return []
        final = event.finish_reason is not None
        parsed = self.parser.feed(event.token_ids)
        if final:
            parsed += self.parser.finish()
        kept, ended = self._until_end(parsed)
        if ended != "stop" and (ended or final):
            # Held back as the possible start of a stop string: content after all.
            kept.append(ContentDelta(self.stops.flush()))
        self.parsed += kept
        if ended is not None:
            self.finish_reason = ended
        elif final:
            reason = event.finish_reason
            self.finish_reason = (
                "tool_calls" if reason == "stop" and self.called else reason
            )
        return merge_deltas(kept)

    def _until_end(
        self, events: list[ParsedEvent]
    ) -> tuple[list[ParsedEvent], str | None]:
        """The events up to the end of this choice, if they hold it, and its
        finish reason."""
        kept: list[ParsedEvent] = []
        for event in events:
            if isinstance(event, ContentDelta):
                text, matched = self.stops.feed(event.text)
                kept.append(ContentDelta(text))
                if matched:
                    return kept, "stop"
                continue
            kept.append(event)
            if isinstance(event, ToolCallStart):
                self.called = True
            elif isinstance(event, MessageEnd) and self.called and self.one_call:
                return kept, "tool_calls"  # the first call's message is complete
        return kept, None

    def message(self) -> dict[str, Any]:
        answer = collect(self.parsed, self.parser.reasoning_tokens)
        reasoning = answer.reasoning or None
        message: dict[str, Any] = {
            "role": "assistant",
            # Only a pure tool-call answer has no content at all (as OpenAI).
            "content": None
            if answer.tool_calls and not answer.content
            else answer.content,
            "reasoning": reasoning,
            "reasoning_content": reasoning,
        }
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        return message
