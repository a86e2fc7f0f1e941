"""The body of POST /v1/responses, and the chat request it stands for.

A Responses request is a chat conversation in other clothes: its input items
become chat messages, its tools and text format their chat equivalents, so
the route renders, constrains, admits and answers it through the chat path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from mlx_gen.server.errors import from_validation_error
from mlx_gen.server.schemas.chat import ChatCompletionRequest, FunctionSpec
from mlx_gen.server.schemas.common import (
    MAX_TOKENS_LIMIT,
    MAX_TOOLS,
    Effort,
    Name,
    Strict,
    refuse,
)

MAX_METADATA = 16
# `include` values asking for what mlx-gen never makes (its tools' outputs,
# images, encrypted reasoning: GPT-OSS's is plain text, in the item's
# content): nothing to add, so they are taken. Logprobs would be missing
# silently: refused.
INCLUDABLE = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


class InputText(Strict):
    type: Literal["input_text", "output_text"]
    text: str
    # Echoed back when a client replays an earlier output item.
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class MessageItem(Strict):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]
    id: str | None = None
    status: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionCallItem(Strict):
    type: Literal["function_call"]
    call_id: Name
    name: Name
    arguments: str = ""
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Strict):
    type: Literal["function_call_output"]
    call_id: Name
    output: str
    id: str | None = None
    status: str | None = None


class ReasoningText(Strict):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(Strict):
    type: Literal["reasoning"]
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    id: str | None = None
    status: str | None = None
    encrypted_content: None = None


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem


class FunctionTool(FunctionSpec):
    type: Literal["function"]


class NamedFunctionChoice(Strict):
    type: Literal["function"]
    name: Name


class TextFormat(Strict):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class TextOptions(Strict):
    format: TextFormat | None = None
    # A hint GPT-OSS has no setting for: taken, and left to the model.
    verbosity: Literal["low", "medium", "high"] | None = None


class StreamOptions(Strict):
    # Obfuscation pads OpenAI's events; mlx-gen's are sent as they are.
    include_obfuscation: bool | None = None


class ReasoningRequest(Strict):
    effort: Effort | None = None
    # GPT-OSS writes no summaries: the reasoning item's summary stays empty.
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(Strict):
    model: Name
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[FunctionTool] | None = Field(None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningRequest | None = None
    # mlx-gen's extension, as on chat: bounds the analysis before the answer.
    max_reasoning_tokens: int | None = Field(None, ge=0, le=MAX_TOKENS_LIMIT)
    seed: int | None = Field(None, ge=0, le=(1 << 63) - 1)
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    text: TextOptions | None = None
    metadata: dict[str, str] | None = Field(None, max_length=MAX_METADATA)
    user: str | None = Field(None, max_length=256)
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: Name | None = None
    # Taken and ignored: they change nothing an answer holds (README, "The
    # Responses API").
    include: list[INCLUDABLE] | None = Field(None, max_length=16)
    prompt_cache_key: str | None = Field(None, max_length=1024)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "priority", "scale"] | None = None
    safety_identifier: str | None = Field(None, max_length=256)
    stream_options: StreamOptions | None = None
    # Only their no-op values: the rest would be silently broken.
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @field_validator("include")
    @classmethod
    def _no_logprobs(cls, v: list[str] | None) -> list[str] | None:
        if v and "message.output_text.logprobs" in v:
            raise refuse("logprobs are not implemented on /v1/responses")
        return v

    @field_validator("truncation")
    @classmethod
    def _no_truncation(cls, v: str | None) -> str | None:
        if v == "auto":
            raise refuse(
                "'auto' (dropping the conversation's start to fit the context) "
                "is not implemented; a prompt too long is refused"
            )
        return v

    @field_validator("top_logprobs")
    @classmethod
    def _no_top_logprobs(cls, v: int | None) -> int | None:
        if v:
            raise refuse("logprobs are not implemented on /v1/responses")
        return v

    def input_messages(self) -> list[dict[str, Any]]:
        """The input items as chat messages: a `reasoning` item goes with the
        assistant turn that follows it, consecutive function calls of one
        turn share one assistant message."""
        items = (
            [MessageItem(role="user", content=self.input)]
            if isinstance(self.input, str)
            else self.input
        )
        out: list[dict[str, Any]] = []
        reasoning: str | None = None
        for item in items:
            if isinstance(item, ReasoningItem):
                reasoning = "".join(part.text for part in item.content or [])
            elif isinstance(item, FunctionCallOutputItem):
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": item.call_id,
                        "content": item.output,
                    }
                )
            elif isinstance(item, FunctionCallItem):
                call = {
                    "id": item.call_id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
                last = out[-1] if out else None
                if last and last["role"] == "assistant" and "tool_calls" in last:
                    last["tool_calls"].append(call)
                    continue
                out.append({"role": "assistant", "tool_calls": [call]})
            else:
                out.append({"role": item.role, "content": item.text})
            if out and out[-1]["role"] == "assistant" and reasoning is not None:
                out[-1]["reasoning"] = reasoning
                reasoning = None
        return out

    def instruction_messages(self) -> list[dict[str, Any]]:
        if not self.instructions:
            return []
        return [{"role": "developer", "content": self.instructions}]

    def input_items(self) -> list[dict[str, Any]]:
        if isinstance(self.input, str):
            text = [{"type": "input_text", "text": self.input}]
            return [{"type": "message", "role": "user", "content": text}]
        return [
            {"type": "message"} | item.model_dump(exclude_none=True)
            if isinstance(item, MessageItem)
            else item.model_dump(exclude_none=True)
            for item in self.input
        ]

    def response_format(self) -> dict[str, Any] | None:
        fmt = self.text.format if self.text else None
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return {"type": "json_object"}
        spec = {"name": fmt.name or "response", "schema": fmt.schema_ or {}}
        if fmt.description is not None:
            spec["description"] = fmt.description
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}

    def to_chat(self, history: list[dict[str, Any]]) -> ChatCompletionRequest:
        """The chat request this one stands for, after the `history` of the
        response it continues (its errors: a 400 as usual)."""
        choice: Any = self.tool_choice
        if isinstance(choice, NamedFunctionChoice):
            choice = {"type": "function", "function": {"name": choice.name}}
        fields = {
            "model": self.model,
            "messages": self.instruction_messages() + history + self.input_messages(),
            "tools": [
                {
                    "type": "function",
                    "function": t.model_dump(exclude_none=True, exclude={"type"}),
                }
                for t in self.tools or []
            ]
            or None,
            "tool_choice": choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "reasoning_effort": self.reasoning.effort if self.reasoning else None,
            "max_completion_tokens": self.max_output_tokens,
            "max_reasoning_tokens": self.max_reasoning_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "response_format": self.response_format(),
            "user": self.user,
        }
        try:
            return ChatCompletionRequest.model_validate(fields)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
