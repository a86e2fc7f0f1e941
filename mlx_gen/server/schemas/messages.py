"""The bodies of POST /v1/messages and /v1/messages/count_tokens (Anthropic's
Messages API), and the chat request they stand for.

As with /v1/responses, a Messages request is a chat conversation in other
clothes: its blocks become chat messages, its tools, tool_choice and thinking
their chat equivalents, so the route renders, constrains, admits and answers
it through the chat path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from mlx_gen.server.errors import from_validation_error
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.schemas.common import (
    MAX_STOP,
    MAX_TOKENS_LIMIT,
    MAX_TOOLS,
    Effort,
    Name,
    StopString,
    Strict,
)
from mlx_gen.server.schemas.message_content import (
    CacheControl,
    Message,
    TextBlock,
    by_type,
)
from mlx_gen.server.schemas.structured import check_schema_depth

# Thinking budgets below these map to low, then medium reasoning; the rest to
# high (Claude Code 1.x asked 4000 tokens for "think", 10000 for "think hard",
# 31999 for "ultrathink").
LOW_BUDGET_BELOW = 4096
MEDIUM_BUDGET_BELOW = 16384


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
    # "omitted" (thinking hidden, only signed) is not implemented: refused.
    display: Literal["summarized"] | None = None


class ThinkingAdaptive(Strict):
    type: Literal["adaptive"]
    display: Literal["summarized"] | None = None


class ThinkingDisabled(Strict):
    type: Literal["disabled"]


Thinking = by_type(ThinkingEnabled, ThinkingAdaptive, ThinkingDisabled)


class OutputFormat(Strict):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    _shallow = field_validator("schema_")(check_schema_depth)


class OutputConfig(Strict):
    # GPT-OSS's highest is high.
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: OutputFormat | None = None


def effort_for(
    thinking: ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled | None,
    output: OutputConfig | None,
) -> Effort | None:
    """GPT-OSS always reasons: an effort, else a thinking budget, chooses how
    much; neither (or adaptive thinking) leaves the served model's default."""
    if output is not None and output.effort is not None:
        return "high" if output.effort in ("xhigh", "max") else output.effort
    if thinking is None or isinstance(thinking, ThinkingAdaptive):
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
    output_config: OutputConfig | None = None
    cache_control: CacheControl | None = None

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
            "reasoning_effort": effort_for(self.thinking, self.output_config),
            "response_format": self.response_format(),
        }

    def response_format(self) -> dict[str, Any] | None:
        output = self.output_config
        if output is None or output.format is None:
            return None
        spec = {"name": "output", "schema": output.format.schema_}
        return {"type": "json_schema", "json_schema": spec}

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
    stop_sequences: list[StopString] | None = Field(None, max_length=MAX_STOP)
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
