"""The body of POST /v1/chat/completions: messages, tools, reasoning."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlx_gen.engine.sampling import MAX_TOP_LOGPROBS
from mlx_gen.server.schemas.common import (
    MAX_TOKENS_LIMIT,
    MAX_TOOLS,
    Effort,
    Name,
    SamplingFields,
    Strict,
    refuse,
)
from mlx_gen.server.schemas.structured import (
    GuidedFields,
    ResponseFormat,
    check_schema_depth,
)


class FunctionCall(Strict):
    name: Name
    arguments: str = ""


class ToolCall(Strict):
    id: Name
    type: Literal["function"] = "function"
    function: FunctionCall


def _flatten_content(value: Any) -> Any:
    """Text parts are joined; any other part (images, audio...) is refused."""
    if not isinstance(value, list):
        return value
    texts = []
    for part in value:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise refuse(
                f"content parts of type {kind!r} are not supported, only 'text'"
            )
        if set(part) - {"type", "text"} or not isinstance(part.get("text"), str):
            raise ValueError("a text part is {'type': 'text', 'text': '...'}")
        texts.append(part["text"])
    return "".join(texts)


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    name: Name | None = None
    tool_calls: list[ToolCall] | None = Field(None, max_length=MAX_TOOLS)
    tool_call_id: Name | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    # Echoed back by SDKs that replay an assistant message; nothing to render.
    refusal: None = None
    annotations: list[Any] | None = None
    audio: None = None
    function_call: None = None

    _content = field_validator("content", mode="before")(_flatten_content)

    @model_validator(mode="after")
    def _role_fields(self) -> ChatMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs its tool_call_id")
        if self.content is None and not self.tool_calls and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs content")
        return self

    def to_format(self) -> dict[str, Any]:
        """The plain OpenAI dict the chat format renders."""
        msg = self.model_dump(
            exclude_none=True,
            exclude={"refusal", "annotations", "audio", "function_call"},
        )
        reasoning = msg.pop("reasoning_content", None)
        if reasoning is not None:
            msg.setdefault("reasoning", reasoning)
        msg.setdefault("content", "")
        return msg


class FunctionSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
    description: str | None = Field(None, max_length=65_536)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    _shallow = field_validator("parameters")(check_schema_depth)


class ToolSpec(Strict):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(Strict):
    name: Name


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class ReasoningOptions(Strict):
    effort: Effort | None = None


class ChatCompletionRequest(SamplingFields, GuidedFields):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ToolSpec] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    max_reasoning_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_LIMIT)
    # GPT-OSS makes one call per turn; false also ends a turn that goes on
    # after its first call (server/answers/chat.py).
    parallel_tool_calls: bool | None = None
    reasoning_effort: Effort | None = None
    reasoning: ReasoningOptions | None = None
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    response_format: ResponseFormat | None = None

    @field_validator("reasoning")
    @classmethod
    def _same_effort(cls, v: ReasoningOptions | None, info: ValidationInfo) -> Any:
        flat = info.data.get("reasoning_effort")
        if v is not None and v.effort and flat and v.effort != flat:
            raise ValueError("reasoning.effort and reasoning_effort disagree")
        return v

    @field_validator("top_logprobs")
    @classmethod
    def _needs_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs to be true")
        return v

    @property
    def effort(self) -> Effort | None:
        return self.reasoning_effort or (
            self.reasoning.effort if self.reasoning else None
        )

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def top_logprobs_asked(self) -> int | None:
        """Alternatives per token; None when no logprobs are asked."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def tools_for_format(self) -> list[dict[str, Any]] | None:
        if not self.tools or self.tool_choice == "none":
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]
