"""The body of POST /v1/completions: raw text (or token ids) in, text out."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from mlx_gen.engine.sampling import MAX_TOP_LOGPROBS
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

Prompt = str | list[TokenId]


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int) and not isinstance(value, bool):
        return "a token id"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


class CompletionRequest(SamplingFields, GuidedFields):
    prompt: str | list[TokenId] | list[str] | list[list[TokenId]] = Field(
        max_length=MAX_PROMPT_IDS
    )
    echo: bool | None = None
    # 0 only with echo (checked after it): the prompt, scored or not; nothing made.
    max_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_LIMIT)
    logprobs: int | None = Field(None, ge=0, le=MAX_COMPLETION_LOGPROBS)
    # vLLM's extension: the prompt's tokens scored, with this many alternatives.
    prompt_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    best_of: int | None = Field(None, ge=1, le=MAX_CHOICES)
    suffix: str | None = None
    response_format: ResponseFormat | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_kind(cls, v: Any) -> Any:
        """A batch is all strings or all lists of token ids, and a prompt of
        token ids all ids: say which element breaks the rule."""
        if isinstance(v, list) and v:
            first = _kind(v[0])
            for i, one in enumerate(v):
                if _kind(one) != first:
                    raise ValueError(
                        f"prompt[{i}] is {_kind(one)} but prompt[0] is {first}"
                    )
        return v

    @field_validator("prompt")
    @classmethod
    def _prompts_not_empty(cls, v: Any) -> Any:
        if not v:
            raise ValueError("the prompt is empty")
        if isinstance(v, list) and not isinstance(v[0], int):
            for i, one in enumerate(v):
                if not one:
                    raise ValueError(f"prompt[{i}] is empty")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _nothing_only_with_echo(cls, v: int | None, info: ValidationInfo) -> Any:
        if v == 0 and not info.data.get("echo"):
            raise ValueError("0 is allowed only with echo (the prompt, scored)")
        return v

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, v: str | None) -> str | None:
        if v:
            raise refuse("insertion (suffix) is not implemented")
        return v

    @field_validator("prompt_logprobs")
    @classmethod
    def _not_streamed(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and info.data.get("stream"):
            raise ValueError("not available when stream is true (as in vLLM)")
        return v

    @field_validator("best_of")
    @classmethod
    def _best_of_is_n(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and v != (info.data.get("n") or 1):
            raise refuse("best_of other than n is not implemented")
        return v

    @property
    def prompts(self) -> list[Prompt]:
        """The prompts of the request: one, or a batch."""
        v = self.prompt
        if isinstance(v, str) or isinstance(v[0], int):
            return [v]
        return list(v)

    @property
    def prompt_logprobs_asked(self) -> int | None:
        """Alternatives per prompt token, for echo's logprobs or vLLM's
        prompt_logprobs, whichever asks more; None when neither asks."""
        asked = [self.prompt_logprobs]
        if self.echo:
            asked.append(self.logprobs)
        return max((k for k in asked if k is not None), default=None)

    @property
    def top_logprobs_asked(self) -> int | None:
        """Alternatives per token; None when no logprobs are asked."""
        return self.logprobs

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_tokens
