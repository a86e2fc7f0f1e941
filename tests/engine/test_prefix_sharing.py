"""Who waits for whose prefix in a burst (prefix_sharing.py), on the
scheduler's records alone: the engine-level proof is in test_prefix_cache.py."""

from __future__ import annotations

from mlx_gen.engine.prefix_sharing import waits
from mlx_gen.engine.sequence import RequestState
from mlx_gen.engine.types import GenerationRequest, SamplingParams

SYSTEM = list(range(100, 140))


def state(prompt: list[int]) -> RequestState:
    request = GenerationRequest(prompt, SamplingParams(max_tokens=4))
    return RequestState(request, [], None, 0.0)


def test_the_first_leads_and_the_others_wait_until_it_passes_the_common_point():
    a, b, c = (state([*SYSTEM, i, i + 1]) for i in (1, 2, 3))
    prefilling = [a, b, c]
    assert not waits(a, prefilling, lambda: 0)
    assert waits(b, prefilling, lambda: 0) and waits(c, prefilling, lambda: 0)
    # Both wait for the first, never for one that waits itself.
    assert (b.leader, c.leader) == (a, a)
    assert a.share_points == {len(SYSTEM)} and b.share_points == set()
    a.position = len(SYSTEM) - 1
    assert waits(b, prefilling, lambda: 0)
    a.position = len(SYSTEM)  # its snapshot is in the prefix cache now
    assert not waits(b, prefilling, lambda: len(SYSTEM))
    assert b.leader is None


def test_no_one_waits_for_what_the_prefix_cache_already_has():
    a, b = state([*SYSTEM, 1]), state([*SYSTEM, 2])
    assert not waits(b, [a, b], lambda: len(SYSTEM))
    assert a.share_points == set()


def test_a_leader_that_ends_releases_its_followers():
    a, b, c = (state([*SYSTEM, i]) for i in (1, 2, 3))
    assert waits(b, [a, b, c], lambda: 0)
    # a ended before the common point: b starts alone, or follows another.
    assert not waits(b, [b, c], lambda: 0)
    assert waits(c, [b, c], lambda: 0) and c.leader is b
