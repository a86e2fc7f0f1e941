"""Who waits, who is prefilled, who runs: every change of a request's state.

A request waits in a FIFO queue until its rows fit: the batch caches are
left-padded, so the batch costs (rows) x (the longest prompt + max_tokens
among them), plus the solo cache of each prompt being prefilled. The head of
the queue is never overtaken, so a long request cannot starve.

Admitted requests are prefilled in chunks, first come first served, at most
about one chunk of tokens per engine iteration so that running streams wait
for no more than one chunk between two decode steps. Requests whose next
chunk starts at the same place (a burst's prompts after their shared
prefix) are prefilled in one pass, padded to the same length. An admitted request
may wait for another's prefix before it starts (prefix_sharing.py): a burst
computes its common prefix once.

`running` is the one list of who runs: the batch's sequences in the runner's
row order. A sequence that ends stays in it until `compact`, which says which
rows the runner keeps; the prompt cache of a request that ends before joining
the batch is listed in `released` for the runner to drop. So ending a request
changes state here only, never MLX's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mlx_gen.engine.memory import MemoryModel
from mlx_gen.engine.sequence import RequestState, Sequence
from mlx_gen.engine.types import (
    FinishReason,
    GenerationEvent,
    LogitsProcessor,
    TokenLogprob,
)


@dataclass
class Scheduler:
    memory: MemoryModel
    max_batch_size: int
    waiting: deque[RequestState] = field(default_factory=deque)
    prefilling: deque[RequestState] = field(default_factory=deque)
    running: list[Sequence] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    # Totals since start: prompt tokens admitted, of them found in the prefix
    # cache, tokens generated, decode steps.
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    steps: int = 0
    _slots: int = 0

    def __len__(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running)

    def add(self, state: RequestState) -> None:
        for seq in state.seqs:
            seq.owner = state
        self.waiting.append(state)

    def _usage(self, extra: RequestState | None = None) -> tuple[int, int]:
        """(rows, KV tokens reserved), counting `extra` as if admitted."""
        rows = width = prefill = 0
        for state in (*self.prefilling, *([extra] if extra else [])):
            rows += len(state.live())
            width = max(width, state.reach)
            prefill += self.memory.prefill_tokens(len(state.prompt))
        for seq in self.running:
            if not seq.finished:
                rows += 1
                width = max(width, seq.owner.reach)
        return rows, self.memory.batch_tokens(rows, width) + prefill

    def kv_tokens_used(self) -> int:
        return self._usage()[1]

    # Admission and prefill.

    def prefill_pending(self) -> bool:
        """Whether this iteration will prefill."""
        if self.prefilling or not self.waiting:
            return bool(self.prefilling)
        return self._fits(self.waiting[0])

    def _fits(self, state: RequestState) -> bool:
        rows, tokens = self._usage(state)
        return (
            rows <= self.max_batch_size and tokens <= self.memory.plan.kv_token_budget
        )

    def admit(self) -> list[RequestState]:
        """Move waiting requests that fit, in order, to prefilling, each with
        a new prompt cache slot."""
        admitted = []
        while self.waiting and self._fits(self.waiting[0]):
            state = self.waiting.popleft()
            self._slots += 1
            state.slot = self._slots
            self.prefilling.append(state)
            admitted.append(state)
        return admitted

    def begin(
        self,
        state: RequestState,
        cached: int,
        seed: int,
        processors: list[LogitsProcessor],
        now: float,
    ) -> None:
        """An admitted request starts with `cached` prompt tokens reused."""
        state.position, state.seed, state.begun = cached, seed, True
        self.prompt_tokens += len(state.prompt)
        self.cached_tokens += cached
        for seq in state.seqs:
            seq.admit_time, seq.cached_tokens = now, cached
            seq.processors = processors

    def prefill_chunks(
        self, start: Callable[[RequestState], None]
    ) -> Iterator[list[tuple[RequestState, int, int]]]:
        """Groups of (request, start, end) prompt slices to prefill in this
        iteration, one pass each, each group made once the one before has
        run. Unbegun requests are started (`start`) first, and again when
        their turn comes: one that waits for a prefix computed earlier in
        this iteration starts in it too."""
        for state in list(self.prefilling):  # who leads, who waits
            if not state.begun and state in self.prefilling:
                start(state)
        budget = self.memory.prefill_step_size
        while budget > 0:
            group = self._next_group(start, budget)
            if not group:
                return
            yield group
            budget -= len(group) * max(end - begin for _, begin, end in group)

    def _next_group(
        self, start: Callable[[RequestState], None], budget: int
    ) -> list[tuple[RequestState, int, int]]:
        """The next slice of the first request with prompt left to prefill,
        and of the requests after it at the same place, cut to its length:
        within the budget, each padded by at most a quarter, and no more
        tokens in all than one chunk at that place may have (rows of a pass
        attend to their own tokens only, so their transient is no larger than
        such a chunk's: memory.py). A scored slice goes alone."""
        group: list[tuple[RequestState, int, int]] = []
        for state in list(self.prefilling):
            if not state.begun and state in self.prefilling:  # its leader moved
                start(state)
            chunk = self._next_chunk(state)
            if chunk is None:
                continue
            begin, end = chunk
            if not group:
                group.append((state, begin, end))
                if state.scoring:
                    return group
                width = end - begin
                # The budget may be overrun by less than a row, as by a chunk.
                rows = min(-(-budget // width), self.memory.chunk_size(begin) // width)
                if rows <= 1:
                    return group
                continue
            end = min(end, begin + width)
            if (
                begin == group[0][1]
                and not state.scoring
                and 4 * (end - begin) >= 3 * width
            ):
                group.append((state, begin, end))
                if len(group) == rows:
                    break
        return group

    def _next_chunk(self, state: RequestState) -> tuple[int, int] | None:
        """(start, end) of the next slice of `state`'s prompt to prefill."""
        begin, target = state.position, len(state.prompt) - 1
        if not state.begun or state.slot is None or begin >= target:
            return None
        stops = [p for p in state.share_points if p > begin]
        size = self.memory.chunk_size(begin, state.scoring)
        return begin, min(target, begin + size, *stops)

    def prefilled_to(
        self, state: RequestState, end: int, scores: list[TokenLogprob] | None = None
    ) -> bool:
        """`state`'s cache holds `end` prompt tokens: whether others wait
        for a snapshot of it."""
        state.position = end
        state.scores += scores or []
        return end in state.share_points

    def ready(self) -> list[RequestState]:
        """Prefilled requests, out of prefilling, their choices given the
        prompt's scores if asked: they join the batch next."""
        done = [s for s in self.prefilling if s.prefilled]
        for state in done:
            self.prefilling.remove(state)
            if state.scoring:
                for seq in state.seqs:
                    seq.prompt_logprobs = state.scores
        return done

    def join(self, state: RequestState) -> None:
        """`state`'s live choices are the batch's last rows; its slot is spent."""
        self.running += state.live()
        state.slot = None

    # The batch.

    def postprocess(
        self,
        tokens: list[tuple[Sequence, int, TokenLogprob | None]],
        now: float,
    ) -> list[tuple[Sequence, GenerationEvent]]:
        """Append a step's tokens to their sequences: one event each."""
        self.steps += bool(tokens)  # a step read, not a call without tokens
        events = []
        for seq, token, logprob in tokens:
            if seq.finished:  # ended while its token was in flight
                continue
            try:
                event = seq.append(token, logprob, now)
            except Exception as exc:
                event = seq.finish("error", now, f"{type(exc).__name__}: {exc}")
            events.append((seq, event))
        self.generated_tokens += len(events)
        return events

    def end(
        self, seq: Sequence, reason: FinishReason, error: str | None, now: float
    ) -> GenerationEvent | None:
        """End `seq` from outside (abort, error); None if it had ended."""
        return None if seq.finished else seq.finish(reason, now, error)

    def compact(self) -> list[int] | None:
        """Ended sequences leave the batch: the rows kept, or None if all are."""
        keep = [i for i, seq in enumerate(self.running) if not seq.finished]
        if len(keep) == len(self.running):
            return None
        self.running = [self.running[i] for i in keep]
        return keep

    def clear_batch(self) -> list[Sequence]:
        """Empty the batch (its caches are gone); returns who was in it."""
        seqs, self.running = self.running, []
        return seqs

    def take_released(self) -> list[int]:
        released, self.released = self.released, []
        return released

    # Finding and forgetting requests.

    def all_states(self) -> list[RequestState]:
        running = {id(s.owner): s.owner for s in self.running}
        return [*self.waiting, *self.prefilling, *running.values()]

    def find(self, request_id: str) -> RequestState | None:
        for state in self.all_states():
            if state.request.request_id == request_id:
                return state
        return None

    def discard(self, state: RequestState) -> None:
        """Forget a request that has ended, wherever it is."""
        for queue in (self.waiting, self.prefilling):
            if state in queue:
                queue.remove(state)
        if state.slot is not None:
            self.released.append(state.slot)
            state.slot = None
