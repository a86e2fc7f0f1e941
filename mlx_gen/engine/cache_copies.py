"""Copies of mlx-lm KV cache layers, for the prefix cache's snapshots.

A snapshot shares no buffer with the cache it copies; a clone is a new cache
over a snapshot's arrays, which MLX copies on the first write (an MLX write
to an array whose buffer is shared copies instead of writing in place), so a
snapshot is never written by the requests that reuse it.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import KVCache


def snapshot(layer: Any) -> Any:
    """A copy of a cache layer that shares no buffer with it."""
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


def clone(layer: Any, length: int) -> Any:
    """A new cache layer over a snapshot's arrays (MLX copies them on the first
    write), cut to `length` tokens."""
    state = tuple(x[...] if isinstance(x, mx.array) else x for x in layer.state)
    copy = type(layer).from_state(state)
    excess = getattr(layer, "offset", length) - length
    if excess:
        copy.trim(excess)
    return copy
