"""The prefix cache of a tensor-parallel group: rank 0 decides, every rank keeps.

Each rank's KV cache holds only its own heads, so a snapshot taken on rank 0
is useless to the others: every rank takes its own, of the same prompt cache,
when rank 0 does. Rank 0 keeps the index (which prompts, which to evict, which
one a new prompt reuses) and names each entry by a number; the other ranks
store, evict and clone entries by that number when rank 0 says so. The
snapshots and clones are made by the prefix cache's own functions, so every
rank's caches have the same shapes as rank 0's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import mlx.core as mx

from mlx_gen.engine.prefix_cache import PrefixCache, _clone, _snapshot

if TYPE_CHECKING:
    from mlx_gen.engine.distributed_runner import LeaderRunner


class MirroredPrefixCache(PrefixCache):
    """Rank 0's prefix cache: announces what it stores, evicts and reuses."""

    def __init__(self, max_bytes: int, runner: LeaderRunner) -> None:
        super().__init__(max_bytes)
        self.runner = runner
        self._ids: dict[tuple[int, ...], int] = {}
        self._next_id = 0

    def lookup(self, prompt: list[int]) -> tuple[list[Any] | None, int]:
        layers, length = super().lookup(prompt)
        if layers is None:
            return None, 0
        hit = next(reversed(self._entries))  # a hit moves to the end
        return self.runner.adopt(layers, self._ids[hit], length), length

    def insert(self, tokens: list[int], cache: list[Any]) -> None:
        before = set(self._entries)
        super().insert(tokens, cache)
        after = set(self._entries)
        gone = [self._ids.pop(key) for key in before - after]
        if gone:
            self.runner.evict(gone)
        for key in after - before:  # at most one: the new entry
            self._next_id += 1
            self._ids[key] = self._next_id
            self.runner.snapshot(cache, self._next_id)


class PrefixMirror:
    """A follower's snapshots, by rank 0's numbers."""

    def __init__(self) -> None:
        self.entries: dict[int, list[Any]] = {}

    def store(self, entry: int, cache: list[Any]) -> None:
        snapshot = [_snapshot(layer) for layer in cache]
        mx.eval([layer.state for layer in snapshot])
        self.entries[entry] = snapshot

    def evict(self, entries: Sequence[int]) -> None:
        for entry in entries:
            self.entries.pop(entry, None)

    def clone(self, entry: int, length: int) -> list[Any]:
        return [_clone(layer, length) for layer in self.entries[entry]]
