"""The one interface every proposer has."""

from __future__ import annotations

from typing import Protocol

from mlx_gen.engine.sequence import Sequence


class Proposer(Protocol):
    """Guesses the next tokens of a sequence, from its prompt and output.
    What it keeps per sequence it keeps weakly: rows come and go."""

    # Bytes of its own weights, planned for beside the model's (memory.py).
    weights_bytes: int

    def propose(self, seq: Sequence, k: int) -> list[int]:
        """At most `k` tokens the sequence may write next; [] for no guess."""
