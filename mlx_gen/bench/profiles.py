"""The load profiles operators run, of closed-loop virtual users (loadgen):

- ramp: users stepped up, a fixed time per step, until the SLO breaks;
- spike: a base load, a jump for a while, back to base;
- soak: a fixed load for a long duration;
- stress: more users than the server holds, honouring its Retry-After.

Each returns its levels (LevelRun, summarized as any sweep's) and what the
profile is for (analysis.py); every result's times count from `origin`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mlx_gen.bench import analysis
from mlx_gen.bench.loadgen import Level, LevelRun, LoadConfig, run_users
from mlx_gen.bench.report import summarize
from mlx_gen.bench.request import RequestResult

PROFILES = ("ramp", "spike", "soak", "stress")


@dataclass(frozen=True)
class ProfilePlan:
    name: str
    users: list[int]  # ramp: the steps; spike: base, peak; soak, stress: one
    duration: float  # ramp: per step; spike: of the spike; soak, stress: all
    slo: analysis.Slo
    effort: str | None = None
    settle: float = 0.0  # spike: seconds of base load before and after


@dataclass
class ProfileRun:
    levels: list[LevelRun]
    verdict: dict[str, Any]


@dataclass(frozen=True)
class RunContext:
    """Where a profile sends its load, and whom it tells as it goes."""

    client: httpx.AsyncClient
    config: LoadConfig
    origin: float  # perf_counter time every result's times count from
    on_result: Callable[[RequestResult], None]
    on_level: Callable[[LevelRun], None]

    async def users(self, level: Level, duration: float) -> LevelRun:
        run = LevelRun(level, 0.0, [])

        def keep(result: RequestResult) -> None:
            run.results.append(result)
            self.on_result(result)

        started = time.perf_counter()
        await run_users(self.client, self.config, level, duration, self.origin, keep)
        run.duration = time.perf_counter() - started
        return run


async def ramp(ctx: RunContext, plan: ProfilePlan) -> ProfileRun:
    levels: list[LevelRun] = []
    for users in plan.users:
        done = await ctx.users(
            Level(users, effort=plan.effort, phase="ramp"), plan.duration
        )
        levels.append(done)
        ctx.on_level(done)
        if plan.slo.breaks(summarize(done)):
            break
    verdict = analysis.ramp_verdict([summarize(r) for r in levels], plan.slo)
    return ProfileRun(levels, verdict)


async def spike(ctx: RunContext, plan: ProfilePlan) -> ProfileRun:
    base, peak = plan.users
    start = time.perf_counter() - ctx.origin
    total = 2 * plan.settle + plan.duration
    steady = ctx.users(Level(base, effort=plan.effort), total)

    async def jump() -> LevelRun:
        await asyncio.sleep(plan.settle)
        return await ctx.users(Level(peak - base, effort=plan.effort), plan.duration)

    parts = await asyncio.gather(steady, jump())
    results = [r for part in parts for r in part.results]
    bounds = (start, start + plan.settle, start + plan.settle + plan.duration)
    phases = (("before", base), ("spike", peak), ("after", base))
    levels = []
    for (phase, users), low, high in zip(
        phases, bounds, (*bounds[1:], start + total), strict=True
    ):
        part = [r for r in results if low <= r.sent_at < high]
        done = LevelRun(Level(users, effort=plan.effort, phase=phase), high - low, part)
        levels.append(done)
        ctx.on_level(done)
    verdict = {
        "recovery_s": analysis.recovery(results, bounds[2], start + total, plan.slo),
        "spike_statuses": analysis.by_status(levels[1].results),
        "spike_start_s": bounds[1],
        "spike_end_s": bounds[2],
    }
    return ProfileRun(levels, verdict)


async def _steady(ctx: RunContext, plan: ProfilePlan) -> tuple[LevelRun, float]:
    start = time.perf_counter() - ctx.origin
    level = Level(plan.users[0], effort=plan.effort, phase=plan.name)
    done = await ctx.users(level, plan.duration)
    ctx.on_level(done)
    return done, start


async def soak(ctx: RunContext, plan: ProfilePlan) -> ProfileRun:
    done, start = await _steady(ctx, plan)
    verdict = analysis.drift(done.results, start, start + plan.duration)
    return ProfileRun([done], verdict)


async def stress(ctx: RunContext, plan: ProfilePlan) -> ProfileRun:
    done, _ = await _steady(ctx, plan)
    verdict = analysis.stress_verdict(done.results, done.duration, plan.slo)
    return ProfileRun([done], verdict)


RUNNERS = {"ramp": ramp, "spike": spike, "soak": soak, "stress": stress}
