"""Calls every rank of a tensor-parallel group runs (distributed/).

A ModelRunner method marked `every_rank` touches the model or its caches: on
rank 0 of a group, calling it first tells the other ranks, which run the
same method with the same arguments on their own runner, so that the
collectives inside the sharded model pair up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

R = TypeVar("R")

# The `every_rank` methods by name: what the other ranks may be told to run.
EVERY_RANK: dict[str, Callable[..., Any]] = {}


class Leader(Protocol):
    """Rank 0 of a tensor-parallel group (distributed/leader.py)."""

    def call(self, method: Callable[..., R], runner: Runner, *args: Any) -> R:
        """Tell the other ranks to run `method(their runner, *args)`, run it
        here, and return what it returns here."""


class Runner(Protocol):
    """What `every_rank` needs of a runner (model_runner.py's ModelRunner),
    named here so that this module does not import the runner's."""

    leader: Leader | None


def every_rank(method: Callable[..., R]) -> Callable[..., R]:
    """Marks a method every rank runs, in the same order, with the same
    arguments: ints, lists of ints, and uint32 token arrays."""
    EVERY_RANK[method.__name__] = method

    @functools.wraps(method)
    def run(self: Runner, *args: Any) -> R:
        if self.leader is None:
            return method(self, *args)
        return self.leader.call(method, self, *args)

    return run
