"""One chat choice: engine events through the format's parser to OpenAI pieces.

Streaming and non-streaming answers are built from the same parsed events, so
both always agree on reasoning, content and tool calls.
"""

from __future__ import annotations

from typing import Any

from mlx_gen.chat.answer import collect
from mlx_gen.chat.base import (
    ContentDelta,
    OutputParser,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
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


class StopTrimmer:
    """Ends the content at the first stop string, which is not part of it.

    The engine ends generation on a stop string, but the chat format parses
    tokens, and the token that completed the match (and what came with it)
    must not reach the client. Text that could be the start of a stop string
    is held back until it is known not to be one.
    """

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not self.stops:
            return "" if self.stopped else text
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.pending, self.stopped = self.pending[: min(hits)], "", True
            return out
        keep = max(
            (n for s in self.stops for n in range(1, len(s))
             if self.pending.endswith(s[:n])),
            default=0,
        )  # fmt: skip
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class ChatChoice:
    def __init__(
        self, index: int, parser: OutputParser, stops: list[str] | None = None
    ) -> None:
        self.index = index
        self.parser = parser
        self.stop = StopTrimmer(stops or [])
        self.parsed: list[ParsedEvent] = []
        self.finish_reason: str | None = None

    @property
    def reasoning_tokens(self) -> int:
        return self.parser.reasoning_tokens

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        """This step's deltas; on the last event, sets `finish_reason`."""
        parsed = self.parser.feed(event.token_ids)
        if event.finish_reason is not None:
            parsed += self.parser.finish()
        parsed = self._trim(parsed, final=event.finish_reason is not None)
        self.parsed += parsed
        if event.finish_reason is not None:
            called = any(isinstance(e, ToolCallStart) for e in self.parsed)
            reason = event.finish_reason
            self.finish_reason = "tool_calls" if reason == "stop" and called else reason
        return merge_deltas(parsed)

    def _trim(self, events: list[ParsedEvent], final: bool) -> list[ParsedEvent]:
        out = [
            ContentDelta(self.stop.feed(e.text)) if isinstance(e, ContentDelta) else e
            for e in events
        ]
        if final:
            out.append(ContentDelta(self.stop.flush()))
        return out

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
