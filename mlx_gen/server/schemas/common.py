"""What every request body shares: strictness, the sampling fields, the limits.

Unknown fields are refused (extra="forbid") and fields we parse but do not
implement raise an `unsupported_parameter` error, so a client never believes
a setting took effect when it did not. These schemas are the one place a
request's numbers are checked; the engine trusts what it is given. Limits
that depend on the served model or the settings (vocabulary, context, number
of messages) are checked by the routes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

MAX_TOKENS_LIMIT = 1 << 20
MAX_CHOICES = 16
# OpenAI takes 4 stop sequences; evaluation harnesses send more (lm-evaluation-
# harness adds the end-of-text string to a task's own stops) and vLLM takes any
# number. 16 bounds the matching work per token.
MAX_STOP = 16
MAX_COMPLETION_LOGPROBS = 5  # the legacy endpoint's own cap
MAX_LOGIT_BIAS = 1024
MAX_TOOLS = 128
MAX_PROMPT_IDS = 1 << 20

Effort = Literal["low", "medium", "high"]
Name = Annotated[str, Field(min_length=1, max_length=256)]
StopString = Annotated[str, Field(min_length=1, max_length=512)]
TokenId = Annotated[int, Field(ge=0, le=(1 << 31) - 1)]


def refuse(detail: str) -> PydanticCustomError:
    """Raise from a validator: becomes a 400 `unsupported_parameter`."""
    return PydanticCustomError("unsupported_parameter", detail)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(Strict):
    include_usage: bool | None = None


class SamplingFields(Strict):
    """Fields shared by chat and text completions."""

    model: Name
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1_000_000)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=2.0)
    logit_bias: (
        dict[
            Annotated[str, Field(pattern=r"^\d{1,9}$")],
            Annotated[float, Field(ge=-100, le=100)],
        ]
        | None
    ) = Field(None, max_length=MAX_LOGIT_BIAS)
    seed: int | None = Field(None, ge=0, le=(1 << 63) - 1)
    stop: StopString | list[StopString] | None = None
    n: int | None = Field(None, ge=1, le=MAX_CHOICES)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)
    # mlx-gen's own: false keeps this request out of speculative decoding.
    speculative: bool | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences are allowed")
        return stops

    @field_validator("stream_options")
    @classmethod
    def _needs_stream(cls, v: StreamOptions | None, info: ValidationInfo) -> Any:
        if v is not None and not info.data.get("stream"):
            raise ValueError("only allowed when stream is true")
        return v
