"""The engine's public face: start, submit (one request, or several as one
unit with `submit_many`), abort, stats, shutdown.

One thread owns MLX (engine_thread.py); this side calls `mx` only once, at
construction, to materialize the model's lazy arrays (MLX streams belong to
the thread that made them, so the engine thread cannot evaluate them). `submit`
validates on the caller's thread and raises ContextLengthExceeded, QueueFull,
InvalidRequest or EngineDead before returning, so a server can answer 400 or
503 before it starts a response; the events then arrive on the returned async
iterator, delivered to the caller's event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.engine_thread import EngineThread
from mlx_gen.engine.inbox import Abort, Stop, Submit
from mlx_gen.engine.stream import EventStream
from mlx_gen.engine.types import (
    EngineDead,
    EngineStats,
    GenerationRequest,
    InvalidRequest,
    MemoryPlan,
    QueueFull,
)
from mlx_gen.engine.validation import validate

if TYPE_CHECKING:
    from mlx_gen.engine.distributed.leader import Leader
    from mlx_gen.settings import Settings

_started: weakref.WeakSet[LLMEngine] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # An engine thread left running would die at exit with its MLX streams alive.
    for engine in list(_started):
        engine.shutdown()


class LLMEngine:
    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: EngineConfig,
        leader: Leader | None = None,
    ) -> None:
        """`leader`: this is rank 0 of a tensor-parallel group (distributed/)."""
        mx.eval(model)
        self.config = config
        self._worker = EngineThread(model, tokenizer, config, leader)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float | None = None) -> None:
        """Start the engine thread and wait until it serves; raises
        ModelTooLarge, with the numbers, if the model does not fit the budget."""
        worker = self._worker
        self._thread = threading.Thread(target=worker.run, name="mlx-gen-engine")
        self._thread.daemon = True
        self._thread.start()
        _started.add(self)
        worker.ready.wait(timeout)
        if worker.startup_error is not None:
            self._thread.join()
            raise worker.startup_error

    @property
    def plan(self) -> MemoryPlan | None:
        memory = self._worker.memory
        return memory.plan if memory else None

    def submit(self, request: GenerationRequest) -> EventStream:
        """Queue `request`; its events arrive on the returned async iterator.

        Call it on the event loop that will read the events. Closing the
        iterator, or cancelling the task reading it, aborts the request."""
        return self.submit_many([request])

    def submit_many(self, requests: list[GenerationRequest]) -> EventStream:
        """Queue `requests`, all with the same number of choices n, as one
        unit: all of them, or none if the queue cannot take them all. Their
        events arrive on one iterator, request k's choice i as index k*n + i."""
        loop = asyncio.get_running_loop()
        worker = self._worker
        if not worker.alive:
            raise EngineDead(worker.error or "the engine is not running")
        self._check(requests)
        ids = [r.request_id for r in requests]
        with worker.lock:
            if not (worker.alive and worker.accepting):
                raise EngineDead(worker.error or "the engine is shutting down")
            in_use = [i for i in ids if i in worker.active]
            if in_use:
                raise InvalidRequest(f"request id {in_use[0]!r} is in use")
            # The queue is what waits beyond the batch: a request the batch
            # has room for is not queued, even with max_queue 0.
            running = len(worker.active) - worker.unadmitted
            room = max(0, self.config.max_batch_size - running)
            if worker.unadmitted + len(requests) > self.config.max_queue + room:
                raise QueueFull(worker.unadmitted)
            # Made only now: a stream dropped unread aborts its request ids.
            stream = EventStream(ids, requests[0].sampling.n, self.abort)
            worker.unadmitted += len(requests)
            worker.active.update(ids)
            sink = (loop, stream)
            now = time.perf_counter()
            for request in requests:
                worker.inbox.put(Submit(request, sink, now))
        return stream

    def _check(self, requests: list[GenerationRequest]) -> None:
        """What can never be queued, whatever the queue holds."""
        worker, config = self._worker, self.config
        if not requests:
            raise InvalidRequest("no request")
        most = config.max_queue + config.max_batch_size
        if len(requests) > most:
            raise InvalidRequest(f"at most {most} requests can be queued together")
        if len({r.request_id for r in requests}) < len(requests):
            raise InvalidRequest("the request ids repeat")
        if len({r.sampling.n for r in requests}) > 1:
            raise InvalidRequest("requests queued together have the same n")
        for request in requests:
            validate(request, worker.memory, config.max_batch_size)

    def abort(self, request_id: str, index: int | None = None) -> None:
        """End a request, or only its choice `index`, from any thread, within
        one decode step; the last event of each choice ended has
        finish_reason 'abort'. Its batch rows and KV budget are freed."""
        self._worker.inbox.put(Abort(request_id, index))

    def stats(self) -> EngineStats:
        worker = self._worker
        stats = worker.stats or EngineStats(False, None, 0, 0, 0, 0, 0, 0, 0, None)
        stats.alive, stats.error = worker.alive, worker.error
        return stats

    def shutdown(self, drain_timeout: float = 0.0) -> None:
        """Let running work finish for up to `drain_timeout` seconds, abort the
        rest, stop the thread. Blocks: from async code use asyncio.to_thread."""
        worker, thread, self._thread = self._worker, self._thread, None
        with worker.lock:
            worker.accepting = False
        if thread is not None and thread.is_alive():
            worker.inbox.put(Stop(time.perf_counter() + drain_timeout))
            # A dead engine's thread may be blocked for good in a collective
            # with a lost rank: a daemon thread, not waited for long.
            thread.join(timeout=1.0 if worker.error else None)

    def __enter__(self) -> LLMEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def load_engine(
    model: str | Path | tuple[nn.Module, Any],
    config: EngineConfig | Settings | None = None,
    start: bool = True,
) -> LLMEngine:
    """An engine over a model directory (loaded with mlx-lm) or a loaded
    (model, TokenizerWrapper) pair, configured by an EngineConfig or the
    Settings; started unless `start` is False."""
    if isinstance(model, (str, Path)):
        import mlx_lm

        model = mlx_lm.load(str(model))[:2]
    if config is None:
        config = EngineConfig()
    elif not isinstance(config, EngineConfig):
        config = EngineConfig.from_settings(config)
    engine = LLMEngine(model[0], model[1], config)
    if start:
        engine.start()
    return engine
