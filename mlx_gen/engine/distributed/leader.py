"""Rank 0 of a tensor-parallel group: it sends each every-rank call of its
ModelRunner to the other ranks before making it, and watches them.

A collective whose peer is gone fails in one of two ways: the peer's socket
closes and MLX raises "[ring] connection to a peer was lost" within about a
second, or the peer hangs (a stopped process, a cable pulled) and the
collective waits forever. The first ends the engine at once; a watchdog
catches the second when a call has waited longer than `step_timeout`. Either
way the engine is dead for good (the ranks can no longer agree on the KV
caches): every request ends with an error, `/ready` answers 503, and the log
says why. While idle, rank 0 sends a heartbeat every second, so a lost rank
is found even when no request comes.

Nothing is left in flight between two calls: each call's collectives are
waited for before the next call is sent (protocol.settle), so ModelRunner's
pipelining is given up here (a step's call carries the tokens of the step
before, read first). What MLX 0.32's ring backend does when a peer dies
(measured with SIGKILL mid-stream):
- with collectives queued behind the one that fails, the thread waiting on
  them is blocked for good, or the process crashes (SIGSEGV) at the next
  `async_eval`: every time in a pipelined loop;
- with every collective waited for before the next is queued, it is a
  RuntimeError ("[ring] connection to a peer was lost") about a second later,
  unless the peer dies while rank 0 is queueing a step's graph: then that
  call blocks for good (the watchdog ends the engine) or, rarely, crashes.
  On the tiny test model, whose steps are mostly queueing, 5 of 8 kills gave
  the error, 3 the block.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import mlx.nn as nn

from mlx_gen.engine.distributed.protocol import (
    PING,
    REPORT,
    STOP,
    CallChannel,
    RankMemory,
    gather_memory,
    settle,
)

if TYPE_CHECKING:
    from mlx_gen.engine.model_runner import ModelRunner

logger = logging.getLogger("mlx_gen.distributed")

# An idle rank 0 sends a heartbeat this often, so that a lost rank is found
# even when no request comes.
HEARTBEAT_SECONDS = 1.0

R = TypeVar("R")


class DistributedFailure(BaseException):
    """The ranks are out of step for good. A BaseException, so that the
    engine's per-request fault handling cannot swallow it: it ends the engine."""


class Leader:
    heartbeat_seconds = HEARTBEAT_SECONDS

    def __init__(
        self, channel: CallChannel, model: nn.Module, step_timeout: float
    ) -> None:
        self.channel = channel
        self.model = model
        self.step_timeout = step_timeout
        self.failure: str | None = None
        self.lock = threading.Lock()  # busy_since and failure, with the watchdog
        self.busy_since: float | None = None
        self.last_op = time.monotonic()
        self.rank_memory: list[RankMemory] | None = None  # gathered at the end
        self._stopped = threading.Event()

    def call(self, method: Callable[..., R], runner: ModelRunner, *args: Any) -> R:
        """Run `method(runner, *args)` here and on every other rank."""
        with self._waiting():
            self.channel.send(method.__name__, args)
            return settle(method(runner, *args))

    def lead(self, iteration: Callable[[], bool], die: Callable[[str], None]) -> None:
        """Run the engine's iterations under the watchdog, which calls `die`
        when the engine thread is stuck; ping while idle; at the end, gather
        every rank's memory figures and let the other ranks go."""
        watchdog = threading.Thread(
            target=self._watch, args=(die,), name="mlx-gen-watchdog", daemon=True
        )
        watchdog.start()
        try:
            while iteration():
                if time.monotonic() - self.last_op >= HEARTBEAT_SECONDS:
                    with self._waiting():
                        self.channel.send(PING)
        finally:
            try:
                if self.failure is None:
                    with self._waiting():
                        self.channel.send(REPORT)
                        group = self.channel.group
                        self.rank_memory = gather_memory(group, self.model)
                        self.channel.send(STOP)
            finally:
                self._stopped.set()

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """Around every call: the watchdog times its wait on the other ranks;
        a failure in it, or found while it waited, ends the engine."""
        self._check()  # never a collective on a broken group
        with self.lock:
            self.busy_since = time.monotonic()
        try:
            yield
        except Exception as exc:  # a lost rank, or rank 0 failed alone: out of step
            self._fail(f"an operation failed: {type(exc).__name__}: {exc}")
            raise DistributedFailure(self.failure) from exc
        finally:
            with self.lock:
                self.busy_since = None
                self.last_op = time.monotonic()
        self._check()

    def _check(self) -> None:
        if self.failure is not None:
            raise DistributedFailure(self.failure)

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            logger.error(
                "distributed: %s; the engine is stopped and /ready answers 503"
                " until every rank is restarted",
                reason,
            )

    def _watch(self, die: Callable[[str], None]) -> None:
        while not self._stopped.wait(min(1.0, self.step_timeout / 4)):
            with self.lock:
                since = self.busy_since
                waited = time.monotonic() - since if since is not None else 0.0
                if waited <= self.step_timeout or self.failure is not None:
                    continue
                self._fail(
                    f"an operation has waited {waited:.1f} s for the other ranks"
                    f" (timeout {self.step_timeout:g} s): a rank is gone or stuck"
                )
            # The engine thread is blocked in MLX: end its requests for it.
            die(self.failure)
