"""What runs on the engine thread: the one place MLX is called from.

One iteration: commands from the inbox (inbox.py), a decode step, what ended
leaving the runner, admission and about one budget of prefill
(prompt_start.py), a stats snapshot (stats.py), and the events of the
iteration handed to each request's event loop in one call. The scheduler
owns the requests' state (scheduler.py), the runner their MLX state
(model_runner.py); on rank 0 of a tensor-parallel group the leader runs the
iterations and keeps the other ranks in step (distributed/).

Faults stay as small as they can: an exception raised by a request's own
logits processor ends that request; a step that fails with no known culprit
ends the requests of the batch; the thread itself only dies of a
BaseException or a bug, and then `alive` turns False and every request ends
with an error event.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn

from mlx_gen.engine import memory
from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.engine.inbox import Abort, Command, Stop, Submit
from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import PrefixCache
from mlx_gen.engine.prompt_start import PromptStart
from mlx_gen.engine.scheduler import Scheduler
from mlx_gen.engine.sequence import RequestState, Sequence
from mlx_gen.engine.speculation.configure import make_speculator
from mlx_gen.engine.stats import engine_stats
from mlx_gen.engine.stream import hand_over
from mlx_gen.engine.types import EngineStats, FinishReason, GenerationEvent

if TYPE_CHECKING:
    from mlx_gen.engine.distributed.leader import Leader


class EngineThread:
    """The engine thread's state. The fields above `lock` are shared with
    the caller's side, which reads them and writes them under `lock`."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: EngineConfig,
        leader: Leader | None = None,
    ) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.leader = leader
        stops = config.default_stop_token_ids
        self._stop_ids = frozenset(tokenizer.eos_token_ids if stops is None else stops)
        self._new_detokenizer = decoder_for(tokenizer).stream
        self.inbox: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.memory: memory.MemoryModel | None = None
        self.stats: EngineStats | None = None
        self.alive = self.accepting = False
        self.error: str | None = None
        self.unadmitted = 0  # submitted, not yet admitted: the queue's length
        self.active: set[str] = set()  # request ids not finished
        self.lock = threading.Lock()
        # Seconds an idle thread waits for a command; None: until one comes.
        self._idle_timeout = leader.heartbeat_seconds if leader else None
        self._dying = threading.Lock()
        self._outbox: list[tuple[Any, GenerationEvent]] = []
        self._deadline: float | None = None

    def run(self) -> None:
        limits = None
        try:
            with mx.stream(mx.new_stream(mx.default_device())):
                device = memory.detect_device()
                shape = memory.measure_model(self.model, self.tokenizer)
                speculator = make_speculator(self.config, self.tokenizer, self.model)
                if speculator is not None:  # a draft model's weights too
                    drafts = shape.weights_bytes + speculator.proposer.weights_bytes
                    shape = replace(shape, weights_bytes=drafts)
                self.memory = memory.plan_memory(shape, self.config, device)
                limits = memory.apply_limits(self.memory, device)
                self._runner = ModelRunner(
                    self.model, shape.vocab_size, self.leader, speculator
                )
                self._scheduler = Scheduler(self.memory, self.config.max_batch_size)
                self._prefix = PrefixCache(self.config.prefix_cache_bytes, self._runner)
                self._prompts = PromptStart(self._runner, self._scheduler, self._prefix)
                self.alive = self.accepting = True
                self._publish()
                self.ready.set()
                if self.leader is None:
                    while self._iteration():
                        pass
                else:
                    self.leader.lead(self._iteration, self._die)
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

    def _iteration(self) -> bool:
        busy = len(self._scheduler) > 0
        self._take_inbox(block=not busy and self._deadline is None)
        deadline = self._deadline
        if deadline is not None and (not busy or time.perf_counter() > deadline):
            self._end_all("abort", None)
            return False
        if self._scheduler.running:
            self._decode()
            if self._scheduler.prefill_pending():  # its tokens before the prefill
                self._decode(read_only=True)
            self._flush()
        self._drop_ended()
        self._admit_and_prefill()
        self._flush(publish=True)
        return True

    def _take_inbox(self, block: bool) -> None:
        try:
            command = self.inbox.get(block=block, timeout=self._idle_timeout)
            while True:
                self._obey(command)
                command = self.inbox.get_nowait()
        except queue.Empty:
            pass

    def _obey(self, command: Command) -> None:
        match command:
            case Submit():
                self._enqueue(command)
            case Abort():
                self._abort(command)
            case Stop():
                self._deadline = command.deadline
            case _:
                raise TypeError(f"not an engine command: {command!r}")

    def _enqueue(self, command: Submit) -> None:
        request, new = command.request, self._new_detokenizer
        seqs = [
            Sequence(request, i, new(), self._stop_ids, command.submitted)
            for i in range(request.sampling.n)
        ]
        state = RequestState(request, seqs, command.sink, command.submitted)
        self._scheduler.add(state)

    def _decode(self, read_only: bool = False) -> None:
        """A decode step; or, `read_only`, the tokens of the one in flight."""
        runner, rows = self._runner, self._scheduler.running
        try:
            out = runner.collect() if read_only else runner.step(rows)
        except Exception as exc:  # the culprit is unknown: fail the batch only
            self._fail_batch(exc)
            return
        for seq, event in self._scheduler.postprocess(out.tokens, time.perf_counter()):
            self._emit(seq, event)
        for seq, exc in out.failed:  # after the token read before it failed
            self._end(seq, "error", f"a logits processor raised {exc!r}")

    def _fail_batch(self, exc: Exception) -> None:
        self._runner.clear()
        for seq in self._scheduler.clear_batch():
            self._end(seq, "error", f"a batched step failed: {exc!r}")

    def _drop_ended(self) -> None:
        """The runner drops what ended: finished rows, and the prompt caches
        of requests that will not join the batch."""
        keep = self._scheduler.compact()
        if keep is not None:
            self._runner.retain(keep)
        released = self._scheduler.take_released()
        if released:
            self._runner.release(released)

    def _admit_and_prefill(self) -> None:
        admitted = self._scheduler.admit()
        with self.lock:
            self.unadmitted -= len(admitted)
        prompts = self._prompts
        for chunks in self._scheduler.prefill_chunks(self._begin):
            try:
                prompts.prefill(chunks)
            except Exception as exc:  # their caches may be half-fed
                for state, _, _ in chunks:
                    self._fail(state, exc)
        for state in self._scheduler.ready():
            try:
                prompts.finish(state)
            except Exception as exc:
                self._fail(state, exc)
                continue
            if state.request.sampling.max_tokens == 0:  # scored: nothing to make
                for seq in state.live():
                    self._end(seq, "length", None)
                continue
            try:
                self._runner.add(state.live(), state.slot, state.prompt[-1], state.seed)
            except Exception as exc:  # the batch caches may be half-extended
                self._fail_batch(exc)
                self._fail(state, exc)
                continue
            self._scheduler.join(state)

    def _begin(self, state: RequestState) -> None:
        try:
            self._prompts.begin(state, time.perf_counter())
        except Exception as exc:
            self._fail(state, exc)

    # Ending requests.

    def _emit(self, seq: Sequence, event: GenerationEvent) -> None:
        state: RequestState = seq.owner
        self._outbox.append((state.sink, event))
        if event.finish_reason is not None and not state.live():
            self._scheduler.discard(state)
            with self.lock:
                self.active.discard(state.request.request_id)

    def _end(self, seq: Sequence, reason: FinishReason, error: str | None) -> None:
        event = self._scheduler.end(seq, reason, error, time.perf_counter())
        if event is not None:
            self._emit(seq, event)

    def _fail(self, state: RequestState, exc: Exception) -> None:
        for seq in state.live():
            self._end(seq, "error", f"{type(exc).__name__}: {exc}")

    def _abort(self, command: Abort) -> None:
        state = self._scheduler.find(command.request_id)
        if state is None:
            return
        live = state.live()
        index = command.index
        chosen = [s for s in live if index is None or s.index == index]
        if len(chosen) == len(live) and state in self._scheduler.waiting:
            with self.lock:
                self.unadmitted -= 1
        for seq in chosen:  # the request's other choices, if any, go on
            self._end(seq, "abort", None)

    def _end_all(self, reason: FinishReason, error: str | None) -> None:
        for state in self._scheduler.all_states():
            for seq in state.live():
                self._end(seq, reason, error)
        self._flush(publish=True)

    def _die(self, error: str) -> None:
        """End every request, for good: on the engine thread, or on the
        distributed watchdog's while the engine thread is stuck in MLX."""
        with self._dying:
            with self.lock:
                self.error = self.error or error  # the first cause
                self.alive = False
            self._take_inbox(block=False)
            self._end_all("error", f"the engine stopped: {self.error}")

    # Out to the world.

    def _publish(self) -> None:
        self.stats = engine_stats(
            self._scheduler,
            self._prefix,
            self._runner,
            self.memory.plan,
            self.alive,
            self.error,
        )

    def _flush(self, publish: bool = False) -> None:
        if publish or self._outbox:
            self._publish()  # stats are never older than the events delivered
        if self._outbox:
            outbox, self._outbox = self._outbox, []
            for request_id in hand_over(outbox):  # their loops have closed
                self.inbox.put(Abort(request_id))
