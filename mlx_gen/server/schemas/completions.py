"""The body of POST /v1/completions: raw text (or token ids) in, text out."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from mlx_gen.server.schemas.common import (
    MAX_CHOICES,
    MAX_COMPLETION_LOGPROBS,
    MAX_PROMPT_IDS,
    MAX_TOKENS_LIMIT,
    SamplingFields,
    TokenId,
    refuse,
)
from mlx_gen.server.schemas.structured import GuidedFields, ResponseFormat


class CompletionRequest(SamplingFields, GuidedFields):
    prompt: str | list[TokenId] | list[str] | list[list[TokenId]] = Field(
        max_length=MAX_PROMPT_IDS
    )
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    echo: bool | None = None
    logprobs: int | None = Field(None, ge=0, le=MAX_COMPLETION_LOGPROBS)
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

    @property
    def top_logprobs_asked(self) -> int | None:
        """Alternatives per token; None when no logprobs are asked."""
        return self.logprobs

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_tokens
