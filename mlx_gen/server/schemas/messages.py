"""The bodies of POST /v1/messages and /v1/messages/count_tokens (Anthropic's
Messages API), and the chat request they stand for.

As with /v1/responses, a Messages request is a chat conversation in other
clothes: its blocks become chat messages, its tools, tool_choice and thinking
their chat equivalents, so the route renders, constrains, admits and answers
it through the chat path.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mlx_gen.server.errors import from_validation_error
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.schemas.common import (
    MAX_TOKENS_LIMIT,
    MAX_TOOLS,
    Effort,
    Name,
    StopString,
    Strict,
)
from mlx_gen.server.schemas.structured import check_schema_depth

MAX_STOP_SEQUENCES = 16
# Thinking budgets below these map to low, then medium reasoning; the rest to
# high (Claude Code's "think" is 4000 tokens, "think hard" 10000, "ultrathink"
# 31999).
LOW_BUDGET_BELOW = 4096
MEDIUM_BUDGET_BELOW = 16384
# What an error result says to the model, which has no error flag.
TOOL_ERROR_PREFIX = "Error: "


def by_type(*models: type[Strict]) -> Any:
    """The union of `models` chosen by their `type` field. An error's path
    names the member by its class, as a plain union's does (loc_to_param
    leaves it out); an unknown type is refused with the known ones."""
    kinds = {get_args(m.model_fields["type"].annotation)[0]: m for m in models}

    def member(value: Any) -> str | None:
        kind = (
            value.get("type")
            if isinstance(value, dict)
            else getattr(value, "type", None)
        )
        model = kinds.get(kind) if isinstance(kind, str) else None
        return model.__name__ if model else None

    known = ", ".join(repr(kind) for kind in kinds)
    return Annotated[
        Union[tuple(Annotated[m, Tag(m.__name__)] for m in models)],  # noqa: UP007
        Discriminator(
            member,
            custom_error_type="unsupported_parameter",
            custom_error_message=f"the type must be one of {known}",
        ),
    ]


class CacheControl(Strict):
    """Accepted and ignored: mlx-gen's prefix cache needs no breakpoints."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(Strict):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None
    citations: None = None  # echoed back in a replayed answer; never made


class ThinkingBlock(Strict):
    type: Literal["thinking"]
    thinking: str
    # Any signature is taken: GPT-OSS's reasoning is plain text, nothing to check.
    signature: str | None = None


class ToolUseBlock(Strict):
    type: Literal["tool_use"]
    id: Name
    name: Name
    input: dict[str, Any]
    cache_control: CacheControl | None = None


class ToolResultBlock(Strict):
    type: Literal["tool_result"]
    tool_use_id: Name
    content: str | list[TextBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None

    @property
    def text(self) -> str:
        content = self.content or ""
        if not isinstance(content, str):
            content = "".join(block.text for block in content)
        return TOOL_ERROR_PREFIX + content if self.is_error else content


Block = by_type(TextBlock, ThinkingBlock, ToolUseBlock, ToolResultBlock)
USER_BLOCKS = (TextBlock, ToolResultBlock)
ASSISTANT_BLOCKS = (TextBlock, ThinkingBlock, ToolUseBlock)


class Message(Strict):
    role: Literal["user", "assistant"]
    content: str | list[Block]

    @model_validator(mode="after")
    def _blocks_of_the_role(self) -> Message:
        allowed = USER_BLOCKS if self.role == "user" else ASSISTANT_BLOCKS
        for block in self.blocks:
            if not isinstance(block, allowed):
                raise ValueError(f"a {self.role} message has no {block.type} blocks")
        return self

    @property
    def blocks(self) -> list[Any]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)

    def to_chat(self) -> list[dict[str, Any]]:
        """The chat messages of this one: a user's tool results become tool
        messages, an assistant's blocks one assistant message."""
        if self.role == "assistant":
            return [assistant_message(self.blocks)]
        out: list[dict[str, Any]] = []
        for block in self.blocks:
            if isinstance(block, ToolResultBlock):
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.tool_use_id,
                        "content": block.text,
                    }
                )
            elif out and out[-1]["role"] == "user":
                out[-1]["content"] += block.text
            else:
                out.append({"role": "user", "content": block.text})
        return out


