"""The scores of a prompt's own tokens, made in the prefill that caches it.

A prefill chunk's logits at position p are the model's distribution over the
prompt's token p + 1. For a request that asks (SamplingParams.prompt_logprobs)
each chunk is reduced on the device to, per position, the log-probability of
the token that follows, its rank, and the k most likely alternatives: only one
chunk's vocabulary-wide logits exist at a time, and memory.py sizes scoring
chunks so that they fit the prefill reserve.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

from mlx_gen.engine.sampling import best_first, top_k
from mlx_gen.engine.types import TokenLogprob

# Chunk x vocabulary float32 arrays alive at once while a chunk is scored: the
# logits, which an unscored prefill never computes, and the reductions' own
# (3.25 measured on the CPU at most, tests/engine/test_prompt_scores.py).
LOGIT_COPIES = 4


def logit_bytes_per_token(vocab_size: int) -> int:
    """What scoring adds to a prefill chunk's working memory, per token."""
    return LOGIT_COPIES * 4 * vocab_size


@dataclass
class ChunkScores:
    """A chunk's scores on the device, until `read`."""

    targets: mx.array  # (T,) the tokens that follow each position
    logprob: mx.array  # (T,)
    rank: mx.array  # (T,)
    top_ids: mx.array | None = None  # (T, k), in no order
    top_logprobs: mx.array | None = None

    def arrays(self) -> list[mx.array]:
        extra = [self.top_ids, self.top_logprobs]
        return [self.logprob, self.rank, *(a for a in extra if a is not None)]

    def read(self) -> list[TokenLogprob]:
        targets, ranks = self.targets.tolist(), self.rank.tolist()
        logprobs = self.logprob.tolist()
        tops: list[list[tuple[int, float]]] = [[] for _ in targets]
        if self.top_ids is not None:
            ids, values = self.top_ids.tolist(), self.top_logprobs.tolist()
            k = len(ids[0]) if ids else 0
            tops = [best_first(i, v, k) for i, v in zip(ids, values, strict=True)]
        return [
            TokenLogprob(token, logprob, top, rank)
            for token, logprob, top, rank in zip(
                targets, logprobs, tops, ranks, strict=True
            )
        ]


def score(logits: mx.array, targets: list[int], top: int) -> ChunkScores:
    """The scores of `targets` under `logits` (T, vocab), with `top`
    alternatives each: log-softmax, unnormalised logits never leave here."""
    logits = logits.astype(mx.float32)
    wanted = mx.array(targets, dtype=mx.uint32)
    norm = mx.logsumexp(logits, axis=-1, keepdims=True)
    chosen = mx.take_along_axis(logits, wanted[:, None], axis=-1)
    rank = (logits > chosen).sum(axis=-1) + 1
    scores = ChunkScores(wanted, (chosen - norm)[:, 0], rank)
    if top:
        ids, values = top_k(logits, top)
        scores.top_ids, scores.top_logprobs = ids, values - norm
    return scores
