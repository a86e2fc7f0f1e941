"""The verification rule keeps the target distribution (a statistical test)
and, greedy, keeps exactly the proposals that are the argmax."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlx_gen.engine.sampling import BatchSampling, make_key
from mlx_gen.engine.speculation.verify import verify
from mlx_gen.engine.types import SamplingParams

# The chi-square statistic's 0.1 % critical value for 5 degrees of freedom:
# a right rule fails this test once in a thousand seeds; it is seeded.
CHI2_5_DOF_999 = 20.515
ROWS = 20000


def _chi_square(counts: list[int], probs: list[float]) -> float:
    total = sum(counts)
    return sum(
        (c - total * p) ** 2 / (total * p) for c, p in zip(counts, probs, strict=True)
    )


def test_kept_and_bonus_tokens_follow_the_target_distribution():
    """Two positions, six tokens; every row proposes the same two tokens.
    The first token written must follow p0 whatever was proposed, and the
    second, after the first proposal was kept, p1."""
    p0 = [0.35, 0.25, 0.15, 0.1, 0.1, 0.05]
    p1 = [0.05, 0.1, 0.4, 0.2, 0.15, 0.1]
    p2 = [1 / 6] * 6
    logits = mx.log(mx.array([p0, p1, p2]))[None].astype(mx.float32)
    logits = mx.broadcast_to(logits, (ROWS, 3, 6))
    keys = mx.stack([make_key(7, i) for i in range(ROWS)])
    params = [SamplingParams(temperature=1.0)] * ROWS
    sampling = BatchSampling.build(params, 6)
    drafts = [[0, 2]] * ROWS
    verified = verify(logits, keys, sampling, drafts, params)

    first = [row[0][0] for row in verified.tokens]
    assert _chi_square([first.count(t) for t in range(6)], p0) < CHI2_5_DOF_999
    after_kept = [row[1][0] for row in verified.tokens if len(row) > 1]
    assert len(after_kept) == first.count(0)  # kept exactly when it matched
    assert _chi_square([after_kept.count(t) for t in range(6)], p1) < CHI2_5_DOF_999
    kept = verified.accepted
    assert sum(kept) / ROWS == pytest.approx(p0[0] + p0[0] * p1[2], abs=0.02)


def test_greedy_keeps_exactly_the_proposals_that_are_the_argmax():
    logits = mx.array(
        [[[0.0, 5.0, 1.0], [4.0, 0.0, 1.0], [0.0, 0.0, 3.0]]] * 3, dtype=mx.float32
    )
    params = [SamplingParams(temperature=0.0)] * 3
    sampling = BatchSampling.build(params, 3)
    keys = mx.stack([make_key(0, i) for i in range(3)])
    verified = verify(logits, keys, sampling, [[1, 0], [1, 2], [2]], params)
    assert verified.accepted == [2, 1, 0]
    assert [[t for t, _ in row] for row in verified.tokens] == [
        [1, 0, 2],
        [1, 0],
        [1],
    ]
    assert verified.rejected == [0, 1, 2]
    assert verified.next_inputs.tolist() == [2, 0, 1]
