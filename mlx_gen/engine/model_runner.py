"""The engine's MLX state, and every MLX call of a step.

The runner knows no request. It holds prompt caches by slot number and prefix
snapshots by entry number (prompt_caches.py), and the batch's caches and
sampling state by row; the scheduler decides what they hold and hands `step`
the batch's sequences in row order (scheduler.py).

A prefilled prompt's cache is merged into the batch's caches (mlx-lm's
BatchKVCache / BatchRotatingKVCache), where its last token is fed by the
next decode step.

Decode is pipelined as in mlx-lm's BatchGenerator: step k is built and
started with `mx.async_eval` before the tokens of step k-1 are read back (one
`tolist()` per step), so the device always has the next step queued while
Python handles the previous one. A speculative step (speculation/) is not:
its proposals need every token before them.

Tensor parallel: each rank has a runner over its shard of the model and runs
the methods marked `every_rank` as rank 0 does (every_rank.py). Only rank 0
samples: the rows' PRNG keys, sampling arrays and processor contexts are its
alone, and its step's call carries the tokens it sampled at the step before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.cache import TokenBuffer, make_prompt_cache

from mlx_gen.engine import sampling
from mlx_gen.engine.constraints import ConstraintMasks
from mlx_gen.engine.every_rank import Leader, every_rank
from mlx_gen.engine.prompt_caches import PromptCaches
from mlx_gen.engine.sampling import BatchSampling, Sampled, make_key, sample
from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.speculation import rollback
from mlx_gen.engine.speculation.experts import grouped_experts
from mlx_gen.engine.speculation.proposers import HiddenStateReader
from mlx_gen.engine.speculation.speculator import Speculator
from mlx_gen.engine.speculation.verify import feed, verify
from mlx_gen.engine.types import TokenLogprob


@dataclass
class _Launch:
    rows: tuple[Sequence, ...]
    out: Sampled


@dataclass
class StepOutput:
    # (sequence, token, logprob) of the step launched before this one.
    tokens: list[tuple[Sequence, int, TokenLogprob | None]] = field(
        default_factory=list
    )
    # Sequences whose own logits processors raised while building this step.
    failed: list[tuple[Sequence, Exception]] = field(default_factory=list)


class ModelRunner(PromptCaches):
    def __init__(
        self,
        model: nn.Module,
        vocab_size: int,
        leader: Leader | None = None,
        speculator: Speculator | None = None,
    ) -> None:
        # An eagle3 proposer: told what each forward pass fed.
        proposer = speculator and speculator.proposer
        reader = proposer if isinstance(proposer, HiddenStateReader) else None
        super().__init__(model, leader, reader)
        self.vocab_size = vocab_size
        self.speculator = speculator
        self.row_steps = 0  # rows x decode forward passes, verifications too
        self._cache: list[Any] | None = None  # the batch's caches
        # Rank 0's, by batch row: the next step's input tokens, PRNG keys,
        # and the token context of rows with logits processors.
        self._inputs: mx.array | None = None
        self._keys: mx.array | None = None
        self._contexts: list[TokenBuffer | None] = []
        self._sampling: BatchSampling | None = None
        self._launched: _Launch | None = None
        self._masks = ConstraintMasks()

    # The batch's caches.

    @every_rank
    def merge(self, slot: int, rows: int) -> None:
        """The prompt cache of `slot` joins the batch as its last `rows` rows."""
        cache = self._prompts.pop(slot, None) or make_prompt_cache(self.model)
        merged = [layer.merge([layer] * rows) for layer in cache]
        if self._cache is None:
            self._cache = merged
        else:
            for mine, theirs in zip(self._cache, merged, strict=True):
                mine.extend(theirs)

    @every_rank
    def filter(self, rows: list[int]) -> None:
        """Keep only these rows of the batch's caches; none: drop them."""
        if not rows:
            self._cache = None
            return
        for layer in self._cache:
            layer.filter(rows)

    @every_rank
    def forward(self, inputs: mx.array) -> mx.array:
        """The logits of one decode step, the batch's rows fed `inputs`."""
        return self.model(inputs[:, None], cache=self._cache)[:, -1, :]

    @every_rank
    def verify(self, tokens: mx.array, width: int) -> mx.array:
        """The logits (B, width, vocab) of the batch's rows fed `tokens`,
        `width` per row: a verification step (speculation/)."""
        rollback.prepare(self._cache)
        with grouped_experts(self.model):
            return self.model(tokens.reshape(-1, width), cache=self._cache)

    @every_rank
    def rollback(self, rejected: list[int]) -> None:
        """Drop the last `rejected[i]` tokens of row i from the caches."""
        rollback.rollback(self._cache, rejected)

    # Rank 0's rows.

    def add(self, seqs: list[Sequence], slot: int, last_token: int, seed: int) -> None:
        """Join `seqs`, the choices of one request prefilled into `slot`, to the
        batch after its last row; their PRNG keys come from `seed` and their
        index among the request's choices."""
        self.merge(slot, len(seqs))
        if self._reader is not None:
            self._reader.joined(seqs, slot)
        inputs = mx.array([last_token] * len(seqs), dtype=mx.uint32)
        keys = mx.stack([make_key(seed, s.index) for s in seqs])
        if self._inputs is None:
            self._inputs, self._keys = inputs, keys
        else:
            self._inputs = mx.concatenate([self._inputs, inputs])
            self._keys = mx.concatenate([self._keys, keys])
        self._contexts += [
            TokenBuffer(s.request.prompt_token_ids[:-1]) if s.processors else None
            for s in seqs
        ]
        self._sampling = None

    def retain(self, rows: list[int]) -> None:
        """Keep only these rows of the batch, in this order."""
        if not rows:
            self.clear()
            return
        self.filter(rows)
        index = mx.array(rows)
        self._inputs = self._inputs[index]
        self._keys = self._keys[index]
        self._contexts = [self._contexts[i] for i in rows]
        self._sampling = None

    def clear(self) -> None:
        """Drop the batch and everything in flight."""
        self.filter([])
        self._inputs = self._keys = self._sampling = self._launched = None
        self._contexts = []

    # One decode step.

    def step(self, rows: list[Sequence]) -> StepOutput:
        """Launch the next step of the batch, whose rows are `rows`; return
        the tokens of the previous one, or a speculative step's own."""
        if self._sampling is None:
            self._sampling = BatchSampling.build(
                [s.params for s in rows],
                self.vocab_size,
                processors=any(s.processors for s in rows),
            )
        if self.speculator is not None and self.speculator.active(rows):
            if self._launched is None:
                return self._speculate(rows)
            previous, self._launched = self._launched, None
            return StepOutput(tokens=self._read(previous))
        inputs = self._inputs
        logits = self.forward(inputs)
        if self._reader is not None:
            self._reader.fed_rows(rows, inputs[:, None], [1] * len(rows))
        if logits.dtype != mx.float32:
            logits = logits.astype(mx.float32)
        output = StepOutput()
        previous = self._launched
        if self._masks.constrained(rows):
            logits = self._constrain(rows, logits, previous, output)
            previous = None  # its tokens are read
        contexts: list[mx.array] = []
        if self._sampling.processors:
            logits = sampling.run_processors(
                rows, logits, inputs, self._contexts, contexts, output.failed
            )
        out = sample(logits, self._keys, self._sampling)
        mx.async_eval(*out.arrays(), *contexts)
        self._inputs, self._keys = out.tokens, out.keys
        self._launched = _Launch(tuple(rows), out)
        self.row_steps += len(rows)
        if previous is not None:
            output.tokens = self._read(previous)
        return output

    def _speculate(self, rows: list[Sequence]) -> StepOutput:
        drafts = self.speculator.propose(rows)
        fed, width = feed(self._inputs.tolist(), drafts)
        logits = self.verify(fed, width).astype(mx.float32)
        self.row_steps += len(rows)
        output = StepOutput()
        if self._sampling.processors:  # their rows propose nothing: position 0
            first = sampling.run_processors(
                rows, logits[:, 0], self._inputs, self._contexts, [], output.failed
            )
            logits = mx.concatenate([first[:, None], logits[:, 1:]], axis=1)
        params = [s.params for s in rows]
        verified = verify(logits, self._keys, self._sampling, drafts, params)
        if self._reader is not None:
            kept = [a + 1 for a in verified.accepted]
            self._reader.fed_rows(rows, fed.reshape(-1, width), kept)
        if any(verified.rejected):
            self.rollback(verified.rejected)
        self._inputs, self._keys = verified.next_inputs, verified.next_keys
        self.speculator.record(rows, drafts, verified.accepted)
        output.tokens = verified.emitted(rows)
        return output

    def collect(self) -> StepOutput:
        """The tokens of the step in flight, read now instead of at the next
        step: when work ran after it (a prefill), it is done, and its tokens
        reach their streams an iteration sooner."""
        output = StepOutput()
        if self._launched is not None:
            output.tokens = self._read(self._launched)
            output.failed = self._masks.advance(output.tokens)
            self._launched = None
        return output

    @staticmethod
    def _read(launch: _Launch) -> list[tuple[Sequence, int, TokenLogprob | None]]:
        read = launch.out.read([s.params for s in launch.rows])
        return [(s, t, lp) for s, (t, lp) in zip(launch.rows, read, strict=True)]

    def _constrain(
        self,
        rows: list[Sequence],
        logits: mx.array,
        previous: _Launch | None,
        output: StepOutput,
    ) -> mx.array:
        """Mask the constrained rows. Their masks need the previous step's
        tokens: read them while this step's forward pass runs."""
        mx.async_eval(logits)
        if previous is not None:
            output.tokens = self._read(previous)
            output.failed += self._masks.advance(output.tokens)
        return self._masks.apply(rows, logits)
