"""KV snapshots of prompt prefixes, reused across requests (LRU, bounded by bytes).

A chat's next turn starts with the previous turn's prompt, so a snapshot of
the cache after a prompt lets the next turn prefill only the new messages.

Snapshots are exact: reusing one is valid when its tokens are a prefix of the
new prompt. Only a snapshot whose layers can all be trimmed (plain KV caches,
and rotating caches that never wrapped) may also serve a shorter common
prefix, trimmed; a sliding-window cache that wrapped cannot be rewound.

This is the index: which prompts have a snapshot, which to evict, which one a
new prompt reuses. The snapshots themselves are MLX state, kept by the runner
under the index's entry numbers (model_runner.py), shared copy-on-write with
the prompts that reuse them (cache_copies.py); on a tensor-parallel group
every rank keeps its own heads' part of each, and rank 0's index decides for
all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlx_gen.engine.model_runner import ModelRunner

# Shorter common prefixes are not worth a lookup hit: random prompts share
# their first token or two by chance.
MIN_REUSE = 16


@dataclass
class _Entry:
    number: int  # the runner's name for the snapshot
    tokens: list[int]
    nbytes: int
    trimmable: bool


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    lo = 0
    block = 256
    while lo + block <= n and a[lo : lo + block] == b[lo : lo + block]:
        lo += block
    while lo < n and a[lo] == b[lo]:
        lo += 1
    return lo


class PrefixCache:
    def __init__(self, max_bytes: int, runner: ModelRunner) -> None:
        self.max_bytes = max_bytes
        self.runner = runner
        self.nbytes = 0
        self.hits = 0
        self.queries = 0
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self._numbered = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _best(self, prompt: list[int]) -> tuple[tuple[int, ...] | None, int]:
        """The entry serving the longest usable prefix of `prompt`, and its
        length; at least the last prompt token is always left to compute."""
        limit = len(prompt) - 1
        best_key, best_len = None, MIN_REUSE - 1
        for key, entry in self._entries.items():
            n = len(entry.tokens)
            if best_len < n <= limit and prompt[:n] == entry.tokens:
                best_key, best_len = key, n
            elif entry.trimmable:
                common = min(common_prefix(entry.tokens, prompt), limit)
                if common > best_len:
                    best_key, best_len = key, common
        return best_key, best_len if best_key is not None else 0

    def reusable(self, prompt: list[int]) -> int:
        """How many tokens of `prompt` a lookup would reuse now."""
        return self._best(prompt)[1] if self.max_bytes > 0 else 0

    def common_point(self, prompt: list[int], cached: int) -> int:
        """The longest prefix `prompt` shares with a cached prompt beyond the
        `cached` tokens it reuses (0: none worth it): a snapshot there would
        serve the next prompts that share it too (a system prompt, once the
        sliding windows of whole prompts have wrapped)."""
        if self.max_bytes <= 0:
            return 0
        least = cached + MIN_REUSE  # the shortest point worth a snapshot
        limit, best = len(prompt) - 1, 0
        if least > limit:
            return 0
        for entry in self._entries.values():
            tokens = entry.tokens
            # One comparison rules out most entries before a scan does.
            if len(tokens) >= least and tokens[least - 1] == prompt[least - 1]:
                best = max(best, min(common_prefix(tokens, prompt), limit))
        return best if best >= least else 0

    def lookup(self, prompt: list[int], slot: int) -> int:
        """Start the prompt cache of `slot` as the longest usable prefix of
        `prompt`, and return its length (0: none, the slot is untouched)."""
        if self.max_bytes <= 0:
            return 0
        self.queries += 1
        best_key, best_len = self._best(prompt)
        if best_key is None:
            return 0
        self.hits += 1
        self._entries.move_to_end(best_key)
        self.runner.restore(slot, self._entries[best_key].number, best_len)
        return best_len

    def insert(self, tokens: list[int], slot: int) -> None:
        """Keep a snapshot of the prompt cache of `slot`, which holds exactly
        `tokens`."""
        key = tuple(tokens)
        if self.max_bytes <= 0 or not tokens:
            return
        if key in self._entries:
            self._entries.move_to_end(key)
            return
        self._numbered += 1
        number = self._numbered
        nbytes, trimmable = self.runner.snapshot(slot, number)
        if nbytes > self.max_bytes:
            self.runner.forget([number])
            return
        gone = []
        while self.nbytes + nbytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= old.nbytes
            gone.append(old.number)
        if gone:
            self.runner.forget(gone)
        self._entries[key] = _Entry(number, list(tokens), nbytes, trimmable)
        self.nbytes += nbytes
