"""A Responses answer: the chat answer's one choice as a `response` object,
whole or as the Responses stream events (each with its `sequence_number`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.answers.response_items import OutputItems
from mlx_gen.server.answers.typed_events import TypedEventsAnswer
from mlx_gen.server.schemas.responses import ResponsesRequest

INCOMPLETE_REASONS = {"length": "max_output_tokens"}


# Keeps a finished response with its assistant message (for continuations).
Keeper = Callable[[dict[str, Any], dict[str, Any]], None]


class ResponsesAnswer(TypedEventsAnswer):
    def __init__(
        self, *args: Any, body: ResponsesRequest, keep: Keeper | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.body = body
        self.keep = keep
        self.base_id = self.request_id.removeprefix("resp-")
        self.streamed = OutputItems(self.base_id)
        self.sequence = 0

    @property
    def incomplete_reason(self) -> str | None:
        return INCOMPLETE_REASONS.get(self.choices[0].finish_reason or "")

    def _numbered(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for event in events:
            event["sequence_number"] = self.sequence
            self.sequence += 1
        return events

    def start_chunks(self) -> list[dict[str, Any]]:
        snapshot = self.envelope_of("in_progress", [], None)
        return self._numbered(
            [
                {"type": "response.created", "response": snapshot},
                {"type": "response.in_progress", "response": snapshot},
            ]
        )

    def feed(self, event: GenerationEvent) -> list[dict[str, Any]]:
        return self._numbered(super().feed(event))

    def close_streamed(self) -> list[dict[str, Any]]:
        return self.streamed.close(self._item_status())

    def last_events(self, whole: dict[str, Any]) -> list[dict[str, Any]]:
        kind = "response.incomplete" if self.incomplete_reason else "response.completed"
        return [{"type": kind, "response": whole}]

    def failure_chunks(self) -> list[dict[str, Any]]:
        """`response.failed`, its error in the response (as OpenAI's stream)."""
        assert self.failure is not None
        failed = self.envelope_of("failed", self.streamed.items, None)
        error = self.failure.body()["error"]
        failed["error"] = {"code": error["code"], "message": error["message"]}
        return self._numbered([{"type": "response.failed", "response": failed}])

    def _item_status(self) -> str:
        return "incomplete" if self.incomplete_reason else "completed"

    def response(self) -> dict[str, Any]:
        output = OutputItems(self.base_id)
        for event in self.choices[0].parsed:
            output.feed(event)
        output.close(self._item_status())
        reason = self.incomplete_reason
        tally = self.tally
        usage = {
            "input_tokens": tally.prompt,
            "input_tokens_details": {"cached_tokens": tally.cached},
            "output_tokens": tally.completion,
            "output_tokens_details": {"reasoning_tokens": tally.reasoning},
            "total_tokens": tally.prompt + tally.completion,
        }
        status = "incomplete" if reason else "completed"
        whole = self.envelope_of(status, output.items, usage)
        whole["incomplete_details"] = {"reason": reason} if reason else None
        if self.keep is not None and self.done and self.failure is None:
            message = self.choices[0].message()
            message.pop("reasoning_content")
            self.keep(whole, {k: v for k, v in message.items() if v is not None})
            self.keep = None
        return whole

    def envelope_of(
        self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The response object around its output: the request's settings echoed."""
        body = self.body
        text_format = body.text.format if body.text else None
        return {
            "id": self.request_id,
            "object": "response",
            "created_at": self.created,
            "model": self.model,
            "status": status,
            "incomplete_details": None,
            "error": None,
            "output": output,
            "instructions": body.instructions,
            "tools": [t.model_dump(exclude_none=True) for t in body.tools or []],
            "tool_choice": body.model_dump(mode="json")["tool_choice"] or "auto",
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "reasoning": {
                "effort": body.reasoning.effort if body.reasoning else None,
                "summary": None,
            },
            "max_output_tokens": body.max_output_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "text": {
                "format": text_format.model_dump(by_alias=True, exclude_none=True)
                if text_format
                else {"type": "text"}
            },
            "metadata": body.metadata or {},
            "user": body.user,
            "store": body.store is not False,
            "previous_response_id": body.previous_response_id,
            "usage": usage,
        }
