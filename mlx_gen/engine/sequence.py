"""One choice of a request (its tokens, text, stop conditions and timings),
and a request's state in the engine: its choices, its prompt's progress.

Pure Python: a sequence's MLX state (its PRNG key, its processors' token
context) is its batch row's in the runner (model_runner.py), a prompt's is
its slot's (prompt_caches.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlx_gen.engine.detokenizer import Detokenizer
from mlx_gen.engine.stop_strings import StopStrings
from mlx_gen.engine.types import (
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    LogitsProcessor,
    Timings,
    TokenLogprob,
    Usage,
)


class Sequence:
    def __init__(
        self,
        request: GenerationRequest,
        index: int,
        detokenizer: Detokenizer,
        default_stop_ids: frozenset[int],
        submit_time: float,
    ) -> None:
        self.request = request
        self.params = request.sampling
        self.index = index
        self.prompt_len = len(request.prompt_token_ids)
        self.stop_ids = default_stop_ids | frozenset(self.params.stop_token_ids)
        self.output: list[int] = []
        self.detokenizer = detokenizer
        self.stops = StopStrings(self.params.stop)
        self.finish_reason: FinishReason | None = None
        self.cached_tokens = 0
        self.accepted_tokens = 0  # speculative proposals kept (speculation/)
        self.submit_time = submit_time
        self.admit_time: float | None = None
        self.first_token_time: float | None = None
        self.owner: Any = None  # the scheduler's record of the request
        # Set on the engine thread when the request is admitted.
        self.processors: list[LogitsProcessor] = []
        # The prompt's scores, once prefilled, until its first event takes them.
        self.prompt_logprobs: list[TokenLogprob] | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def append(
        self, token: int, logprob: TokenLogprob | None, now: float
    ) -> GenerationEvent:
        """Take one generated token; the event may finish the sequence."""
        self.output.append(token)
        if self.first_token_time is None:
            self.first_token_time = now
        reason: FinishReason | None = None
        if token in self.stop_ids:
            text, reason = self._drain(), "stop"
        else:
            text, matched = self.stops.feed(self.detokenizer.add(token))
            if matched:
                reason = "stop"
            elif len(self.output) >= self.params.max_tokens:
                text, reason = text + self._drain(), "length"
        return self._event([token], text, logprob, reason, now)

    def finish(
        self, reason: FinishReason, now: float, error: str | None = None
    ) -> GenerationEvent:
        """End the sequence from outside (abort, error): a final, empty event."""
        event = self._event([], "", None, reason, now)
        event.error = error
        return event

    def _drain(self) -> str:
        text, matched = self.stops.feed(self.detokenizer.flush())
        return text if matched else text + self.stops.flush()

    def _event(
        self,
        tokens: list[int],
        text: str,
        logprob: TokenLogprob | None,
        reason: FinishReason | None,
        now: float,
    ) -> GenerationEvent:
        event = GenerationEvent(
            request_id=self.request.request_id,
            index=self.index,
            token_ids=tokens,
            text=text,
            logprobs=[logprob] if logprob is not None else None,
            prompt_logprobs=self.prompt_logprobs,
        )
        self.prompt_logprobs = None
        if reason is not None:
            self.finish_reason = reason
            event.finish_reason = reason
            event.usage = Usage(
                self.prompt_len,
                len(self.output),
                self.cached_tokens,
                min(self.accepted_tokens, len(self.output)),
            )
            event.timings = self.timings(now)
        return event

    def timings(self, now: float) -> Timings:
        start = self.submit_time
        admitted = self.admit_time if self.admit_time is not None else now
        first = self.first_token_time
        return Timings(
            queue_wait=admitted - start,
            time_to_first_token=first - start if first is not None else 0.0,
            total=now - start,
        )


@dataclass(eq=False)
class RequestState:
    request: GenerationRequest
    seqs: list[Sequence]
    sink: Any  # where the engine delivers this request's events
    submit_time: float
    slot: int | None = None  # its prompt cache in the runner, until it joins
    position: int = 0  # prompt tokens already in that cache
    seed: int = 0  # of its choices' PRNG keys
    # The prompt's scores so far, if asked: of its tokens 1 to `position`.
    scores: list[TokenLogprob] = field(default_factory=list)
    begun: bool = False  # its prompt cache started (prefix reused or not)
    # The request prefilling a prefix this one waits for, and its length.
    leader: RequestState | None = None
    shared_at: int = 0
    # Prompt lengths at which others wait for a snapshot of this prompt.
    share_points: set[int] = field(default_factory=set)

    @property
    def prompt(self) -> list[int]:
        return self.request.prompt_token_ids

    @property
    def reach(self) -> int:
        return len(self.prompt) + self.request.sampling.max_tokens

    @property
    def prefilled(self) -> bool:
        return self.position >= len(self.prompt) - 1

    @property
    def scoring(self) -> bool:
        return self.request.sampling.prompt_logprobs is not None

    def live(self) -> list[Sequence]:
        return [s for s in self.seqs if not s.finished]
