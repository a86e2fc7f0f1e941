"""The conversation of a Messages request (Anthropic's content blocks), as
the chat messages it stands for."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Discriminator, Tag, model_validator

from mlx_gen.server.schemas.common import Name, Strict

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
