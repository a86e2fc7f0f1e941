"""What the server serves: one model, its engine, its chat format."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlx_gen.chat.base import ChatFormat, ReasoningEffort
from mlx_gen.engine.types import EngineStats, GenerationEvent, GenerationRequest

if TYPE_CHECKING:
    from mlx_gen.models.loading import LoadedModel


class EventStream(Protocol):
    """The events of requests submitted together (engine/stream.py)."""

    def __aiter__(self) -> AsyncIterator[GenerationEvent]: ...

    async def __anext__(self) -> GenerationEvent: ...

    def close(self) -> None:
        """Stop reading; abort what has not finished."""


class Engine(Protocol):
    """The part of the engine facade the HTTP layer uses."""

    def submit(self, request: GenerationRequest) -> EventStream: ...

    def submit_many(self, requests: list[GenerationRequest]) -> EventStream: ...

    def abort(self, request_id: str, index: int | None = None) -> None: ...

    def stats(self) -> EngineStats: ...

    def shutdown(self, drain_timeout: float = 0.0) -> None: ...


@dataclass
class ServedModel:
    name: str
    engine: Engine
    chat_format: ChatFormat
    tokenizer: Any  # mlx-lm TokenizerWrapper: encode / decode
    max_context: int
    vocab_size: int
    default_reasoning_effort: ReasoningEffort = "medium"
    # The analysis budget of a constrained turn that does not set its own.
    default_max_reasoning_tokens: int | None = None
    # Registry sampling defaults (temperature, top_p, top_k, min_p).
    sampling_defaults: dict[str, float] = field(default_factory=dict)
    created: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        engine: Engine,
        chat_format: ChatFormat,
        max_context: int | None = None,
    ) -> ServedModel:
        entry = loaded.entry
        vocab = len(loaded.tokenizer)
        model_vocab = loaded.config.get("vocab_size")
        if isinstance(model_vocab, int):
            vocab = min(vocab, model_vocab)
        return cls(
            name=loaded.name,
            engine=engine,
            chat_format=chat_format,
            tokenizer=loaded.tokenizer,
            max_context=min(max_context or entry.context_length, entry.context_length),
            vocab_size=vocab,
            default_reasoning_effort=entry.reasoning_effort,
            default_max_reasoning_tokens=entry.max_reasoning_tokens,
            sampling_defaults=entry.sampling.model_dump(),
        )
