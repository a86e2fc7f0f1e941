"""The chat-format contract: messages in, prompt tokens out; tokens in, events out.

A format is chosen from the model (harmony when its tokenizer carries the
harmony special tokens, the tokenizer's chat template otherwise), never from a
request. The server uses only what is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Message = dict[str, Any]  # an OpenAI chat message, already validated
Tool = dict[str, Any]  # an OpenAI tool: {"type": "function", "function": {...}}
ReasoningEffort = Literal["low", "medium", "high"]


@dataclass
class RenderedPrompt:
    text: str
    token_ids: list[int]


@dataclass
class ReasoningDelta:
    text: str


@dataclass
class ContentDelta:
    text: str


@dataclass
class ToolCallStart:
    index: int  # position among this answer's tool calls
    id: str
    name: str


@dataclass
class ToolCallArgumentsDelta:
    index: int
    text: str


@dataclass
class MessageEnd:
    channel: str | None = None


ParsedEvent = (
    ReasoningDelta | ContentDelta | ToolCallStart | ToolCallArgumentsDelta | MessageEnd
)


class OutputParser(Protocol):
    """Turns one choice's generated token ids into events. Never raises."""

    reasoning_tokens: int

    def feed(self, token_ids: list[int]) -> list[ParsedEvent]: ...

    def finish(self) -> list[ParsedEvent]: ...


@dataclass
class ParsedAnswer:
    """The non-streaming view of a whole answer."""

    reasoning: str = ""
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning_tokens: int = 0


class ChatFormat(Protocol):
    name: str
    # Generation ends on these (harmony: <|return|> and <|call|>, never <|end|>).
    stop_token_ids: list[int]

    def render(
        self,
        messages: list[Message],
        tools: list[Tool] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        add_generation_prompt: bool = True,
    ) -> RenderedPrompt: ...

    def parser(self) -> OutputParser: ...

    def parse_all(self, token_ids: list[int]) -> ParsedAnswer: ...
