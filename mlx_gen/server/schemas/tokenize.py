"""The bodies of POST /tokenize and POST /detokenize."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlx_gen.server.schemas.chat import ChatMessage, ToolSpec
from mlx_gen.server.schemas.common import (
    MAX_PROMPT_IDS,
    MAX_TOOLS,
    Effort,
    Name,
    Strict,
    TokenId,
)


class TokenizeRequest(Strict):
    """Either chat `messages` (rendered like a chat request) or a raw `prompt`."""

    model: Name
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    tools: list[ToolSpec] | None = Field(None, max_length=MAX_TOOLS)
    reasoning_effort: Effort | None = None
    add_generation_prompt: bool | None = None
    prompt: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_alone(cls, v: str | None, info: ValidationInfo) -> str | None:
        chat_only = ("tools", "reasoning_effort", "add_generation_prompt")
        if v is not None and any(info.data.get(k) is not None for k in chat_only):
            raise ValueError(", ".join(chat_only) + " go with 'messages', not 'prompt'")
        return v

    @model_validator(mode="after")
    def _one_form(self) -> TokenizeRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' and 'prompt'")
        return self


class DetokenizeRequest(Strict):
    model: Name
    tokens: list[TokenId] = Field(max_length=MAX_PROMPT_IDS)
