"""KV snapshots of prompt prefixes, reused across requests (LRU, bounded by bytes).

A chat's next turn starts with the previous turn's prompt, so a snapshot of
the cache after a prompt lets the next turn prefill only the new messages.

Snapshots are exact: reusing one is valid when its tokens are a prefix of the
new prompt. Only a snapshot whose layers can all be trimmed (plain KV caches,
and rotating caches that never wrapped) may also serve a shorter common
prefix, trimmed; a sliding-window cache that wrapped cannot be rewound.

Caches are shared copy-on-write: the stored arrays are never written, and a
lookup hands out new cache objects over them (an MLX write to an array whose
buffer is shared copies instead of writing in place).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import KVCache

# Shorter common prefixes are not worth a lookup hit: random prompts share
# their first token or two by chance.
MIN_REUSE = 16


@dataclass
class _Entry:
    tokens: list[int]
    cache: list[Any]
    nbytes: int
    trimmable: bool


def _snapshot(layer: Any) -> Any:
    if isinstance(layer, KVCache):  # drop the preallocated tail
        state = (
            mx.contiguous(layer.keys[..., : layer.offset, :]),
            mx.contiguous(layer.values[..., : layer.offset, :]),
            layer.offset,
        )
    else:
        state = tuple(
            mx.contiguous(x) if isinstance(x, mx.array) else x for x in layer.state
        )
    return type(layer).from_state(state)


def _clone(layer: Any, length: int) -> Any:
    state = tuple(x[...] if isinstance(x, mx.array) else x for x in layer.state)
    clone = type(layer).from_state(state)
    excess = getattr(layer, "offset", length) - length
    if excess:
        clone.trim(excess)
    return clone


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    lo = 0
    block = 256
    while lo + block <= n and a[lo : lo + block] == b[lo : lo + block]:
        lo += block
    while lo < n and a[lo] == b[lo]:
        lo += 1
    return lo


class PrefixCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.queries = 0
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prompt: list[int]) -> tuple[list[Any] | None, int]:
        """A private cache holding the longest usable prefix of `prompt`, and its
        length. At least the last prompt token is always left to compute."""
        if self.max_bytes <= 0:
            return None, 0
        self.queries += 1
        limit = len(prompt) - 1
        best_key, best_len = None, MIN_REUSE - 1
        for key, entry in self._entries.items():
            n = len(entry.tokens)
            if best_len < n <= limit and prompt[:n] == entry.tokens:
                best_key, best_len = key, n
            elif entry.trimmable:
                common = min(_common_prefix(entry.tokens, prompt), limit)
                if common > best_len:
                    best_key, best_len = key, common
        if best_key is None:
            return None, 0
        self.hits += 1
        self._entries.move_to_end(best_key)
        entry = self._entries[best_key]
        return [_clone(layer, best_len) for layer in entry.cache], best_len

    def insert(self, tokens: list[int], cache: list[Any]) -> None:
        """Store a snapshot of `cache`, which holds exactly `tokens`."""
        key = tuple(tokens)
        if self.max_bytes <= 0 or not tokens:
            return
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        snapshot = [_snapshot(layer) for layer in cache]
        mx.eval([layer.state for layer in snapshot])
        nbytes = sum(layer.nbytes for layer in snapshot)
        if nbytes > self.max_bytes:
            return
        while self.nbytes + nbytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= old.nbytes
        trimmable = all(layer.is_trimmable() for layer in snapshot)
        self._entries[key] = _Entry(list(tokens), snapshot, nbytes, trimmable)
        self.nbytes += nbytes
