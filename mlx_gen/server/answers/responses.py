"""A Responses answer: the chat answer's one choice as a `response` object
with its output items (reasoning, function calls, message) in that order."""

from __future__ import annotations

from typing import Any

from mlx_gen.server.answers.chat import ChatAnswer
from mlx_gen.server.schemas.responses import ResponsesRequest

INCOMPLETE_REASONS = {"length": "max_output_tokens"}


def output_items(message: dict[str, Any], item_id: str) -> list[dict[str, Any]]:
    """A chat message as Responses output items; ids derive from `item_id`."""
    items: list[dict[str, Any]] = []
    if message.get("reasoning"):
        items.append(
            {
                "id": f"rs_{item_id}",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": message["reasoning"]}],
                "status": "completed",
            }
        )
    for i, call in enumerate(message.get("tool_calls") or []):
        items.append(
            {
                "id": f"fc_{item_id}_{i}",
                "type": "function_call",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
        )
    if message.get("content") is not None:
        text = {
            "type": "output_text",
            "text": message["content"],
            "annotations": [],
            "logprobs": [],
        }
        items.append(
            {
                "id": f"msg_{item_id}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        )
    return items


class ResponsesAnswer(ChatAnswer):
    def __init__(self, body: ResponsesRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body = body

    def response(self) -> dict[str, Any]:
        choice = self.choices[0]
        reason = INCOMPLETE_REASONS.get(choice.finish_reason or "")
        tally = self.tally
        body = self.body
        item_id = self.request_id.removeprefix("resp-")
        return {
            "id": self.request_id,
            "object": "response",
            "created_at": self.created,
            "model": self.model,
            "status": "incomplete" if reason else "completed",
            "incomplete_details": {"reason": reason} if reason else None,
            "error": None,
            "output": output_items(choice.message(), item_id),
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
            "text": {"format": {"type": "text"}}
            if body.text is None or body.text.format is None
            else {
                "format": body.text.format.model_dump(by_alias=True, exclude_none=True)
            },
            "metadata": body.metadata or {},
            "user": body.user,
            "store": body.store is not False,
            "previous_response_id": None,
            "usage": {
                "input_tokens": tally.prompt,
                "input_tokens_details": {"cached_tokens": tally.cached},
                "output_tokens": tally.completion,
                "output_tokens_details": {"reasoning_tokens": tally.reasoning},
                "total_tokens": tally.prompt + tally.completion,
            },
        }
