"""What runs on the engine thread: the one place MLX is called from.

One iteration: commands from the inbox (submit, abort, stop), a decode step,
admission and about one chunk of prefill, a stats snapshot, and the events of
the iteration handed to each request's event loop in one call.

Faults stay as small as they can: an exception raised by a request's own
logits processor ends that request; a step that fails with no known culprit
ends the requests of the batch; the thread itself only dies of a
BaseException or a bug, and then `alive` turns False and every request ends
with an error event.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine import memory
from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import PrefixCache
from mlx_gen.engine.sampling import make_processors
from mlx_gen.engine.scheduler import RequestState, Scheduler
from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.stream import hand_over
from mlx_gen.engine.types import (
    EngineStats,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
)


class EngineThread:
    """The engine thread's state. The fields above `lock` are shared with
    the caller's side, which reads them and writes them under `lock`."""

    # Seconds an idle engine waits for a command before it iterates anyway;
    # None: until a command comes. (The distributed engine sends heartbeats.)
    idle_timeout: float | None = None

    def __init__(self, model: nn.Module, tokenizer: Any, config: EngineConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        stops = config.default_stop_token_ids
        self._stop_ids = frozenset(tokenizer.eos_token_ids if stops is None else stops)
        self._new_detokenizer = decoder_for(tokenizer).stream
        self.inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.memory: memory.MemoryModel | None = None
        self.stats: EngineStats | None = None
        self.alive = self.accepting = False
        self.error: str | None = None
        self.unadmitted = 0  # submitted, not yet admitted: the queue's length
        self.active: set[str] = set()  # request ids not finished
        self.lock = threading.Lock()
        self._outbox: list[tuple[Any, GenerationEvent]] = []
        self._deadline: float | None = None
        self._totals = dict.fromkeys(("prompt", "generated", "cached", "steps"), 0)

    def run(self) -> None:
        limits = None
        try:
            with mx.stream(mx.new_stream(mx.default_device())):
                device = memory.detect_device()
                shape = memory.measure_model(self.model, self.tokenizer)
                self.memory = memory.plan_memory(shape, self.config, device)
                limits = memory.apply_limits(self.memory, device)
                self._runner = self._make_runner(shape.vocab_size)
                self._scheduler = Scheduler(self.memory, self.config.max_batch_size)
                self._prefix = self._make_prefix_cache()
                self._seeds = random.Random()
                self.alive = self.accepting = True
                self._publish()
                self.ready.set()
                while self._iteration():
                    pass
        except BaseException as exc:
            if self.ready.is_set():
                self._die(f"{type(exc).__name__}: {exc}")
            else:
                self.startup_error = exc
        finally:
            self.alive = False
            self.ready.set()
            memory.restore_limits(limits)
            # MLX requires a thread's streams to be destroyed before it exits,
            # or the process may abort at exit.
            mx.clear_streams()

    def _make_runner(self, vocab_size: int) -> ModelRunner:
        return ModelRunner(self.model, vocab_size)

    def _make_prefix_cache(self) -> PrefixCache:
        return PrefixCache(self.config.prefix_cache_bytes)

    def _iteration(self) -> bool:
        busy = bool(self._runner.rows or len(self._scheduler))
        self._take_inbox(block=not busy and self._deadline is None)
        deadline = self._deadline
        if deadline is not None and (not busy or time.perf_counter() > deadline):
            self._end_all("abort", None)
            return False
        if self._runner.rows:
            self._decode()
            self._flush()
        self._admit_and_prefill()
        self._flush(publish=True)
        return True

    def _take_inbox(self, block: bool) -> None:
        try:
            command, arg = self.inbox.get(block=block, timeout=self.idle_timeout)
            while True:
                if command == "submit":
                    self._enqueue(*arg)
                elif command == "abort":
                    self._abort(*arg)
                else:
                    self._deadline = arg
                command, arg = self.inbox.get_nowait()
        except queue.Empty:
            pass

    def _enqueue(self, request: GenerationRequest, sink: Any, submitted: float) -> None:
        new = self._new_detokenizer
        seqs = [
            Sequence(request, i, new(), self._stop_ids, submitted)
            for i in range(request.sampling.n)
        ]
        state = RequestState(request, seqs, sink, submitted)
        for seq in seqs:
            seq.owner = state
        self._scheduler.waiting.append(state)

    def _decode(self) -> None:
        try:
            out = self._runner.step()
        except Exception as exc:  # the culprit is unknown: fail the batch only
            self._fail_batch(exc)
            return
        self._totals["steps"] += 1
        now = time.perf_counter()
        done = []
        for seq, token, logprob in out.tokens:
            if seq.finished:
                continue
            try:
                event = seq.append(token, logprob, now)
            except Exception as exc:
                event = seq.finish("error", now, f"{type(exc).__name__}: {exc}")
            self._totals["generated"] += 1
            self._emit(seq, event)
            if seq.finished:
                done.append(seq)
        for seq, exc in out.failed:  # after the token read before it failed
            self._end(seq, "error", f"a logits processor raised {exc!r}")
            done.append(seq)
        self._runner.remove(done)

    def _fail_batch(self, exc: Exception) -> None:
        seqs = {id(s): s for s in [*self._runner.rows, *self._runner.in_flight()]}
        self._runner.clear()
        for seq in seqs.values():
            self._end(seq, "error", f"a batched step failed: {exc!r}")

    def _admit_and_prefill(self) -> None:
        admitted = self._scheduler.admit()
        with self.lock:
            self.unadmitted -= len(admitted)
        for state in admitted:
            try:
                self._begin(state)
            except Exception as exc:
                self._fail(state, exc)
        for state, start, end in self._scheduler.prefill_chunks():
            if state.cache is None:  # failed earlier in this iteration
                continue
            try:
                self._runner.prefill(state.cache, state.prompt[start:end])
                state.position = end
            except Exception as exc:
                self._fail(state, exc)
        for state in self._scheduler.ready():
            try:
                if len(state.prompt) > 1:
                    self._prefix.insert(state.prompt[:-1], state.cache)
            except Exception as exc:
                self._fail(state, exc)
                continue
            try:
                self._runner.add(state.live(), state.cache, state.prompt[-1])
            except Exception as exc:  # the batch caches may be half-extended
                self._fail_batch(exc)
                self._fail(state, exc)
            state.cache = None

    def _begin(self, state: RequestState) -> None:
        now = time.perf_counter()
        cache, cached = self._prefix.lookup(state.prompt)
        state.cache = cache if cache is not None else self._runner.new_cache()
        state.position = cached
        self._totals["prompt"] += len(state.prompt)
        self._totals["cached"] += cached
        params = state.request.sampling
        seed = params.seed if params.seed is not None else self._seeds.getrandbits(63)
        for seq in state.seqs:
            seq.admit_time, seq.cached_tokens = now, cached
            seq.processors = [
                *make_processors(params, seq.prompt_len),
                *state.request.logits_processors,
            ]
            self._runner.prepare(seq, seed)

    # Ending requests.

    def _emit(self, seq: Sequence, event: GenerationEvent) -> None:
        state: RequestState = seq.owner
        self._outbox.append((state.sink, event))
        if event.finish_reason is not None and not state.live():
            self._scheduler.discard(state)
            with self.lock:
                self.active.discard(state.request.request_id)

    def _end(self, seq: Sequence, reason: FinishReason, error: str | None) -> None:
        if not seq.finished:
            self._emit(seq, seq.finish(reason, time.perf_counter(), error))

    def _fail(self, state: RequestState, exc: Exception) -> None:
        self._end_request(state, "error", f"{type(exc).__name__}: {exc}")

    def _abort(self, request_id: str, index: int | None) -> None:
        state = self._scheduler.find(request_id)
        if state is None:
            return
        live = state.live()
        chosen = [s for s in live if index is None or s.index == index]
        if len(chosen) < len(live):  # the request's other choices go on
            self._runner.remove(chosen)
            for seq in chosen:
                self._end(seq, "abort", None)
            return
        if state in self._scheduler.waiting:
            with self.lock:
                self.unadmitted -= 1
        self._end_request(state, "abort", None)

    def _end_request(
        self, state: RequestState, reason: FinishReason, error: str | None
    ) -> None:
        self._runner.remove(state.live())
        for seq in state.live():
            self._end(seq, reason, error)
        state.cache = None

    def _end_all(self, reason: FinishReason, error: str | None) -> None:
        self._runner.clear()
        for state in self._scheduler.all_states():
            self._end_request(state, reason, error)
        self._flush(publish=True)

    def _die(self, error: str) -> None:
        with self.lock:
            self.error, self.alive = error, False
        self._take_inbox(block=False)
        self._end_all("error", f"the engine stopped: {error}")

    # Out to the world.

    def _publish(self) -> None:
        s, p, t = self._scheduler, self._prefix, self._totals
        self.stats = EngineStats(
            alive=self.alive,
            error=self.error,
            running=len(self._runner.rows),
            waiting=len(s.waiting) + len(s.prefilling),
            kv_tokens_used=s.kv_tokens_used(),
            kv_tokens_budget=self.memory.plan.kv_token_budget,
            prefix_cache_bytes=p.nbytes,
            prefix_cache_hits=p.hits,
            prefix_cache_queries=p.queries,
            plan=self.memory.plan,
            prompt_tokens_total=t["prompt"],
            generated_tokens_total=t["generated"],
            cached_tokens_total=t["cached"],
            steps_total=t["steps"],
            mlx_active_bytes=mx.get_active_memory(),
            mlx_cache_bytes=mx.get_cache_memory(),
        )

    def _flush(self, publish: bool = False) -> None:
        if publish or self._outbox:
            self._publish()  # stats are never older than the events delivered
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            for request_id in hand_over(outbox):  # their loops have closed
                self.inbox.put(("abort", (request_id, None)))
