"""The engine's knobs, as one dataclass built from `Settings` or by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlx_gen.units import GB

if TYPE_CHECKING:
    from mlx_gen.settings import Settings


@dataclass
class EngineConfig:
    max_batch_size: int = 32
    max_queue: int = 512
    # Prompt tokens prefilled per engine iteration, and per chunk at short
    # context; the chunk shrinks as the context grows (see memory.py).
    prefill_step_size: int = 512
    # None: 16 GB or the device's recommended working set, whichever is smaller.
    memory_budget_bytes: int | None = None
    headroom_bytes: int = GB
    prefix_cache_bytes: int = GB
    # None: the model's own limit (max_position_embeddings).
    max_context: int | None = None
    # None: the tokenizer's EOS ids (harmony: <|return|> and <|call|>).
    default_stop_token_ids: list[int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        budget = settings.memory_budget_gb
        return cls(
            max_batch_size=settings.max_batch_size,
            max_queue=settings.max_queue,
            prefill_step_size=settings.prefill_step_size,
            memory_budget_bytes=None if budget is None else int(budget * GB),
            headroom_bytes=int(settings.memory_headroom_gb * GB),
            prefix_cache_bytes=int(settings.prefix_cache_gb * GB),
            max_context=settings.max_context,
        )
