"""`mlx_gen.models.quality_reference`: scoring a text chunk by chunk, a step at
a time through the cache, and the source's top-k record."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_gen.models.quality_reference import (
    STEP,
    chunk_logprobs,
    record_top_k,
    score_reference,
)

# Longer than a step (128) and than the tiny model's sliding window (32).
CHUNK = 300
TOKENS = [(7 * i * i + 3 * i + 11) % 1000 for i in range(2 * CHUNK + 101)]


def _direct_logprobs(model, piece: list[int]) -> np.ndarray:
    """One forward pass of a whole chunk, no cache: the plain definition."""
    logits = model(mx.array([piece[:-1]]))[0].astype(mx.float32)
    return np.array(logits - mx.logsumexp(logits, axis=-1, keepdims=True))


def test_chunks_are_scored_as_one_forward_pass_each(tiny_model):
    model, _ = tiny_model
    assert CHUNK > STEP
    steps = list(chunk_logprobs(model, TOKENS, CHUNK))
    logprobs = np.concatenate([np.array(lp) for lp, _ in steps])
    targets = np.concatenate([np.array(t) for _, t in steps])
    chunks = [TOKENS[s : s + CHUNK] for s in range(0, len(TOKENS), CHUNK)]
    assert [len(c) for c in chunks] == [300, 300, 101]
    # Each chunk's first token is predicted by nothing, its last predicts nothing.
    expected = np.concatenate([_direct_logprobs(model, c) for c in chunks])
    assert logprobs.shape == (len(TOKENS) - len(chunks), 1024)
    np.testing.assert_allclose(logprobs, expected, atol=2e-4)
    assert targets.tolist() == [t for c in chunks for t in c[1:]]


def test_the_record_keeps_the_most_likely_tokens_and_the_rest_of_the_mass(
    tiny_model,
):
    model, _ = tiny_model
    reference = score_reference(model, TOKENS, CHUNK, top_k=50)
    full = np.concatenate(
        [np.array(lp) for lp, _ in chunk_logprobs(model, TOKENS, CHUNK)]
    )
    assert reference.top_ids.shape == (reference.positions, 50)
    assert reference.positions == len(full)
    rows = np.arange(len(full))[:, None]
    np.testing.assert_array_equal(full[rows, reference.top_ids], reference.top_logprobs)
    # Most likely first, and none left out is likelier than the last one kept.
    assert (np.diff(reference.top_logprobs, axis=1) <= 0).all()
    outside = full.copy()
    outside[rows, reference.top_ids] = -np.inf
    assert (outside.max(axis=1) <= reference.top_logprobs[:, -1]).all()
    # What is kept and the rest's mass add up to 1.
    kept = np.logaddexp.reduce(reference.top_logprobs, axis=1)
    total = np.logaddexp(kept, reference.rest_logmass)
    np.testing.assert_allclose(total, 0.0, atol=1e-4)
    targets = np.concatenate(
        [np.array(t) for _, t in chunk_logprobs(model, TOKENS, CHUNK)]
    )
    np.testing.assert_array_equal(
        reference.target_logprobs, full[np.arange(len(full)), targets]
    )


def test_a_whole_vocabulary_record_leaves_no_rest(tiny_model):
    model, _ = tiny_model
    reference = score_reference(model, TOKENS[:100], CHUNK)  # k left to choose
    assert reference.top_ids.shape[1] == reference.vocab_size == 1024
    assert np.isneginf(reference.rest_logmass).all()


@pytest.mark.parametrize(
    ("positions", "vocab_size", "k"),
    [(4096, 1024, 1024), (4096, 8192, 7812), (2584, 8192, 8192), (10**9, 50, 1)],
)
def test_the_record_fits_its_budget(positions, vocab_size, k):
    assert record_top_k(positions, vocab_size) == k
