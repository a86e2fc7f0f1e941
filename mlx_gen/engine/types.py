"""The engine's vocabulary: what goes in (a request), what comes out (events).

These plain dataclasses are the whole contract between the engine (one MLX
thread) and its callers (the HTTP server, the CLI, benchmarks). Nothing here
touches MLX.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "abort", "error"]


@dataclass
class SamplingParams:
    """Per-request sampling; every sequence in a batch may differ."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    n: int = 1
    # Score the prompt's own tokens, with this many alternatives each; None:
    # do not. Such a request is prefilled from its first token (a cached
    # prefix has no logits) and may have max_tokens 0: scored, nothing made.
    prompt_logprobs: int | None = None


# A logits processor as mlx-lm defines it: (tokens so far, logits) -> logits.
LogitsProcessor = Callable[..., object]


@dataclass
class GenerationRequest:
    prompt_token_ids: list[int]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Who asked, as the client named them (OpenAI's `user`); the engine does
    # not read it, a test hook wrapped around the engine may.
    user: str | None = None
    # Extra processors run on the engine thread (tests use them to force tokens).
    logits_processors: list[LogitsProcessor] = field(default_factory=list)
    # A compiled grammar (engine/constraints.py Constraint) the output follows.
    constraint: Any = None


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)  # most likely first
    rank: int | None = None  # of the token, 1 = the most likely (prompt scores)


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass
class Timings:
    """Seconds, measured on the engine thread with time.perf_counter."""

    queue_wait: float = 0.0
    time_to_first_token: float = 0.0
    total: float = 0.0


@dataclass
class GenerationEvent:
    """One step's output for one choice of a request.

    `token_ids` and `text` are the new tokens and the text they completed
    (UTF-8 safe: a partial character waits for its next byte). The last event
    of a choice has `finish_reason` set, and `usage` / `timings`. The first
    event of a choice of a request asking `prompt_logprobs` has them: the
    scores of the prompt's tokens after the first, which nothing predicts.
    """

    request_id: str
    index: int
    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob] | None = None
    prompt_logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    error: str | None = None


class EngineError(Exception):
    """Base of the errors `submit` raises before any event is produced."""


class ContextLengthExceeded(EngineError):
    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.limit = limit
        super().__init__(
            f"This request needs {prompt_tokens + max_tokens} tokens "
            f"({prompt_tokens} in the prompt + {max_tokens} to generate), "
            f"but at most {limit} fit."
        )


class QueueFull(EngineError):
    def __init__(self, waiting: int, retry_after: float = 1.0) -> None:
        self.waiting = waiting
        self.retry_after = retry_after
        super().__init__(f"The engine queue is full ({waiting} requests waiting).")


class InvalidRequest(EngineError, ValueError):
    """A request the engine can never run as given (empty prompt, bad ids, n)."""


class EngineDead(EngineError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The engine has stopped: {reason}")


class ModelTooLarge(EngineError):
    """Raised by `start`: the model and a minimal KV cache do not fit the budget."""


@dataclass
class MemoryPlan:
    """Bytes, decided once at load time."""

    weights_bytes: int
    kv_bytes_per_token: int
    sliding_kv_bytes_per_sequence: int
    budget_bytes: int
    headroom_bytes: int
    kv_token_budget: int
    max_context: int
    # Working memory of prefill chunks and decode steps, the prefix cache's
    # share, and the device size the budget was derived from.
    transient_bytes: int = 0
    prefix_cache_bytes: int = 0
    device_bytes: int = 0
    # What MLX's buffer cache may keep of freed buffers (the prefill reserve).
    cache_limit_bytes: int = 0


@dataclass
class EngineStats:
    alive: bool
    error: str | None
    running: int
    waiting: int
    kv_tokens_used: int
    kv_tokens_budget: int
    prefix_cache_bytes: int
    prefix_cache_hits: int
    prefix_cache_queries: int
    plan: MemoryPlan | None
    # Monotonic totals since start, for the metrics exporter.
    prompt_tokens_total: int = 0
    generated_tokens_total: int = 0
    cached_tokens_total: int = 0
    steps_total: int = 0
    # MLX's allocator: bytes in live arrays, and freed buffers kept for reuse.
    mlx_active_bytes: int = 0
    mlx_cache_bytes: int = 0
