"""What chat and text answers share: ids, usage, failures, the chunk envelope.

An answer is built in the one form that is sent: with `stream` its `feed`
returns the chunks of each engine event, without it the answer only keeps
what `response()` needs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mlx_gen.engine.types import GenerationEvent
from mlx_gen.server.errors import APIError
from mlx_gen.server.sse import Frame, encode


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage_dict(
    prompt: int, completion: int, reasoning: int = 0, cached: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def engine_failure(event: GenerationEvent) -> APIError | None:
    """The error a finished choice stands for, if it did not end normally."""
    if event.finish_reason == "error":
        return APIError(
            500,
            f"Generation failed: {event.error or 'engine error'}",
            type="server_error",
            code="engine_error",
        )
    if event.finish_reason == "abort":
        return APIError(
            503,
            "The request was aborted before it finished (the server is stopping).",
            type="server_error",
            code="request_aborted",
        )
    return None


@dataclass
class UsageTally:
    """Usage summed over the choices of one request (of its prompts, if a batch)."""

    completion: int = 0
    reasoning: int = 0
    finished: set[int] = field(default_factory=set)
    # (prompt, cached) tokens by engine request: one per prompt, shared by
    # its choices, so counted once.
    prompts: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, event: GenerationEvent, reasoning: int = 0) -> None:
        """Count a finished choice (its last event)."""
        self.finished.add(event.index)
        self.reasoning += reasoning
        if event.usage is not None:
            self.prompts[event.request_id] = max(
                self.prompts.get(event.request_id, (0, 0)),
                (event.usage.prompt_tokens, event.usage.cached_tokens),
            )
            self.completion += event.usage.completion_tokens

    @property
    def prompt(self) -> int:
        return sum(prompt for prompt, _ in self.prompts.values())

    @property
    def cached(self) -> int:
        return sum(cached for _, cached in self.prompts.values())

    def as_dict(self) -> dict[str, Any]:
        return usage_dict(self.prompt, self.completion, self.reasoning, self.cached)


class AnswerBase:
    """State shared by chat and text answers: ids, usage, failure, chunks."""

    chunk_object = ""
    # The frames after the last chunk: OpenAI's `data: [DONE]`.
    stream_end: tuple[Frame, ...] = ("[DONE]",)

    def __init__(
        self, request_id: str, model: str, n: int, stream: bool, include_usage: bool
    ) -> None:
        self.request_id = request_id
        self.model = model
        self.n = n
        self.stream = stream
        self.include_usage = include_usage
        self.created = now()
        self.tally = UsageTally()
        self.failure: APIError | None = None
        self.generated = 0  # tokens seen so far, all choices

    @property
    def done(self) -> bool:
        return len(self.tally.finished) == self.n

    def chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.request_id,
            "object": self.chunk_object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def chunks(self, choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One chunk per choice piece."""
        return [self.chunk([choice]) for choice in choices]

    def envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        """The whole (non-streamed) response around its choices."""
        return {
            "id": self.request_id,
            "object": self.chunk_object.removesuffix(".chunk"),
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.tally.as_dict(),
        }

    def usage_chunk(self) -> dict[str, Any]:
        return self.chunk([]) | {"usage": self.tally.as_dict()}

    def frame(self, chunk: dict[str, Any]) -> Frame:
        """One chunk as the frame that sends it."""
        return encode(chunk)

    def error_chunk(self, error: APIError) -> dict[str, Any]:
        """An error inside a stream that already answered 200."""
        return error.body()

    def failure_chunks(self) -> list[dict[str, Any]]:
        """What a stream sends when its generation failed after the 200."""
        assert self.failure is not None
        return [self.error_chunk(self.failure)]

    def finish(
        self, event: GenerationEvent, reasoning: int = 0, check: bool = True
    ) -> bool:
        """Count a choice's last event; False if it failed (see `failure`).
        Unchecked: a choice the answer had already ended cannot fail."""
        self.tally.add(event, reasoning)
        failure = engine_failure(event) if check else None
        if failure is not None and self.failure is None:
            self.failure = failure
        return failure is None
