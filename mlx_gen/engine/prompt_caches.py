"""Prompt caches by slot and prefix snapshots by entry: the runner's MLX
state before a prompt joins the batch (model_runner.py).

A prompt is prefilled into a plain mlx-lm cache of its own, minus its last
token, in chunks (scheduler.py); scored on the way if its request asks
(prompt_scores.py). Prompts whose caches are in the same state (a burst's
prompts after their shared prefix) are fed in one pass, each row computed as
alone (cache_copies.py). The prefix cache's snapshots are copies of such
caches, and a new prompt cache may start as a clone of one.

The methods marked `every_rank` run on every rank of a tensor-parallel group
(every_rank.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.cache import make_prompt_cache

from mlx_gen.engine import cache_copies, prompt_scores
from mlx_gen.engine.every_rank import Leader, every_rank
from mlx_gen.engine.speculation.proposers import HiddenStateReader
from mlx_gen.engine.types import TokenLogprob


class PromptCaches:
    def __init__(
        self, model: nn.Module, leader: Leader | None, reader: HiddenStateReader | None
    ) -> None:
        self.model = model
        self.leader = leader
        self._reader = reader  # an EAGLE-3 proposer: told what each pass fed
        self._prompts: dict[int, list[Any]] = {}  # prompt caches, by slot
        self._snapshots: dict[int, list[Any]] = {}  # prefix entries, by number

    def _prompt_cache(self, slot: int) -> list[Any]:
        cache = self._prompts.get(slot)
        if cache is None:
            cache = self._prompts[slot] = make_prompt_cache(self.model)
        return cache

    @every_rank
    def prefill(self, slots: list[int], tokens: list[int], lengths: list[int]) -> None:
        """Feed the prompt caches of `slots` (new ones at first) `lengths[i]`
        each of `tokens`, in that order; caches in the same state are fed in
        one pass, shorter rows padded at their end (cache_copies.py)."""
        rest = iter(tokens)
        own = [list(itertools.islice(rest, n)) for n in lengths]
        groups: dict[tuple, list[int]] = {}
        for row, slot in enumerate(slots):
            signature = cache_copies.signature(self._prompt_cache(slot))
            groups.setdefault(signature, []).append(row)
        for group in groups.values():
            width = max(lengths[row] for row in group)
            # Padded with the row's last token: any id will do.
            inputs = mx.array(
                [own[row] + own[row][-1:] * (width - lengths[row]) for row in group]
            )
            caches = [self._prompts[slots[row]] for row in group]
            stacked = []
            for j in range(len(caches[0])):
                layer = cache_copies.stack([cache[j] for cache in caches])
                if len(group) > 1:
                    # A layer at a time, each row's own copy dropped once
                    # stacked: the peak is the rows' caches and one layer more,
                    # as for a merge (memory.py), not twice the rows' caches.
                    mx.eval([x for x in layer.state if isinstance(x, mx.array)])
                    for cache in caches:
                        cache[j] = None
                stacked.append(layer)
            # Only the caches are evaluated: a prefill chunk's logits never are.
            self.model(inputs, cache=stacked)
            for i, row in enumerate(group):
                padding = width - lengths[row]
                self._prompts[slots[row]] = [
                    cache_copies.row(x, i, padding) for x in stacked
                ]
                if self._reader is not None:
                    fed = inputs[i, : lengths[row]]
                    self._reader.fed_prompt(slots[row], fed, i)
            mx.eval([c.state for row in group for c in self._prompts[slots[row]]])

    @every_rank
    def prefill_scored(
        self, slot: int, tokens: list[int], targets: list[int], top: int
    ) -> list[TokenLogprob]:
        """`prefill`, and the scores of `targets`, the tokens that follow
        `tokens` in the prompt, with `top` alternatives (prompt_scores.py)."""
        cache = self._prompt_cache(slot)
        inputs = mx.array(tokens)
        logits = self.model(inputs[None], cache=cache)[0]
        if self._reader is not None:
            self._reader.fed_prompt(slot, inputs)
        scores = prompt_scores.score(logits, targets, top)
        mx.eval([c.state for c in cache], scores.arrays())
        return scores.read()

    @every_rank
    def release(self, slots: list[int]) -> None:
        """Drop the prompt caches of prompts that will not join the batch."""
        for slot in slots:
            self._prompts.pop(slot, None)
        if self._reader is not None:
            self._reader.released(slots)

    # Prefix snapshots (prefix_cache.py decides which).

    @every_rank
    def snapshot(self, slot: int, entry: int) -> tuple[int, bool]:
        """Keep a copy of the prompt cache of `slot` as prefix entry `entry`;
        returns its bytes and whether it can serve a shorter prefix."""
        layers = [cache_copies.snapshot(x) for x in self._prompts[slot]]
        mx.eval([layer.state for layer in layers])
        self._snapshots[entry] = layers
        nbytes = sum(layer.nbytes for layer in layers)
        return nbytes, all(layer.is_trimmable() for layer in layers)

    @every_rank
    def forget(self, entries: list[int]) -> None:
        for entry in entries:
            self._snapshots.pop(entry, None)

    @every_rank
    def restore(self, slot: int, entry: int, length: int) -> None:
        """Start the prompt cache of `slot` as the first `length` tokens of
        prefix entry `entry`."""
        layers = self._snapshots[entry]
        self._prompts[slot] = [cache_copies.clone(x, length) for x in layers]
