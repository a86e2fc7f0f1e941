"""Rolling rejected tokens out of the batch's caches, row by row, against
caches that were only ever fed the kept tokens: every layer kind of the tiny
model (window 32), well past the window's wrap. It fails with mlx-lm's `trim`
in place of the rollback, and without `prepare` (checked once, on purpose)."""

from __future__ import annotations

import random

import mlx.core as mx
import numpy as np
from mlx_lm.models.cache import BatchRotatingKVCache, make_prompt_cache

from mlx_gen.engine.speculation import rollback


def _prefilled(model, prompt: list[int]) -> list:
    """A prompt's cache, all but its last token fed, as the runner prefills."""
    cache = make_prompt_cache(model)
    model(mx.array(prompt[:-1])[None], cache=cache)
    return cache


def test_rejected_tokens_leave_every_row_of_every_layer(tiny_model):
    model = tiny_model[0]
    rng = random.Random(0)
    prompts = [[rng.randrange(10, 1000) for _ in range(n)] for n in (40, 9, 23)]
    # The rows merged into batch caches, as the runner merges them; and each
    # row alone, fed only the tokens it keeps, one at a time.
    solos = [_prefilled(model, p) for p in prompts]
    batch = [
        type(layers[0]).merge(list(layers))
        for layers in zip(*[_prefilled(model, p) for p in prompts], strict=True)
    ]
    last = [p[-1] for p in prompts]
    lengths = [len(p) for p in prompts]
    for step in range(40):
        # Each row: its last kept token and 4 more, of which it keeps a random
        # number; every third step is a plain one-token decode step, which
        # writes the sliding-window layers in place, over their oldest entry.
        width = 1 if step % 3 == 2 else 5
        fed = [[t] + [rng.randrange(10, 1000) for _ in range(width - 1)] for t in last]
        kept = [rng.randrange(width) for _ in prompts]
        if width > 1:
            rollback.prepare(batch)
        logits = model(mx.array(fed), cache=batch)
        if width > 1:
            rollback.rollback(batch, [width - 1 - k for k in kept])
        for i, (row, k) in enumerate(zip(fed, kept, strict=True)):
            for j in range(k + 1):
                want = model(mx.array([[row[j]]]), cache=solos[i])[0, -1]
                np.testing.assert_allclose(
                    np.array(logits[i, j]), np.array(want), atol=1e-4
                )
            last[i] = row[k]
            lengths[i] += k + 1
    window = next(c for c in batch if isinstance(c, BatchRotatingKVCache)).max_size
    assert min(lengths) > 2 * window  # every row wrapped its window, twice
