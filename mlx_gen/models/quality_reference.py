"""Scoring a text position by position, and the source model's top-k record.

The text is cut into chunks of `chunk` tokens and each chunk is run with a
fresh cache, so every position sees only the tokens before it in its own
chunk: position i predicts token i + 1, and a chunk's last token is context
only. A chunk goes through the model `STEP` tokens at a time, as the engine
prefills, so the float32 log-probs in memory are `STEP` × vocabulary at most.

Pass 1 of the KL measurement keeps, per position, the source's `top_k` most
likely token ids with their log-probs and the log of the mass of every other
token, so that the source model can be freed before the converted one is
loaded. (llama.cpp's `--kl-divergence-base` file keeps the whole vocabulary's
log-probs, compressed to 16 bits each; a top-k record is exact float32 where
most of the probability is, and small when k is small against the vocabulary.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlx_gen.errors import QualityError
from mlx_gen.units import MB

if TYPE_CHECKING:
    import mlx.core as mx
    import mlx.nn as nn
    import numpy as np

# Tokens per forward pass inside a chunk: bounds the logits held at once.
STEP = 128
# The record's size when k is left to choose. Over 4096 positions that is the
# whole vocabulary up to 7,812 tokens, else the 7,812 likeliest of each position.
RECORD_BUDGET_BYTES = 256 * MB
_BYTES_PER_KEPT = 8  # an int32 id and a float32 log-prob


@dataclass
class Reference:
    """The source model's view of every scored position, in numpy."""

    vocab_size: int
    top_ids: np.ndarray  # [positions, k] int32, most likely first
    top_logprobs: np.ndarray  # [positions, k] float32
    rest_logmass: np.ndarray  # [positions] float32, log P(any other token)
    target_logprobs: np.ndarray  # [positions] float32, log P(the next token)

    @property
    def positions(self) -> int:
        return len(self.target_logprobs)


def chunk_logprobs(
    model: nn.Module, tokens: Sequence[int], chunk: int
) -> Iterator[tuple[mx.array, mx.array]]:
    """(log-probs [n, vocab] in float32, the n tokens they predict), in order."""
    import mlx.core as mx
    from mlx_lm.models.cache import make_prompt_cache

    for start in range(0, len(tokens) - 1, chunk):
        piece = list(tokens[start : start + chunk])  # 2 tokens at least
        inputs, targets = piece[:-1], piece[1:]
        cache = make_prompt_cache(model)
        for step in range(0, len(inputs), STEP):
            logits = model(mx.array([inputs[step : step + STEP]]), cache=cache)[0]
            logits = logits.astype(mx.float32)
            logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
            yield logprobs, mx.array(targets[step : step + STEP])


def rest_logmass(logprobs: mx.array, ids: mx.array) -> mx.array:
    """log of the probability of every token but `ids`, per row (-inf: none)."""
    import mlx.core as mx

    others = mx.put_along_axis(logprobs, ids, mx.array(-mx.inf), axis=-1)
    return mx.logsumexp(others, axis=-1)


def target_logprobs(logprobs: mx.array, targets: mx.array) -> mx.array:
    import mlx.core as mx

    return mx.take_along_axis(logprobs, targets[:, None], axis=-1)[:, 0]


def record_top_k(positions: int, vocab_size: int) -> int:
    """The k that keeps a record of `positions` within RECORD_BUDGET_BYTES."""
    fits = RECORD_BUDGET_BYTES // (max(positions, 1) * _BYTES_PER_KEPT)
    return max(1, min(vocab_size, fits))


def score_reference(
    model: nn.Module, tokens: Sequence[int], chunk: int, top_k: int | None = None
) -> Reference:
    """Pass 1: the source's top-`top_k` log-probs at every scored position
    (None: as many as RECORD_BUDGET_BYTES holds)."""
    import mlx.core as mx
    import numpy as np

    columns: list[list[np.ndarray]] = [[], [], [], []]
    vocab_size = 0
    for logprobs, targets in chunk_logprobs(model, tokens, chunk):
        vocab_size = logprobs.shape[-1]
        k = min(top_k or record_top_k(len(tokens), vocab_size), vocab_size)
        ids = mx.argpartition(-logprobs, kth=k - 1, axis=-1)[:, :k]
        top = mx.take_along_axis(logprobs, ids, axis=-1)
        order = mx.argsort(-top, axis=-1)
        ids = mx.take_along_axis(ids, order, axis=-1).astype(mx.int32)
        top = mx.take_along_axis(top, order, axis=-1)
        rows = (
            ids,
            top,
            rest_logmass(logprobs, ids),
            target_logprobs(logprobs, targets),
        )
        mx.eval(*rows)
        for column, row in zip(columns, rows, strict=True):
            column.append(np.array(row))
    if not columns[0]:
        raise QualityError("no position to score: the text needs at least 2 tokens")
    ids, top, rest, target = (np.concatenate(column) for column in columns)
    return Reference(vocab_size, ids, top, rest, target)
