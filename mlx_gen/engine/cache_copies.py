"""Copies of mlx-lm KV cache layers: the prefix cache's snapshots, and the
prompt caches prefilled together.

A snapshot shares no buffer with the cache it copies; a clone is a new cache
over a snapshot's arrays, which MLX copies on the first write (an MLX write
to an array whose buffer is shared copies instead of writing in place), so a
snapshot is never written by the requests that reuse it.

Prompt caches in the same state (the same signature: class, positions and
array shapes) stack along the batch axis into one cache of their class, fed
in one pass, then split back into one cache per row. Every operation of a
model's forward pass treats the batch rows apart, so a row's numbers are the
same as alone, bit for bit on MLX's own kernels and the reference BLAS; an
optimized BLAS may round a matrix product differently with its number of
rows, as it does for the rows of a decode step (README, "Many requests at
once").
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
from mlx_lm.models.cache import KVCache, RotatingKVCache


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


def signature(layers: list[Any]) -> tuple:
    """What must be equal for cache layers to stack: each layer's class and
    state, arrays by shape."""
    return tuple(
        (type(layer).__name__, *(_shape(x) for x in layer.state)) for layer in layers
    )


def _shape(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, mx.array) else x


def stack(layers: list[Any]) -> Any:
    """One cache layer whose batch rows are these layers', in order; they
    have the same signature."""
    if len(layers) == 1:
        return layers[0]
    states = [layer.state for layer in layers]
    merged = tuple(
        mx.concatenate([s[i] for s in states]) if isinstance(x, mx.array) else x
        for i, x in enumerate(states[0])
    )
    return type(layers[0]).from_state(merged)


def row(layer: Any, i: int, padding: int = 0) -> Any:
    """Batch row `i` of a stacked cache layer, as a layer of its own, less
    the last `padding` tokens it was fed: the padding of a row shorter than
    the others, dropped so that the layer is the one the row alone makes."""
    state = layer.state
    if state[0].shape[0] > 1:
        state = tuple(x[i : i + 1] if isinstance(x, mx.array) else x for x in state)
    if padding and isinstance(layer, RotatingKVCache):
        # Fed several tokens at once, a rotating layer holds its tokens in
        # time order, the padding last (mlx-lm's _update_concat).
        keys, values, offset, keep, max_size, idx = state
        end = keys.shape[2] - padding
        state = (keys[..., :end, :], values[..., :end, :], offset - padding)
        state = (*state, keep, max_size, idx - padding)
    copy = type(layer).from_state(state)
    if padding and not isinstance(layer, RotatingKVCache):
        copy.trim(padding)
    return copy
