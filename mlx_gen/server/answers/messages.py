"""A Messages answer: the chat answer's one choice as Anthropic's `message`,
whole or as its stream events (`event:` lines, no `[DONE]`)."""

from __future__ import annotations

from typing import Any

from mlx_gen.server.answers.message_blocks import ContentBlocks
from mlx_gen.server.answers.typed_events import TypedEventsAnswer
from mlx_gen.server.errors import APIError
from mlx_gen.server.sse import Frame, encode

STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use"}


def usage_of(prompt: int, cached: int, output: int) -> dict[str, Any]:
    """Anthropic's usage: `input_tokens` are those not read from the cache."""
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


class MessagesAnswer(TypedEventsAnswer):
    stream_end: tuple[Frame, ...] = ()

    def __init__(self, *args: Any, prompt_tokens: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompt_tokens = prompt_tokens
        self.message_id = "msg_" + self.request_id.removeprefix("msg-")
        self.streamed = ContentBlocks()

    def frame(self, chunk: dict[str, Any]) -> Frame:
        return {"event": chunk["type"], "data": encode(chunk)}

    def error_chunk(self, error: APIError) -> dict[str, Any]:
        return error.anthropic_body()

    def start_chunks(self) -> list[dict[str, Any]]:
        usage = usage_of(self.prompt_tokens, 0, 0)
        message = self.envelope_of([], None, None, usage)
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def close_streamed(self) -> list[dict[str, Any]]:
        return self.streamed.close()

    def last_events(self, whole: dict[str, Any]) -> list[dict[str, Any]]:
        delta = {key: whole[key] for key in ("stop_reason", "stop_sequence")}
        return [
            {"type": "message_delta", "delta": delta, "usage": whole["usage"]},
            {"type": "message_stop"},
        ]

    def response(self) -> dict[str, Any]:
        choice = self.choices[0]
        blocks = ContentBlocks()
        for event in choice.parsed:
            blocks.feed(event)
        blocks.close()
        stop_sequence = choice.stops.matched
        reason = choice.finish_reason or ""
        stop_reason = "stop_sequence" if stop_sequence else STOP_REASONS.get(reason)
        tally = self.tally
        usage = usage_of(tally.prompt, tally.cached, tally.completion)
        return self.envelope_of(
            blocks.blocks, stop_reason or "end_turn", stop_sequence, usage
        )

    def envelope_of(
        self,
        content: list[dict[str, Any]],
        stop_reason: str | None,
        stop_sequence: str | None,
        usage: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
