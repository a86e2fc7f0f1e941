"""Request bodies of the text endpoints: completions, tokenize, detokenize."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlx_gen.server.schemas import (
    MAX_CHOICES,
    MAX_TOKENS_LIMIT,
    ChatMessage,
    Effort,
    Name,
    SamplingFields,
    Strict,
    ToolSpec,
    refuse,
)
from mlx_gen.server.schemas_structured import GuidedFields, ResponseFormat

TokenId = Annotated[int, Field(ge=0, le=(1 << 31) - 1)]
MAX_PROMPT_IDS = 1 << 20


class CompletionRequest(SamplingFields, GuidedFields):
    prompt: str | list[TokenId] | list[str] | list[list[TokenId]] = Field(
        max_length=MAX_PROMPT_IDS
    )
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    echo: bool | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    best_of: int | None = Field(None, ge=1, le=MAX_CHOICES)
    suffix: str | None = None
    response_format: ResponseFormat | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: Any) -> str | list[int]:
        if isinstance(v, list) and v and not isinstance(v[0], int):
            if len(v) != 1:
                raise refuse("one prompt per request (batches are not implemented)")
            v = v[0]
        if not v:
            raise ValueError("the prompt is empty")
        return v

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, v: str | None) -> str | None:
        if v:
            raise refuse("insertion (suffix) is not implemented")
        return v

    @field_validator("logprobs")
    @classmethod
    def _no_echo_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and info.data.get("echo"):
            raise refuse("echo with logprobs (prompt logprobs) is not implemented")
        return v

    @field_validator("best_of")
    @classmethod
    def _best_of_is_n(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and v != (info.data.get("n") or 1):
            raise refuse("best_of other than n is not implemented")
        return v


class TokenizeRequest(Strict):
    """Either chat `messages` (rendered like a chat request) or a raw `prompt`."""

    model: Name
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    tools: list[ToolSpec] | None = Field(None, max_length=128)
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
