"""Responses output items from parsed events, in the order the model made
them, with the stream events that build each item.

The whole response runs the same builder over all of a turn's events, so a
streamed response's final output is the whole one's, item for item.
"""

from __future__ import annotations

import copy
from typing import Any

from mlx_gen.chat.base import (
    ContentDelta,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)

Event = dict[str, Any]

# Item type → (id prefix, content part type, stream event prefix).
TEXT_ITEMS = {
    "reasoning": ("rs", "reasoning_text", "response.reasoning_text"),
    "message": ("msg", "output_text", "response.output_text"),
}


class OutputItems:
    def __init__(self, base_id: str) -> None:
        self.base_id = base_id
        self.items: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None

    def feed(self, event: ParsedEvent) -> list[Event]:
        """The stream events of one parsed event."""
        if isinstance(event, ReasoningDelta | ContentDelta) and event.text:
            kind = "reasoning" if isinstance(event, ReasoningDelta) else "message"
            return self._text(kind, event.text)
        if isinstance(event, ToolCallStart):
            call = {
                "type": "function_call",
                "call_id": event.id,
                "name": event.name,
                "arguments": "",
            }
            return self.close() + self._add("fc", call)
        if isinstance(event, ToolCallArgumentsDelta) and event.text:
            if self.open is None or self.open["type"] != "function_call":
                return []
            self.open["arguments"] += event.text
            return [self._about("response.function_call_arguments.delta", event.text)]
        # A message end closes nothing: the next item or the turn's end does,
        # so the last item of a turn cut short is closed as incomplete.
        return []

    def close(self, status: str = "completed") -> list[Event]:
        """End the open item, if any: its `.done` events."""
        item, self.open = self.open, None
        if item is None:
            return []
        item["status"] = status
        index = len(self.items) - 1
        if item["type"] == "function_call":
            done = {"type": "response.function_call_arguments.done"}
            events = [done | _where(item, index) | {"arguments": item["arguments"]}]
        else:
            _, _, prefix = TEXT_ITEMS[item["type"]]
            part = item["content"][0]
            events = [
                {"type": f"{prefix}.done"}
                | _where(item, index)
                | {"content_index": 0, "text": part["text"]}
                | ({"logprobs": []} if item["type"] == "message" else {}),
                {"type": "response.content_part.done"}
                | _where(item, index)
                | {"content_index": 0, "part": copy.deepcopy(part)},
            ]
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        )
        return events

    def _add(self, prefix: str, fields: dict[str, Any]) -> list[Event]:
        index = len(self.items)
        item = {"id": f"{prefix}_{self.base_id}_{index}", **fields}
        item["status"] = "in_progress"
        self.items.append(item)
        self.open = item
        return [
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": copy.deepcopy(item),
            }
        ]

    def _text(self, kind: str, text: str) -> list[Event]:
        events: list[Event] = []
        if self.open is None or self.open["type"] != kind:
            prefix, part_type, _ = TEXT_ITEMS[kind]
            fields: dict[str, Any] = {"type": kind, "content": []}
            if kind == "reasoning":
                fields["summary"] = []
            else:
                fields["role"] = "assistant"
            events = self.close() + self._add(prefix, fields)
            part: dict[str, Any] = {"type": part_type, "text": ""}
            if kind == "message":
                part |= {"annotations": [], "logprobs": []}
            self.open["content"].append(part)  # type: ignore[index]
            added = {"type": "response.content_part.added"}
            where = _where(self.open, len(self.items) - 1)  # type: ignore[arg-type]
            events.append(added | where | {"content_index": 0, "part": dict(part)})
        self.open["content"][0]["text"] += text  # type: ignore[index]
        delta = self._about(f"{TEXT_ITEMS[kind][2]}.delta", text)
        delta["content_index"] = 0
        if kind == "message":
            delta["logprobs"] = []
        return [*events, delta]

    def _about(self, kind: str, delta: str) -> Event:
        where = _where(self.open, len(self.items) - 1)  # type: ignore[arg-type]
        return {"type": kind} | where | {"delta": delta}


def _where(item: dict[str, Any], index: int) -> Event:
    return {"item_id": item["id"], "output_index": index}