def assistant_message(blocks: list[Any]) -> dict[str, Any]:
    """One assistant turn: its thinking, text and tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    thinking = [b.thinking for b in blocks if isinstance(b, ThinkingBlock)]
    if thinking:
        message["reasoning"] = "".join(thinking)
    message["content"] = "".join(b.text for b in blocks if isinstance(b, TextBlock))
    calls = [
        {
            "id": b.id,
            "type": "function",
            # Compact, as GPT-OSS writes arguments.
            "function": {
                "name": b.name,
                "arguments": json.dumps(
                    b.input, ensure_ascii=False, separators=(",", ":")
                ),
            },
        }
        for b in blocks
        if isinstance(b, ToolUseBlock)
    ]
    if calls:
        message["tool_calls"] = calls
    return message


class Tool(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
    description: str | None = Field(None, max_length=65_536)
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: CacheControl | None = None

    _shallow = field_validator("input_schema")(check_schema_depth)


class ToolChoice(Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: Name | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _name_with_tool(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise ValueError("a name is given with type 'tool', only")
        return self

    def for_chat(self) -> Any:
        if self.type == "tool":
            return {"type": "function", "function": {"name": self.name}}
        return {"auto": "auto", "any": "required", "none": "none"}[self.type]


class ThinkingEnabled(Strict):
    type: Literal["enabled"]
    # Anthropic's own lower bound.
    budget_tokens: int = Field(ge=1024, le=MAX_TOKENS_LIMIT)


class ThinkingDisabled(Strict):
    type: Literal["disabled"]


Thinking = by_type(ThinkingEnabled, ThinkingDisabled)


def effort_for(thinking: ThinkingEnabled | ThinkingDisabled | None) -> Effort | None:
    """GPT-OSS always reasons: a thinking budget chooses how much; no
    `thinking` leaves the served model's default."""
    if thinking is None:
        return None
    if isinstance(thinking, ThinkingDisabled):
        return "low"
    if thinking.budget_tokens < LOW_BUDGET_BELOW:
        return "low"
    return "medium" if thinking.budget_tokens < MEDIUM_BUDGET_BELOW else "high"


class CountTokensRequest(Strict):
    """What a prompt is made of: the body of /v1/messages/count_tokens."""

    model: Name
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None

    @model_validator(mode="after")
    def _no_prefill(self) -> CountTokensRequest:
        # Harmony cannot continue an assistant turn from given text.
        if self.messages[-1].role == "assistant":
            raise ValueError(
                "the last message must be the user's: continuing an assistant "
                "message (prefill) is not supported"
            )
        return self

    def system_messages(self) -> list[dict[str, Any]]:
        system = self.system
        if not isinstance(system, str):
            system = "".join(block.text for block in system or [])
        return [{"role": "system", "content": system}] if system else []

    def chat_fields(self) -> dict[str, Any]:
        choice = self.tool_choice
        return {
            "model": self.model,
            "messages": self.system_messages()
            + [m for message in self.messages for m in message.to_chat()],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in self.tools or []
            ]
            or None,
            "tool_choice": choice.for_chat() if choice else None,
            "parallel_tool_calls": False
            if choice and choice.disable_parallel_tool_use
            else None,
            "reasoning_effort": effort_for(self.thinking),
        }

    def to_chat(self) -> ChatCompletionRequest:
        """The chat request this one stands for (its errors: a 400 as usual)."""
        try:
            return ChatCompletionRequest.model_validate(self.chat_fields())
        except ValidationError as exc:
            raise from_validation_error(exc) from None


class Metadata(Strict):
    user_id: str | None = Field(None, max_length=256)


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1, le=MAX_TOKENS_LIMIT)
    stop_sequences: list[StopString] | None = Field(None, max_length=MAX_STOP_SEQUENCES)
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1_000_000)
    metadata: Metadata | None = None
    stream: bool | None = None
    # mlx-gen's extensions, as on /v1/responses.
    seed: int | None = Field(None, ge=0, le=(1 << 63) - 1)
    max_reasoning_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_LIMIT)

    def chat_fields(self) -> dict[str, Any]:
        return super().chat_fields() | {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "seed": self.seed,
            "max_reasoning_tokens": self.max_reasoning_tokens,
            "user": self.metadata.user_id if self.metadata else None,
        }
