"""Rank 0's model runner: every operation is announced to the other ranks
before rank 0 makes it (see distributed.py), and every wait on them is timed
for the watchdog (distributed_leader.py).

Nothing is left in flight between two operations: ModelRunner's pipelining
(step k queued before step k-1 is read) is given up here. What MLX 0.32's
ring backend does when a peer dies (measured with SIGKILL mid-stream):
- with collectives queued behind the one that fails, the thread waiting on
  them is blocked for good, or the process crashes (SIGSEGV) at the next
  `async_eval`: every time in a pipelined loop;
- with every collective waited for before the next is queued, it is a
  RuntimeError ("[ring] connection to a peer was lost") about a second later,
  unless the peer dies while rank 0 is inside the `async_eval` that queues a
  step's graph: then that call blocks for good (the watchdog ends the engine)
  or, rarely, crashes. On the tiny test model, whose steps are mostly queueing,
  5 of 8 kills gave the error, 3 the block; 1 of 6 crashed in an earlier
  variant that also summed the tokens inside the graph.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine.distributed import Op, PlanChannel, RankMemory, gather_memory
from mlx_gen.engine.model_runner import ModelRunner, StepOutput
from mlx_gen.engine.sequence import Sequence as Row

logger = logging.getLogger("mlx_gen.distributed")

# An idle rank 0 sends a heartbeat this often, so that a lost rank is found
# even when no request comes.
HEARTBEAT_SECONDS = 1.0


class DistributedFailure(BaseException):
    """The ranks are out of step for good. A BaseException, so that the
    engine's per-request fault handling cannot swallow it: it ends the engine."""


class _SlotCache(list):
    """A prompt cache on rank 0 and the number of its twin on the other ranks."""

    slot: int
    release: weakref.finalize


class LeaderRunner(ModelRunner):
    def __init__(self, model: nn.Module, vocab_size: int, channel: PlanChannel) -> None:
        super().__init__(model, vocab_size)
        self.channel = channel
        self.failure: str | None = None
        self.lock = threading.Lock()  # busy_since and failure, with the watchdog
        self.busy_since: float | None = None
        self.last_op = time.monotonic()
        self.rank_memory: list[RankMemory] | None = None
        self._slots = 0
        # Slots whose cache rank 0 let go of (appended by the garbage collector).
        self._dropped: deque[int] = deque()

    # Announcing, and failing.

    def _send(self, op: Op, a: int = 0, b: int = 0, data: Sequence[int] = ()) -> None:
        if self.failure is not None:
            return
        payload = self.channel.payload
        while self._dropped:
            count = min(payload, len(self._dropped))
            self.channel.send(
                Op.DROP, data=[self._dropped.popleft() for _ in range(count)]
            )
        self.channel.send(op, a, b, data)

    @contextlib.contextmanager
    def _announced(self) -> Iterator[None]:
        """Around every operation. The watchdog times its waits on the other
        ranks; a failure in it, or found while it waited, ends the engine.
        Once failed, operations are rank 0's alone (ending its requests)."""
        healthy = self.failure is None
        with self.lock:
            self.busy_since = time.monotonic()
        try:
            yield
        except Exception as exc:  # a lost rank, or rank 0 failed alone: out of step
            self.fail(f"an operation failed: {type(exc).__name__}: {exc}")
            raise DistributedFailure(self.failure) from exc
        finally:
            with self.lock:
                self.busy_since = None
                self.last_op = time.monotonic()
        if healthy:
            self.check()

    def check(self) -> None:
        if self.failure is not None:
            raise DistributedFailure(self.failure)

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            logger.error(
                "distributed: %s; the engine is stopped and /ready answers 503"
                " until every rank is restarted",
                reason,
            )

    def overdue(self, timeout: float) -> float | None:
        """Seconds the current operation has waited, if more than `timeout`."""
        since = self.busy_since
        waited = time.monotonic() - since if since is not None else 0.0
        return waited if waited > timeout else None

    # The operations of ModelRunner, announced.

    def new_cache(self) -> list[Any]:
        self._slots += 1
        with self._announced():
            self._send(Op.NEW, self._slots)
            return self._slot_cache(super().new_cache())

    def _slot_cache(self, layers: list[Any]) -> _SlotCache:
        cache = _SlotCache(layers)
        cache.slot = self._slots
        cache.release = weakref.finalize(cache, self._dropped.append, self._slots)
        return cache

    def prefill(self, cache: list[Any], tokens: list[int]) -> None:
        if not isinstance(cache, _SlotCache):
            raise TypeError("a distributed prefill needs a cache from new_cache()")
        self.check()
        with self._announced():
            for start in range(0, len(tokens), self.channel.payload):
                part = tokens[start : start + self.channel.payload]
                self._send(Op.PREFILL, cache.slot, data=part)
                super().prefill(cache, part)

    def add(self, seqs: list[Row], cache: list[Any], last_token: int) -> None:
        with self._announced():
            self._send(Op.ADD, cache.slot, len(seqs))
            cache.release.detach()  # the other ranks free theirs as they merge it
            super().add(seqs, cache, last_token)

    def remove(self, seqs: list[Row]) -> None:
        gone = {id(s) for s in seqs}
        keep = [i for i, s in enumerate(self.rows) if id(s) not in gone]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.clear()
            return
        with self._announced():
            self._send(Op.REMOVE, data=keep)
            super().remove(seqs)

    def clear(self) -> None:
        with self._announced():
            self._send(Op.CLEAR)
            super().clear()

    def step(self) -> StepOutput:
        self.check()  # a step's graph holds a collective: never on a broken group
        with self._announced():
            # The previous step is done (below): its tokens are there to send.
            self._send(Op.DECODE, len(self.rows), data=self._inputs.tolist())
            out = super().step()
            mx.synchronize()  # the step is done before anything else is queued
            return out

    # The prefix cache's (distributed_prefix.py).

    def snapshot(self, cache: list[Any], entry: int) -> None:
        with self._announced():
            self._send(Op.SNAPSHOT, cache.slot, entry)

    def evict(self, entries: list[int]) -> None:
        payload = self.channel.payload
        with self._announced():
            for start in range(0, len(entries), payload):
                self._send(Op.EVICT, data=entries[start : start + payload])

    def adopt(self, layers: list[Any], entry: int, length: int) -> list[Any]:
        """A clone of prefix entry `entry`, cut to `length` tokens, as a prompt
        cache in a new slot on every rank."""
        self._slots += 1
        with self._announced():
            self._send(Op.CLONE, self._slots, entry, [length])
            return self._slot_cache(layers)

    # Rank 0's own.

    def ping(self) -> None:
        self.check()
        with self._announced():
            self._send(Op.PING)

    def finish(self) -> None:
        """Gather every rank's memory figures, then let the other ranks go."""
        if self.failure is not None:
            return
        with self._announced():
            self._send(Op.MEMORY)
            self.rank_memory = gather_memory(self.channel.group, self.model)
            self._send(Op.SHUTDOWN)
