"""The running batch and every MLX call of a step.

Decode is pipelined as in mlx-lm's BatchGenerator: step k is built and
started with `mx.async_eval` before the tokens of step k-1 are read back (one
`tolist()` per step), so the device always has the next step queued while
Python handles the previous one.

A sequence is prefilled alone (its prompt minus the last token, in chunks,
into a plain mlx-lm cache), then merged into the batch's caches (mlx-lm's
BatchKVCache / BatchRotatingKVCache), where its last prompt token is fed by
the next decode step. Prefilling alone keeps a sequence's numbers independent
of the batch it later joins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.cache import TokenBuffer, make_prompt_cache

from mlx_gen.engine.constraints import ConstraintMasks
from mlx_gen.engine.sampling import BatchSampling, Sampled, make_key, sample
from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.types import TokenLogprob


@dataclass
class _Launch:
    rows: list[Sequence]
    out: Sampled


@dataclass
class StepOutput:
    # (sequence, token, logprob) of the step launched before this one.
    tokens: list[tuple[Sequence, int, TokenLogprob | None]] = field(
        default_factory=list
    )
    # Sequences whose own logits processors raised while building this step.
    failed: list[tuple[Sequence, Exception]] = field(default_factory=list)


class ModelRunner:
    def __init__(self, model: nn.Module, vocab_size: int) -> None:
        self.model = model
        self.vocab_size = vocab_size
        self.rows: list[Sequence] = []
        self._cache: list[Any] | None = None
        self._inputs: mx.array | None = None  # (B,) tokens of the next step
        self._keys: mx.array | None = None  # (B, 2) PRNG keys
        self._sampling: BatchSampling | None = None
        self._launched: _Launch | None = None
        self._masks = ConstraintMasks()

    # Prefill, one sequence at a time.

    def new_cache(self) -> list[Any]:
        return make_prompt_cache(self.model)

    def prefill(self, cache: list[Any], tokens: list[int]) -> None:
        # Only the cache is evaluated: the logits of a prefill chunk never are.
        self.model(mx.array(tokens)[None], cache=cache)
        mx.eval([c.state for c in cache])

    def prepare(self, seq: Sequence, seed: int) -> None:
        """Give `seq` its PRNG key (from the request's seed and its index
        among the request's choices) and its processors' token context."""
        seq.key = make_key(seed, seq.index)
        if seq.processors:
            seq.context = TokenBuffer(seq.request.prompt_token_ids[:-1])

    # The batch.

    def add(self, seqs: list[Sequence], cache: list[Any], last_token: int) -> None:
        """Join `seqs` (choices sharing one prefilled prompt) to the batch."""
        merged = [layer.merge([layer] * len(seqs)) for layer in cache]
        if self._cache is None:
            self._cache = merged
        else:
            for mine, theirs in zip(self._cache, merged, strict=True):
                mine.extend(theirs)
        inputs = mx.array([last_token] * len(seqs), dtype=mx.uint32)
        keys = mx.stack([s.key for s in seqs])
        if self._inputs is None:
            self._inputs, self._keys = inputs, keys
        else:
            self._inputs = mx.concatenate([self._inputs, inputs])
            self._keys = mx.concatenate([self._keys, keys])
        self.rows = [*self.rows, *seqs]  # never mutated: launches keep it
        self._sampling = None

    def remove(self, seqs: list[Sequence]) -> None:
        gone = {id(s) for s in seqs}
        keep = [i for i, s in enumerate(self.rows) if id(s) not in gone]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.clear()
            return
        for layer in self._cache:
            layer.filter(keep)
        index = mx.array(keep)
        self._inputs = self._inputs[index]
        self._keys = self._keys[index]
        self.rows = [self.rows[i] for i in keep]
        self._sampling = None

    def clear(self) -> None:
        """Drop the batch and everything in flight."""
        self.rows = []
        self._cache = self._inputs = self._keys = None
        self._sampling = None
        self._launched = None

    def in_flight(self) -> list[Sequence]:
        """The rows of the launched step whose tokens are not read yet."""
        return self._launched.rows if self._launched else []

    # One decode step.

    def step(self) -> StepOutput:
        """Launch the next step; return the tokens of the previous one."""
        if self._sampling is None:
            self._sampling = BatchSampling.build(
                [s.params for s in self.rows],
                self.vocab_size,
                processors=any(s.processors for s in self.rows),
            )
        inputs = self._inputs
        logits = self.model(inputs[:, None], cache=self._cache)[:, -1, :]
        if logits.dtype != mx.float32:
            logits = logits.astype(mx.float32)
        output = StepOutput()
        previous = self._launched
        if self._masks.constrained(self.rows):
            logits = self._constrain(logits, previous, output)
            previous = None  # its tokens are read
        contexts: list[mx.array] = []
        if self._sampling.processors:
            logits = self._process(logits, inputs, contexts, output.failed)
        out = sample(logits, self._keys, self._sampling)
        mx.async_eval(*out.arrays(), *contexts)
        self._inputs, self._keys = out.tokens, out.keys
        self._launched = _Launch(self.rows, out)
        if previous is not None:
            output.tokens = self._read(previous)
        return output

    def _constrain(
        self, logits: mx.array, previous: _Launch | None, output: StepOutput
    ) -> mx.array:
        """Mask the constrained rows. Their masks need the previous step's
        tokens: read them while this step's forward pass runs."""
        mx.async_eval(logits)
        if previous is not None:
            output.tokens = self._read(previous)
            output.failed += self._masks.advance(output.tokens)
        return self._masks.apply(self.rows, logits)

    def _process(
        self,
        logits: mx.array,
        inputs: mx.array,
        contexts: list[mx.array],
        failed: list[tuple[Sequence, Exception]],
    ) -> mx.array:
        rows = []
        for i, seq in enumerate(self.rows):
            row = logits[i : i + 1]
            if seq.processors:
                context = seq.context.update_and_fetch(inputs[i : i + 1])
                contexts.append(context)
                try:
                    for processor in seq.processors:
                        row = processor(context, row)
                    if row.shape != (1, logits.shape[-1]):
                        raise ValueError(f"a logits processor returned {row.shape}")
                    row = row.astype(mx.float32)
                except Exception as exc:  # the request's own code: its fault only
                    failed.append((seq, exc))
                    row = logits[i : i + 1]
            rows.append(row)
        return mx.concatenate(rows, axis=0)

    @staticmethod
    def _read(launch: _Launch) -> list[tuple[Sequence, int, TokenLogprob | None]]:
        out = launch.out
        tokens = out.tokens.tolist()
        if out.logprob is None:
            return [(s, t, None) for s, t in zip(launch.rows, tokens, strict=True)]
        chosen = out.logprob.tolist()
        top_ids = out.top_ids.tolist() if out.top_ids is not None else None
        top_lps = out.top_logprobs.tolist() if out.top_logprobs is not None else None
        results = []
        for i, (seq, token) in enumerate(zip(launch.rows, tokens, strict=True)):
            logprob = None
            if seq.params.logprobs:
                top = []
                if seq.params.top_logprobs and top_ids is not None:
                    pairs = sorted(
                        zip(top_ids[i], top_lps[i], strict=True), key=lambda p: -p[1]
                    )
                    top = pairs[: seq.params.top_logprobs]
                logprob = TokenLogprob(token, chosen[i], top)
            results.append((seq, token, logprob))
        return results
