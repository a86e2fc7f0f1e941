"""A draft model's proposals: a smaller model with the target's tokenizer
writes the next k tokens greedily.

Each row keeps the draft's own cache of the row's confirmed text (its prompt
and kept tokens, minus the last token). To propose, the draft catches up on
the tokens confirmed since the last proposal, then writes k tokens on a fork
of that cache: arrays the fork writes are new (MLX writes to an array shared
by two caches as a copy), so rejected proposals never touch the kept cache
and nothing is ever rolled back, sliding-window layers included. Greedy
proposals are tokens, not distributions: verification keeps the target's
output exactly, seeded samples included (verify.py).
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.models.cache import make_prompt_cache

from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.types import SpeculationError


@dataclass
class _Row:
    cache: list[Any]
    fed: int = 0  # tokens of the row's text in `cache`


def check_vocabulary(draft: Any, target: Any) -> None:
    """A SpeculationError unless the two tokenizers map the same strings to
    the same ids: proposals are token ids."""
    if draft.get_vocab() != target.get_vocab():
        raise SpeculationError(
            "the draft model's tokenizer differs from the served model's: "
            "speculative decoding needs the same token ids"
        )


class DraftModel:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.weights_bytes = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
        self._rows: weakref.WeakKeyDictionary[Sequence, _Row] = (
            weakref.WeakKeyDictionary()
        )

    def propose(self, seq: Sequence, k: int) -> list[int]:
        text = seq.request.prompt_token_ids + seq.output
        row = self._rows.get(seq)
        if row is None:
            row = self._rows[seq] = _Row(make_prompt_cache(self.model))
        if len(text) - 1 > row.fed:
            self.model(mx.array(text[row.fed : -1])[None], cache=row.cache)
            row.fed = len(text) - 1
        fork = [fork_layer(layer) for layer in row.cache]
        token = mx.array([[text[-1]]])
        drafted = []
        for _ in range(k):
            token = mx.argmax(self.model(token, cache=fork)[:, -1, :], axis=-1)[None]
            drafted.append(token)
        mx.eval(drafted, [layer.state for layer in row.cache])
        return [int(t.item()) for t in drafted]


def fork_layer(layer: Any) -> Any:
    """A cache layer over the same arrays as `layer`, whose writes leave
    `layer` as it is."""
    fork = copy.copy(layer)
    if layer.keys is not None:
        fork.keys, fork.values = layer.keys[...], layer.values[...]
    return fork
