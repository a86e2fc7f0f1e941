"""When to speculate and for which rows; the counts /metrics shows.

A step speculates when the batch is small enough that decoding is bound by
reading the weights (`max_batch`, measured: benchmarks/RESULTS.md) and no
row is grammar-constrained (a constrained row's mask needs the token before
it, which a verification step has not sampled yet). A row proposes unless
its request opted out, it has logits processors (they see one token at a
time), or it is resting: a row whose recent proposals were mostly rejected,
or found nothing to propose, rests for its next `cooldown` tokens, twice as
many each time it fails again. A row proposes one token more than its last
run of kept proposals, at most `k`: the length its acceptance pays for.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.speculation.proposers import Proposer
from mlx_gen.engine.types import SpeculationTotals


@dataclass
class _Row:
    # Moving average of the share of its proposals a row keeps (1: all).
    rate: float = 1.0
    resume_at: int = 0  # output length from which it proposes again
    length: int = 1  # tokens it proposes next
    rest: int = 0  # tokens of its next rest


class Speculator:
    # The rate below which a row rests, and how fast the average moves.
    min_rate = 0.2
    smoothing = 0.3
    longest_rest = 512

    def __init__(
        self, proposer: Proposer, k: int, max_batch: int, cooldown: int = 8
    ) -> None:
        if k < 1:
            raise ValueError(f"the number of speculative tokens must be >= 1, not {k}")
        self.proposer, self.k = proposer, k
        self.max_batch, self.cooldown = max_batch, cooldown
        self.totals = SpeculationTotals()
        # Weak: a sequence that ends and is dropped takes its record along.
        self._rows: weakref.WeakKeyDictionary[Sequence, _Row] = (
            weakref.WeakKeyDictionary()
        )

    def active(self, rows: list[Sequence]) -> bool:
        """Whether this step of the batch `rows` speculates."""
        live = [s for s in rows if not s.finished]
        if not live or len(live) > self.max_batch:
            return False
        if any(s.request.constraint is not None for s in live):
            return False
        return any(self._eligible(s) for s in live)

    def propose(self, rows: list[Sequence]) -> list[list[int]]:
        """Each row's proposals ([] for a row that does not speculate)."""
        drafts = []
        for seq in rows:
            # Never propose past max_tokens: the bonus token is the last one.
            room = seq.params.max_tokens - len(seq.output) - 1
            k = min(self._row(seq).length, room)
            eligible = k > 0 and not seq.finished and self._eligible(seq)
            drafts.append(self.proposer.propose(seq, k) if eligible else [])
        return drafts

    def record(
        self, rows: list[Sequence], drafts: list[list[int]], accepted: list[int]
    ) -> None:
        """Count a verification step; rows that keep too little rest."""
        self.totals.steps += 1
        for seq, draft, kept in zip(rows, drafts, accepted, strict=True):
            if not draft and not self._eligible(seq):
                continue
            row = self._row(seq)
            share = kept / len(draft) if draft else 0.0
            # As long as the last run kept, one more: the longest proposal
            # worth its verification cost.
            row.length = min(self.k, kept + 1 if kept < len(draft) else kept + 2)
            self.totals.proposed += len(draft)
            self.totals.accepted += kept
            seq.accepted_tokens += kept
            row.rate += self.smoothing * (share - row.rate)
            if share >= self.min_rate:
                row.rest = self.cooldown
            elif row.rate < self.min_rate:  # each rest in a row twice as long
                # The step's own tokens (kept + 1) are not in the output yet.
                row.rate, row.resume_at = 1.0, len(seq.output) + kept + 1 + row.rest
                row.rest = min(2 * row.rest, self.longest_rest)

    def _row(self, seq: Sequence) -> _Row:
        row = self._rows.get(seq)
        if row is None:
            row = self._rows[seq] = _Row(length=self.k, rest=self.cooldown)
        return row

    def _eligible(self, seq: Sequence) -> bool:
        row = self._rows.get(seq)
        return (
            seq.params.speculative
            and not seq.processors
            and (row is None or len(seq.output) >= row.resume_at)
        )
