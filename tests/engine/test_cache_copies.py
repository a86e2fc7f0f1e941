"""Prompt caches prefilled together: each row ends as the same cache alone."""

from __future__ import annotations

import random

import mlx.core as mx
import pytest

from mlx_gen.blas import blas_in_use
from mlx_gen.engine import cache_copies
from mlx_gen.engine.model_runner import ModelRunner

WINDOW = 32  # the tiny model's sliding window


def _tokens(n: int, rng: random.Random) -> list[int]:
    return [rng.randrange(10, 1000) for _ in range(n)]


def _layers(runner: ModelRunner, slot: int) -> list[tuple]:
    """A prompt cache's layers as (class, positions, its tokens' keys and
    values in time order): what its next tokens are computed from."""
    out = []
    for layer in runner._prompts[slot]:
        keys, values = layer.state[:2]
        if isinstance(layer, cache_copies.KVCache):
            keys, values = keys[..., : layer.offset, :], values[..., : layer.offset, :]
        ints = [x for x in layer.state if not isinstance(x, mx.array)]
        out.append((type(layer).__name__, ints, keys, values))
    return out


def _assert_same(a: list[tuple], b: list[tuple]) -> None:
    # Bit for bit on MLX's kernels and the reference BLAS; an optimized BLAS
    # may round a product differently with its number of rows (README).
    exact = "reference BLAS" in blas_in_use()
    for (kind, ints, keys, values), (kind2, ints2, keys2, values2) in zip(
        a, b, strict=True
    ):
        assert (kind, ints) == (kind2, ints2)
        for x, y in ((keys, keys2), (values, values2)):
            assert x.shape == y.shape
            if exact:
                assert mx.array_equal(x, y).item()
            else:
                assert mx.allclose(x, y, atol=1e-5).item()


@pytest.mark.parametrize("prefix", [0, WINDOW + 8])
def test_rows_prefilled_together_are_each_as_alone(tiny_model, prefix):
    """Rows of different lengths (padded), from nothing or from a shared
    prefix past the sliding window (the rotating layers have wrapped)."""
    model, tokenizer = tiny_model
    rng = random.Random(prefix)
    start = _tokens(prefix, rng)
    suffixes = [_tokens(n, rng) for n in (40, 34, 31, 40)]
    alone, together = (ModelRunner(model, len(tokenizer)) for _ in range(2))
    for runner in (alone, together):
        if prefix:
            runner.prefill([100], start, [prefix])
            runner.snapshot(100, 1)
            for slot in range(len(suffixes)):
                runner.restore(slot, 1, prefix)
    for slot, suffix in enumerate(suffixes):
        alone.prefill([slot], suffix, [len(suffix)])
    together.prefill(
        list(range(len(suffixes))),
        [t for s in suffixes for t in s],
        [len(s) for s in suffixes],
    )
    for slot in range(len(suffixes)):
        _assert_same(_layers(together, slot), _layers(alone, slot))
    # And each goes on as alone: one more chunk each, fed apart.
    for runner in (alone, together):
        for slot in range(len(suffixes)):
            runner.prefill([slot], [7, 8, 9], [3])
    for slot in range(len(suffixes)):
        _assert_same(_layers(together, slot), _layers(alone, slot))


def test_caches_in_different_states_are_fed_apart(tiny_model):
    model, tokenizer = tiny_model
    runner, alone = (ModelRunner(model, len(tokenizer)) for _ in range(2))
    for r in (runner, alone):
        r.prefill([1], list(range(10, 30)), [20])  # slot 1 is 20 tokens in
    runner.prefill([1, 2], list(range(40, 56)), [8, 8])  # slot 2 is new
    alone.prefill([1], list(range(40, 48)), [8])
    alone.prefill([2], list(range(48, 56)), [8])
    for slot in (1, 2):
        _assert_same(_layers(runner, slot), _layers(alone, slot))
