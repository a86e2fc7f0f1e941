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
    # Speculative decoding (speculation/): None (off), "ngram", "draft:PATH"
    # or "eagle3:PATH"; tokens proposed per row and step; the largest batch
    # that still speculates (beyond it decoding is compute-bound: measured in
    # benchmarks/RESULTS.md).
    speculative: str | None = None
    num_speculative_tokens: int = 4
    speculative_max_batch: int = 4

    @property
    def widest_decode_pass(self) -> int:
        """Tokens in the largest decode forward pass: one per row, or 1 + k
        per row of a verification pass (speculation/)."""
        if self.speculative is None:
            return self.max_batch_size
        verifying = min(self.max_batch_size, self.speculative_max_batch)
        return max(self.max_batch_size, verifying * (1 + self.num_speculative_tokens))

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
            speculative=settings.speculative,
            num_speculative_tokens=settings.num_speculative_tokens,
            speculative_max_batch=settings.speculative_max_batch,
        )
