"""Which proposed tokens a row keeps: sampling at every proposed position.

Position j of a row (its last token, then its proposals) is sampled exactly
as a plain decode step would sample that token: the same processors-free
logits, the same filters, and the row's PRNG key split once per token. A
proposal is kept while it equals the token sampled before it; the first
sample that differs, or the one after the last kept proposal, is the row's
bonus token. For a deterministic proposal (one token, probability 1) this is
the standard speculative rule: the proposal d is kept with probability p(d),
and on rejection the token comes from p with d removed and renormalised,
because the sample is drawn from p and is not d. So the output distribution
is the target's, and each token uses the same key as without speculation: a
seeded row writes the same tokens with speculation on or off, up to the
float rounding of a multi-token forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx

from mlx_gen.engine.sampling import BatchSampling, sample
from mlx_gen.engine.types import SamplingParams, TokenLogprob


def feed(last: list[int], drafts: list[list[int]]) -> tuple[mx.array, int]:
    """The tokens of a verification step, flat, and how many per row: each
    row's last token and its proposals, padded with its last token (the
    padding is rejected like a wrong proposal)."""
    width = 1 + max(len(d) for d in drafts)
    rows = [
        [t, *d, *[t] * (width - 1 - len(d))] for t, d in zip(last, drafts, strict=True)
    ]
    return mx.array(rows, dtype=mx.uint32).reshape(-1), width


@dataclass
class Verified:
    # Per row: its kept proposals followed by its bonus token, with logprobs.
    tokens: list[list[tuple[int, TokenLogprob | None]]]
    accepted: list[int]  # proposals kept, per row
    next_inputs: mx.array  # (B,) uint32: each row's bonus token
    next_keys: mx.array  # (B, 2): each row's key after its tokens
    width: int  # tokens fed per row

    @property
    def rejected(self) -> list[int]:
        """Per row: its fed tokens the caches must drop."""
        return [self.width - 1 - a for a in self.accepted]

    def emitted(self, rows: list[Any]) -> list[tuple[Any, int, TokenLogprob | None]]:
        """(row, token, logprob) in order, as a decode step's output."""
        return [
            (seq, token, logprob)
            for seq, kept in zip(rows, self.tokens, strict=True)
            for token, logprob in kept
        ]


def verify(
    logits: mx.array,
    keys: mx.array,
    sampling: BatchSampling,
    drafts: list[list[int]],
    params: list[SamplingParams],
) -> Verified:
    """`logits` (B, S, vocab) float32 of each row fed its last token and its
    `drafts` (padded to S - 1); `keys` (B, 2) the rows' PRNG keys."""
    width = logits.shape[1]
    outs = []
    for j in range(width):
        out = sample(logits[:, j], keys, sampling)
        keys = out.keys
        outs.append(out)
    tokens = mx.stack([out.tokens for out in outs], axis=1)
    padded = [d + [-1] * (width - 1 - len(d)) for d in drafts]
    proposed = mx.array(padded, dtype=mx.int64).reshape(len(drafts), width - 1)
    agree = tokens[:, :-1].astype(mx.int64) == proposed
    accepted = mx.cumprod(agree.astype(mx.int32), axis=1).sum(axis=1)
    chosen = accepted[:, None]
    next_inputs = mx.take_along_axis(tokens, chosen, axis=1)[:, 0]
    all_keys = mx.stack([out.keys for out in outs], axis=1)
    next_keys = mx.take_along_axis(all_keys, chosen[:, :, None], axis=1)[:, 0]
    mx.eval(next_inputs, next_keys, accepted, *(a for o in outs for a in o.arrays()))
    kept = accepted.tolist()
    read = [out.read(params) for out in outs]
    rows = [[read[j][i] for j in range(a + 1)] for i, a in enumerate(kept)]
    return Verified(rows, kept, next_inputs, next_keys, width)
