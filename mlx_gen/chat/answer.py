"""A whole answer from its events: the non-streaming view of any output parser."""

from __future__ import annotations

from collections.abc import Iterable

from mlx_gen.chat.base import (
    ContentDelta,
    OutputParser,
    ParsedAnswer,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)


def collect(events: Iterable[ParsedEvent], reasoning_tokens: int = 0) -> ParsedAnswer:
    """Join the deltas; tool calls come out in the OpenAI chat-completions shape."""
    reasoning: list[str] = []
    content: list[str] = []
    calls: dict[int, dict] = {}
    for event in events:
        if isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ToolCallStart):
            calls[event.index] = {
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
        elif isinstance(event, ToolCallArgumentsDelta) and event.index in calls:
            calls[event.index]["function"]["arguments"] += event.text
    return ParsedAnswer(
        reasoning="".join(reasoning),
        content="".join(content),
        tool_calls=[calls[i] for i in sorted(calls)],
        reasoning_tokens=reasoning_tokens,
    )


def parse_all(parser: OutputParser, token_ids: list[int]) -> ParsedAnswer:
    """Run a fresh parser over a whole answer's ids."""
    events = parser.feed(token_ids) + parser.finish()
    return collect(events, parser.reasoning_tokens)
