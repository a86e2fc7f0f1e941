"""Anthropic content blocks from parsed events, in the order the model made
them, with the stream events that build each block.

The whole message runs the same builder over all of a turn's events, so a
streamed message's final content is the whole one's, block for block.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from mlx_gen.chat.base import (
    ContentDelta,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)

Event = dict[str, Any]
DELTA_TYPES = {"thinking": "thinking_delta", "text": "text_delta"}


def signature_of(thinking: str) -> str:
    """A thinking block's signature: a digest of its text. GPT-OSS's reasoning
    is plain text, so there is nothing to encrypt; given back, any signature
    is taken."""
    return hashlib.sha256(thinking.encode("utf-8")).hexdigest()


def tool_use_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


def input_of(arguments: str) -> dict[str, Any]:
    """A tool call's input: its arguments when they are a JSON object, else
    empty (unconstrained, a model may write anything there)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ContentBlocks:
    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None
        self.arguments = ""  # the open tool_use block's JSON so far

    def feed(self, event: ParsedEvent) -> list[Event]:
        """The stream events of one parsed event."""
        if isinstance(event, ReasoningDelta | ContentDelta) and event.text:
            kind = "thinking" if isinstance(event, ReasoningDelta) else "text"
            return self._text(kind, event.text)
        if isinstance(event, ToolCallStart):
            block = {
                "type": "tool_use",
                "id": tool_use_id(event.id),
                "name": event.name,
                "input": {},
            }
            return self.close() + self._start(block)
        if isinstance(event, ToolCallArgumentsDelta) and event.text:
            if self.open is None or self.open["type"] != "tool_use":
                return []
            self.arguments += event.text
            return [
                self._delta({"type": "input_json_delta", "partial_json": event.text})
            ]
        # A message end closes nothing: the next block or the turn's end does.
        return []

    def close(self) -> list[Event]:
        """End the open block, if any: a thinking block gets its signature."""
        block, self.open = self.open, None
        if block is None:
            return []
        index = len(self.blocks) - 1
        events = []
        if block["type"] == "thinking":
            block["signature"] = signature_of(block["thinking"])
            signed = {"type": "signature_delta", "signature": block["signature"]}
            events.append(self._delta(signed, index))
        elif block["type"] == "tool_use":
            block["input"] = input_of(self.arguments)
            self.arguments = ""
        events.append({"type": "content_block_stop", "index": index})
        return events

    def _start(self, block: dict[str, Any]) -> list[Event]:
        self.blocks.append(block)
        self.open = block
        start = {"type": "content_block_start", "index": len(self.blocks) - 1}
        return [start | {"content_block": copy.deepcopy(block)}]

    def _text(self, kind: str, text: str) -> list[Event]:
        events: list[Event] = []
        if self.open is None or self.open["type"] != kind:
            block = {"type": kind, kind: ""}
            if kind == "thinking":
                block["signature"] = ""
            events = self.close() + self._start(block)
        self.open[kind] += text  # type: ignore[index]
        return [*events, self._delta({"type": DELTA_TYPES[kind], kind: text})]

    def _delta(self, delta: Event, index: int | None = None) -> Event:
        at = len(self.blocks) - 1 if index is None else index
        return {"type": "content_block_delta", "index": at, "delta": delta}
