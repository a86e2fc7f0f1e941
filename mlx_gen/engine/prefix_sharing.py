"""Requests that arrive together compute their common prefix once.

A burst of chat requests shares the system prompt; a batch of questions
about one document shares the document. An admitted request whose prompt
shares a longer prefix with one being prefilled than the prefix cache holds
waits for that one (its leader), which keeps a prefix-cache snapshot when it
reaches the common point (a share point of its prefill); then the follower
starts from that snapshot, as from any prefix-cache entry.

Only a request that waits for no one leads, and only one admitted before its
follower: the waits never form a cycle, and a follower is released in the
same iteration as the others of its burst. A leader that ends early releases
its followers, which then look for another leader or start alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mlx_gen.engine.prefix_cache import MIN_REUSE, common_prefix

if TYPE_CHECKING:
    from mlx_gen.engine.sequence import RequestState


def waits(
    state: RequestState,
    prefilling: Iterable[RequestState],
    reusable: Callable[[], int],
) -> bool:
    """Whether unbegun `state` waits for a prefix of its prompt longer than
    the `reusable()` tokens the prefix cache has, that a request admitted
    before it is computing. `prefilling`: the admitted requests, in order."""
    prefilling = list(prefilling)
    leader = state.leader
    if leader is not None:
        if leader in prefilling and leader.position < state.shared_at:
            return True
        state.leader = None
    best, best_len = None, reusable() + MIN_REUSE - 1
    for other in prefilling:
        if other is state:
            break
        if other.leader is not None:  # it waits too
            continue
        n = common_prefix(other.prompt, state.prompt)
        n = min(n, len(other.prompt) - 1, len(state.prompt) - 1)
        if n > best_len and other.position <= n:  # it will pass through n
            best, best_len = other, n
    if best is None:
        return False
    state.leader, state.shared_at = best, best_len
    best.share_points.add(best_len)
    return True
