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


OnResult = Callable[[RequestResult], None]
OnLevel = Callable[[LevelRun], None]


async def _users(
    client: httpx.AsyncClient,
    config: LoadConfig,
    level: Level,
    duration: float,
    origin: float,
    on_result: OnResult,
) -> LevelRun:
    run = LevelRun(level, 0.0, [])

    def keep(result: RequestResult) -> None:
        run.results.append(result)
        on_result(result)

    started = time.perf_counter()
    await run_users(client, config, level, duration, origin, keep)
    run.duration = time.perf_counter() - started
    return run


async def ramp(
    client: httpx.AsyncClient,
    config: LoadConfig,
    plan: ProfilePlan,
    origin: float,
    on_result: OnResult,
    on_level: OnLevel,
) -> ProfileRun:
    levels: list[LevelRun] = []
    for users in plan.users:
        level = Level(users, effort=plan.effort, phase="ramp")
        run = await _users(client, config, level, plan.duration, origin, on_result)
        levels.append(run)
        on_level(run)
        if plan.slo.breaks(summarize(run)):
            break
    verdict = analysis.ramp_verdict([summarize(r) for r in levels], plan.slo)
    return ProfileRun(levels, verdict)


async def spike(
    client: httpx.AsyncClient,
    config: LoadConfig,
    plan: ProfilePlan,
    origin: float,
    on_result: OnResult,
    on_level: OnLevel,
) -> ProfileRun:
    base, peak = plan.users
    start = time.perf_counter() - origin
    results: list[RequestResult] = []

    def keep(result: RequestResult) -> None:
        results.append(result)
        on_result(result)

    async def jump() -> None:
        await asyncio.sleep(plan.settle)
        extra = Level(peak - base, effort=plan.effort)
        await run_users(client, config, extra, plan.duration, origin, keep)

    total = 2 * plan.settle + plan.duration
    steady = Level(base, effort=plan.effort)
    await asyncio.gather(run_users(client, config, steady, total, origin, keep), jump())
    bounds = (start, start + plan.settle, start + plan.settle + plan.duration)
    phases = (("before", base), ("spike", peak), ("after", base))
    levels = []
    for (phase, users), low, high in zip(
        phases, bounds, (*bounds[1:], start + total), strict=True
    ):
        part = [r for r in results if low <= r.sent_at < high]
        run = LevelRun(Level(users, effort=plan.effort, phase=phase), high - low, part)
        levels.append(run)
        on_level(run)
    verdict = {
        "recovery_s": analysis.recovery(results, bounds[2], start + total, plan.slo),
        "spike_statuses": analysis.by_status(levels[1].results),
        "spike_start_s": bounds[1],
        "spike_end_s": bounds[2],
    }
    return ProfileRun(levels, verdict)


async def soak(
    client: httpx.AsyncClient,
    config: LoadConfig,
    plan: ProfilePlan,
    origin: float,
    on_result: OnResult,
    on_level: OnLevel,
) -> ProfileRun:
    level = Level(plan.users[0], effort=plan.effort, phase="soak")
    start = time.perf_counter() - origin
    run = await _users(client, config, level, plan.duration, origin, on_result)
    on_level(run)
    verdict = analysis.drift(run.results, start, start + plan.duration)
    return ProfileRun([run], verdict)


async def stress(
    client: httpx.AsyncClient,
    config: LoadConfig,
    plan: ProfilePlan,
    origin: float,
    on_result: OnResult,
    on_level: OnLevel,
) -> ProfileRun:
    level = Level(plan.users[0], effort=plan.effort, phase="stress")
    run = await _users(client, config, level, plan.duration, origin, on_result)
    on_level(run)
    verdict = analysis.stress_verdict(run.results, run.duration, plan.slo)
    return ProfileRun([run], verdict)


RUNNERS = {"ramp": ramp, "spike": spike, "soak": soak, "stress": stress}
