"""Sequences for proposer and speculator tests."""

from __future__ import annotations

from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.types import GenerationRequest, SamplingParams


def sequence(prompt: list[int], max_tokens: int = 100) -> Sequence:
    """A sequence outside any engine: what a proposer reads."""
    request = GenerationRequest(prompt, SamplingParams(max_tokens=max_tokens))
    return Sequence(request, 0, None, frozenset(), 0.0)
