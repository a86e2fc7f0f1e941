"""Per-sequence sampling inside one batched step.

Each row of a batch has its own parameters (temperature, top-k, top-p, min-p)
and its own PRNG key, split once per step, so a seeded sequence draws the same
tokens whatever batch it runs in. Everything is vectorized over the batch: one
small graph per step, never one per row. Penalties and logit bias are logits
processors (tokens, logits) -> logits, run on the rows that have them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import mlx.core as mx

from mlx_gen.engine.types import LogitsProcessor, SamplingParams, TokenLogprob

MAX_TOP_LOGPROBS = 20


def make_key(seed: int, choice: int = 0) -> mx.array:
    """The key of choice `choice` of a request seeded with `seed`; choice 0
    uses the seed itself, the others spread from it."""
    return mx.random.key((seed + choice * 0x9E3779B97F4A7C15) & (1 << 64) - 1)


def make_processors(params: SamplingParams, prompt_len: int) -> list[LogitsProcessor]:
    """Bias and penalties as processors. The token context they receive is the
    prompt followed by the tokens generated so far."""
    procs: list[LogitsProcessor] = []
    if params.logit_bias:
        ids = mx.array(list(params.logit_bias.keys()))
        bias = mx.array(list(params.logit_bias.values()), dtype=mx.float32)
        procs.append(lambda _, logits: logits.at[:, ids].add(bias))
    if params.repetition_penalty != 1.0:
        procs.append(_repetition(params.repetition_penalty))
    if params.presence_penalty or params.frequency_penalty:
        procs.append(
            _presence_frequency(
                params.presence_penalty, params.frequency_penalty, prompt_len
            )
        )
    return procs


def _repetition(penalty: float) -> LogitsProcessor:
    # As in the CTRL paper and Hugging Face: over the whole context.
    def apply(tokens: mx.array, logits: mx.array) -> mx.array:
        seen = logits[:, tokens]
        logits[:, tokens] = mx.where(seen < 0, seen * penalty, seen / penalty)
        return logits

    return apply


def _presence_frequency(
    presence: float, frequency: float, start: int
) -> LogitsProcessor:
    # As OpenAI defines them: over the generated tokens only.
    def apply(tokens: mx.array, logits: mx.array) -> mx.array:
        if tokens.size <= start:
            return logits
        generated = tokens[start:]
        if frequency:
            logits = logits.at[:, generated].subtract(frequency)
        if presence:
            logits[:, generated] = logits[:, generated] - presence
        return logits

    return apply


@dataclass
class BatchSampling:
    """The sampling parameters of the rows of a batch, as arrays."""

    greedy: mx.array  # (B,) bool
    inv_temp: mx.array  # (B, 1)
    top_k: mx.array  # (B, 1) int32, 0 = off
    top_p: mx.array  # (B, 1), > 1 = off
    log_min_p: mx.array  # (B, 1), -inf = off
    all_greedy: bool
    max_top_k: int
    any_top_p: bool
    any_min_p: bool
    logprobs: bool
    top_logprobs: int
    processors: bool = False  # some row has logits processors

    @classmethod
    def build(
        cls, rows: list[SamplingParams], vocab_size: int, processors: bool = False
    ) -> BatchSampling:
        greedy = [p.temperature <= 0 for p in rows]
        top_k = [p.top_k if 0 < p.top_k < vocab_size else 0 for p in rows]
        top_p = [p.top_p if 0 < p.top_p < 1 else 2.0 for p in rows]
        log_min_p = [math.log(p.min_p) if p.min_p > 0 else -math.inf for p in rows]

        def column(values: list, dtype: mx.Dtype = mx.float32) -> mx.array:
            return mx.array(values, dtype=dtype)[:, None]

        return cls(
            greedy=mx.array(greedy),
            inv_temp=column(
                [
                    1.0 if g else 1.0 / p.temperature
                    for g, p in zip(greedy, rows, strict=True)
                ]
            ),
            top_k=column(top_k, mx.int32),
            top_p=column(top_p),
            log_min_p=column(log_min_p),
            all_greedy=all(greedy),
            max_top_k=max(top_k, default=0),
            any_top_p=any(p < 1 for p in top_p),
            any_min_p=any(m > -math.inf for m in log_min_p),
            logprobs=any(p.logprobs for p in rows),
            top_logprobs=max((p.top_logprobs for p in rows if p.logprobs), default=0),
            processors=processors,
        )


@lru_cache(maxsize=8)
def _noise(vocab_size: int):
    """Per-row (next key, Gumbel noise), one vectorized graph for the batch."""

    def one(key: mx.array) -> tuple[mx.array, mx.array]:
        key, sub = mx.random.split(key)
        return key, mx.random.gumbel(shape=(vocab_size,), key=sub)

    return mx.vmap(one)


def _filter(scaled: mx.array, s: BatchSampling) -> mx.array:
    """Top-k, then top-p, then min-p, each masking tokens to -inf."""
    neg_inf = mx.array(-mx.inf, dtype=scaled.dtype)
    if s.max_top_k:
        best = mx.sort(mx.topk(scaled, s.max_top_k, axis=-1), axis=-1)
        index = mx.where(s.top_k > 0, s.max_top_k - s.top_k, 0)
        kth = mx.take_along_axis(best, index, axis=-1)
        scaled = mx.where((s.top_k > 0) & (scaled < kth), neg_inf, scaled)
    if s.any_top_p:
        ascending = mx.sort(scaled, axis=-1)
        probs = mx.softmax(ascending, axis=-1, precise=True)
        mass_above = mx.cumsum(probs, axis=-1, reverse=True, inclusive=False)
        dropped = (mass_above >= s.top_p).sum(axis=-1, keepdims=True)
        floor = mx.take_along_axis(ascending, dropped, axis=-1)
        scaled = mx.where(scaled < floor, neg_inf, scaled)
    if s.any_min_p:
        floor = scaled.max(axis=-1, keepdims=True) + s.log_min_p
        scaled = mx.where(scaled < floor, neg_inf, scaled)
    return scaled


@dataclass
class Sampled:
    tokens: mx.array  # (B,) uint32
    keys: mx.array  # (B, 2) the rows' keys for the next step
    logprob: mx.array | None = None  # (B,) of the chosen tokens
    top_ids: mx.array | None = None  # (B, top_logprobs), unsorted
    top_logprobs: mx.array | None = None

    def arrays(self) -> list[mx.array]:
        extra = [self.logprob, self.top_ids, self.top_logprobs]
        return [self.tokens, self.keys, *(a for a in extra if a is not None)]

    def read(
        self, params: list[SamplingParams]
    ) -> list[tuple[int, TokenLogprob | None]]:
        """Each row's token and, if its `params` ask, its logprobs (waits for
        the step)."""
        tokens = self.tokens.tolist()
        if self.logprob is None:
            return [(token, None) for token in tokens]
        chosen = self.logprob.tolist()
        top_ids = self.top_ids.tolist() if self.top_ids is not None else None
        top_lps = self.top_logprobs.tolist() if self.top_logprobs is not None else None
        results: list[tuple[int, TokenLogprob | None]] = []
        for i, (p, token) in enumerate(zip(params, tokens, strict=True)):
            logprob = None
            if p.logprobs:
                top = []
                if p.top_logprobs and top_ids is not None:
                    top = best_first(top_ids[i], top_lps[i], p.top_logprobs)
                logprob = TokenLogprob(token, chosen[i], top)
            results.append((token, logprob))
        return results


def sample(logits: mx.array, keys: mx.array, s: BatchSampling) -> Sampled:
    """Draw one token per row of `logits` (B, vocab), float32."""
    best = mx.argmax(logits, axis=-1)
    if s.all_greedy:
        out = Sampled(best, keys)
    else:
        keys, noise = _noise(logits.shape[-1])(keys)
        scaled = _filter(logits * s.inv_temp, s)
        drawn = mx.argmax(scaled + noise, axis=-1)
        out = Sampled(mx.where(s.greedy, best, drawn), keys)
    if s.logprobs:
        # The model's distribution after processors, before temperature.
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        out.logprob = mx.take_along_axis(logprobs, out.tokens[:, None], axis=-1)[:, 0]
        if s.top_logprobs:
            out.top_ids, out.top_logprobs = top_k(logprobs, s.top_logprobs)
    return out


def top_k(scores: mx.array, k: int) -> tuple[mx.array, mx.array]:
    """The ids and values of the `k` highest of each row, in no order."""
    ids = mx.argpartition(-scores, kth=k - 1, axis=-1)[:, :k]
    return ids, mx.take_along_axis(scores, ids, axis=-1)


def best_first(ids: list[int], values: list[float], k: int) -> list[tuple[int, float]]:
    """One row of `top_k`, read back: its `k` best (id, value), best first."""
    return sorted(zip(ids, values, strict=True), key=lambda t: -t[1])[:k]
