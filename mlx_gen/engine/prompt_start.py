"""An admitted request's prompt, into its prompt cache.

Where a prompt starts (a prefix-cache entry, or a prefix another request of
the same burst is computing: prefix_sharing.py), its seed and logits
processors, and each chunk of its prefill: plain, or scored for prompt
logprobs (prompt_scores.py). Errors are the caller's to handle: the engine
thread ends the request that raised.
"""

from __future__ import annotations

import functools
import random

from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import PrefixCache
from mlx_gen.engine.prefix_sharing import waits
from mlx_gen.engine.sampling import make_processors
from mlx_gen.engine.scheduler import Scheduler
from mlx_gen.engine.sequence import RequestState


class PromptStart:
    def __init__(
        self, runner: ModelRunner, scheduler: Scheduler, prefix: PrefixCache
    ) -> None:
        self.runner, self.scheduler, self.prefix = runner, scheduler, prefix
        self._seeds = random.Random()

    def begin(self, state: RequestState, now: float) -> None:
        """Start `state`'s prompt cache, unless it waits for a shared prefix."""
        params, prompt = state.request.sampling, state.prompt
        # A scoring request computes its whole prompt (below): it never waits.
        shares = not state.scoring and self.prefix.max_bytes > 0
        reusable = functools.partial(self.prefix.reusable, prompt)
        if shares and waits(state, self.scheduler.prefilling, reusable):
            return
        seed = params.seed if params.seed is not None else self._seeds.getrandbits(63)
        # A cached prefix has no logits, and making them again costs its whole
        # prefill: a scoring request is prefilled from its first token (and
        # still leaves its prompt in the prefix cache for the next ones).
        cached = 0 if state.scoring else self.prefix.lookup(prompt, state.slot)
        if point := self.prefix.common_point(prompt, cached):
            state.share_points.add(point)
        processors = [
            *make_processors(params, len(prompt)),
            *state.request.logits_processors,
        ]
        self.scheduler.begin(state, cached, seed, processors, now)

    def prefill(self, chunks: list[tuple[RequestState, int, int]]) -> None:
        """Prefill each request's prompt tokens `start:end` in one pass (the
        chunks start at the same place: scheduler.py), keeping a snapshot
        where other requests wait for them. A scored chunk comes alone."""
        state, start, end = chunks[0]
        scores = None
        if state.scoring:
            top = state.request.sampling.prompt_logprobs
            prompt = state.prompt
            scores = self.runner.prefill_scored(
                state.slot, prompt[start:end], prompt[start + 1 : end + 1], top
            )
        else:
            self.runner.prefill(
                [s.slot for s, _, _ in chunks],
                [t for s, a, b in chunks for t in s.prompt[a:b]],
                [b - a for _, a, b in chunks],
            )
        for state, _, end in chunks:
            if self.scheduler.prefilled_to(state, end, scores):
                self.prefix.insert(state.prompt[:end], state.slot)

    def finish(self, state: RequestState) -> None:
        """A prefilled prompt is kept in the prefix cache (all but its last
        token, which the first decode step feeds)."""
        if len(state.prompt) > 1:
            self.prefix.insert(state.prompt[:-1], state.slot)
