"""Who waits, who is prefilled, who runs: admission against the memory plan.

A request waits in a FIFO queue until its rows fit: the batch caches are
left-padded, so the batch costs (rows) x (the longest prompt + max_tokens
among them), plus the solo cache of each prompt being prefilled. The head of
the queue is never overtaken, so a long request cannot starve.

Admitted requests are prefilled in chunks, first come first served, at most
about one chunk of tokens per engine iteration so that running streams wait
for no more than one chunk between two decode steps.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mlx_gen.engine.memory import MemoryModel
from mlx_gen.engine.sequence import Sequence
from mlx_gen.engine.types import GenerationRequest


@dataclass(eq=False)
class RequestState:
    request: GenerationRequest
    seqs: list[Sequence]
    sink: Any  # where the engine delivers this request's events
    submit_time: float
    cache: list[Any] | None = None  # the solo prompt cache while prefilling
    position: int = 0  # prompt tokens already in `cache`

    @property
    def prompt(self) -> list[int]:
        return self.request.prompt_token_ids

    @property
    def reach(self) -> int:
        return len(self.prompt) + self.request.sampling.max_tokens

    @property
    def prefilled(self) -> bool:
        return self.position >= len(self.prompt) - 1

    def live(self) -> list[Sequence]:
        return [s for s in self.seqs if not s.finished]


@dataclass
class Scheduler:
    memory: MemoryModel
    max_batch_size: int
    waiting: deque[RequestState] = field(default_factory=deque)
    prefilling: deque[RequestState] = field(default_factory=deque)
    running: dict[str, RequestState] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.waiting) + len(self.prefilling) + len(self.running)

    def _usage(self, extra: RequestState | None = None) -> tuple[int, int]:
        """(rows, KV tokens reserved), counting `extra` as if admitted."""
        rows = width = prefill = 0
        admitted = [*self.prefilling, *([extra] if extra else [])]
        for state in (*admitted, *self.running.values()):
            live = len(state.live())
            if live:
                rows += live
                width = max(width, state.reach)
        for state in admitted:
            prefill += self.memory.prefill_tokens(len(state.prompt))
        return rows, self.memory.batch_tokens(rows, width) + prefill

    def kv_tokens_used(self) -> int:
        return self._usage()[1]

    def admit(self) -> list[RequestState]:
        """Move waiting requests that fit, in order, to prefilling."""
        admitted = []
        while self.waiting:
            rows, tokens = self._usage(self.waiting[0])
            if rows > self.max_batch_size or tokens > self.memory.plan.kv_token_budget:
                break
            state = self.waiting.popleft()
            self.prefilling.append(state)
            admitted.append(state)
        return admitted

    def prefill_chunks(self) -> list[tuple[RequestState, int, int]]:
        """(request, start, end) prompt slices to prefill in this iteration."""
        chunks = []
        budget = self.memory.prefill_step_size
        for state in self.prefilling:
            start, target = state.position, len(state.prompt) - 1
            while start < target and budget > 0:
                end = min(target, start + self.memory.chunk_size(start))
                chunks.append((state, start, end))
                budget -= end - start
                start = end
            if budget <= 0:
                break
        return chunks

    def ready(self) -> list[RequestState]:
        """Prefilled requests, moved to running: they join the next step."""
        done = [s for s in self.prefilling if s.prefilled]
        for state in done:
            self.prefilling.remove(state)
            self.running[state.request.request_id] = state
        return done

    def find(self, request_id: str) -> RequestState | None:
        for state in (*self.waiting, *self.prefilling):
            if state.request.request_id == request_id:
                return state
        return self.running.get(request_id)

    def discard(self, state: RequestState) -> None:
        """Forget a request wherever it is (it finished, failed or was aborted)."""
        for queue in (self.waiting, self.prefilling):
            if state in queue:
                queue.remove(state)
        if self.running.get(state.request.request_id) is state:
            del self.running[state.request.request_id]

    def all_states(self) -> list[RequestState]:
        return [*self.waiting, *self.prefilling, *self.running.values()]
