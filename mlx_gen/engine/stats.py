"""The engine's snapshot for the world: what /health and /metrics read.

Built on the engine thread after each iteration that delivers events, so a
snapshot is never older than the events a client has seen.
"""

from __future__ import annotations

from dataclasses import replace

import mlx.core as mx

from mlx_gen.engine.model_runner import ModelRunner
from mlx_gen.engine.prefix_cache import PrefixCache
from mlx_gen.engine.scheduler import Scheduler
from mlx_gen.engine.types import EngineStats, MemoryPlan


def engine_stats(
    scheduler: Scheduler,
    prefix: PrefixCache,
    runner: ModelRunner,
    plan: MemoryPlan,
    alive: bool,
    error: str | None,
) -> EngineStats:
    s, speculator = scheduler, runner.speculator
    return EngineStats(
        alive=alive,
        error=error,
        running=sum(not seq.finished for seq in s.running),
        waiting=len(s.waiting) + len(s.prefilling),
        kv_tokens_used=s.kv_tokens_used(),
        kv_tokens_budget=plan.kv_token_budget,
        prefix_cache_bytes=prefix.nbytes,
        prefix_cache_hits=prefix.hits,
        prefix_cache_queries=prefix.queries,
        plan=plan,
        prompt_tokens_total=s.prompt_tokens,
        generated_tokens_total=s.generated_tokens,
        cached_tokens_total=s.cached_tokens,
        steps_total=s.steps,
        decode_row_steps_total=runner.row_steps,
        mlx_active_bytes=mx.get_active_memory(),
        mlx_cache_bytes=mx.get_cache_memory(),
        # A copy: the speculator's totals go on changing on the engine thread.
        speculation=speculator and replace(speculator.totals),
    )
