"""Removing each row's rejected tokens from the batch's KV caches.

A verification step appends S tokens to every row; row i keeps the first
S - r_i of them. The rows' caches share one time axis, so a row cannot be
cut shorter than the others: its last r_i entries are rolled to the front
of its row, where they become left padding (masked, as mlx-lm pads rows of
different lengths), and its offset (its RoPE position) goes back by r_i.
What every row rejects is cut off the end instead.

Sliding-window layers (mlx-lm's BatchRotatingKVCache) are the reason for
this design. Once such a cache wraps, a decode step writes over its oldest
entry, and mlx-lm's `trim` only moves the write index: it cannot bring back
what was overwritten, so trimming a rejected token after a wrap leaves the
window one token short and puts a rejected token's neighbour in it. Here a
verification step never writes in place: `prepare` puts each rotating layer
in time order first, so the multi-token update appends to the last
window - 1 entries instead (the window's k slack), and the rejected entries
are rolled away while every kept token still has its full window behind it.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import BatchKVCache, BatchRotatingKVCache, dynamic_roll


def prepare(cache: list[Any]) -> None:
    """Before a multi-token step: rotating layers in time order, so that
    their masks and their update agree on the layout."""
    for layer in cache:
        if isinstance(layer, BatchRotatingKVCache) and layer.rotated:
            layer._temporal_order()


def rollback(cache: list[Any], rejected: list[int]) -> None:
    """Drop the last `rejected[i]` tokens of row i from every layer."""
    common = min(rejected)
    shifts = mx.array([r - common for r in rejected])
    roll = any(r > common for r in rejected)
    for layer in cache:
        if not isinstance(layer, BatchKVCache | BatchRotatingKVCache):
            raise TypeError(f"cannot roll back a {type(layer).__name__}")
        if not roll and isinstance(layer, BatchKVCache):
            layer.trim(common)  # no copy: the next step writes over the tail
            continue
        end = layer._idx - common
        keys, values = layer.keys[..., :end, :], layer.values[..., :end, :]
        if roll:
            keys = dynamic_roll(keys, shifts[:, None], axis=2)
            values = dynamic_roll(values, shifts[:, None], axis=2)
            layer.left_padding = layer.left_padding + shifts
        layer.keys, layer.values, layer._idx = keys, values, end
        layer.offset = layer.offset - mx.array(rejected)
        if isinstance(layer, BatchRotatingKVCache):
            layer._offset -= common
