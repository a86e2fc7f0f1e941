"""The one interface every proposer has."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import mlx.core as mx

from mlx_gen.engine.sequence import Sequence


class Proposer(Protocol):
    """Guesses the next tokens of a sequence, from its prompt and output.
    What it keeps per sequence it keeps weakly: rows come and go."""

    # Bytes of its own weights, planned for beside the model's (memory.py).
    weights_bytes: int

    def propose(self, seq: Sequence, k: int) -> list[int]:
        """At most `k` tokens the sequence may write next; [] for no guess."""


@runtime_checkable
class HiddenStateReader(Protocol):
    """A proposer that reads the served model's hidden states (eagle3.py):
    after each forward pass, the runner says what the pass fed."""

    def fed_prompt(self, slot: int, tokens: mx.array, row: int = 0) -> None:
        """A prefill pass fed `tokens` (n,) of the prompt in `slot`, as the
        first n positions of its batch row `row` (the rest: padding)."""

    def fed_rows(self, rows: list[Sequence], tokens: mx.array, kept: list[int]) -> None:
        """A batch pass fed row i `tokens[i]`, its first `kept[i]` kept."""

    def joined(self, seqs: list[Sequence], slot: int) -> None:
        """`seqs` join the batch from the prompt in `slot`."""

    def released(self, slots: list[int]) -> None:
        """The prompts in `slots` will not join the batch."""
