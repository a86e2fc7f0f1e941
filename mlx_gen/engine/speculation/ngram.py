"""Prompt lookup: the tokens that followed the text's last n tokens before.

No extra model: a row's latest n-gram (n from `max_n` down to `min_n`) is
looked up among the earlier n-grams of its prompt and output, and what
followed the latest earlier match is proposed. A match that reaches the end
of the text continues as a cycle: at temperature 0 a model that repeats a
period-p loop is proposed the loop again. Each row keeps an index of its
n-grams, extended by the tokens added since its last proposal.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from mlx_gen.engine.sequence import Sequence


@dataclass
class _Index:
    # n-gram -> where its latest occurrence ends (exclusive), in the history.
    ends: dict[tuple[int, ...], int] = field(default_factory=dict)
    indexed: int = 0  # history positions whose n-grams ending there are in


class PromptLookup:
    weights_bytes = 0  # no model

    def __init__(self, max_n: int = 3, min_n: int = 1) -> None:
        if not 1 <= min_n <= max_n:
            raise ValueError(f"n-gram sizes must be 1 <= {min_n} <= {max_n}")
        self.max_n, self.min_n = max_n, min_n
        self._rows: weakref.WeakKeyDictionary[Sequence, _Index] = (
            weakref.WeakKeyDictionary()
        )

    def propose(self, seq: Sequence, k: int) -> list[int]:
        history = seq.request.prompt_token_ids + seq.output
        index = self._rows.setdefault(seq, _Index())
        # Index every n-gram that ends before the last token: the last n-gram
        # itself has no continuation to propose.
        for end in range(max(index.indexed, 1), len(history)):
            for n in range(self.min_n, min(self.max_n, end) + 1):
                index.ends[tuple(history[end - n : end])] = end
        index.indexed = max(index.indexed, len(history))
        for n in range(min(self.max_n, len(history)), self.min_n - 1, -1):
            end = index.ends.get(tuple(history[-n:]))
            if end is not None:
                return _continue(history, end, k)
        return []


def _continue(history: list[int], start: int, k: int) -> list[int]:
    """`k` tokens copied from `history[start:]`, repeating what is copied
    once the copy reaches the end of the history."""
    period = len(history) - start
    return [history[start + j % period] for j in range(k)]
