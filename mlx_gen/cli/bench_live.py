"""The runs of `mlx-gen bench serve` under a live table: a sweep of levels
(concurrency × rate × reasoning effort) or a profile per reasoning effort."""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from mlx_gen.bench.analysis import Slo
from mlx_gen.bench.loadgen import Level, LevelRun, LoadConfig, run_level
from mlx_gen.bench.profiles import RUNNERS, ProfilePlan, RunContext
from mlx_gen.bench.report import summarize
from mlx_gen.bench.request import RequestResult
from mlx_gen.bench.tables import levels_table


class LiveRun:
    """The finished levels and the one running, redrawn four times a second,
    above a progress bar of levels (open-ended for profiles, which decide as
    they go how many levels they run)."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.done: list[LevelRun] = []
        self.current = LevelRun(Level(None, phase="running"), 0.0, [])
        self.started = time.perf_counter()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("levels"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.progress.add_task("starting", total=None)

    def plan(self, levels: int) -> None:
        self.progress.update(self.task, total=levels)

    def begin(self, level: Level) -> None:
        self.current = LevelRun(level, 0.0, [])
        self.started = time.perf_counter()
        self.progress.update(self.task, description=level.name)

    def add(self, result: RequestResult) -> None:
        self.current.results.append(result)
        self.progress.update(
            self.task,
            description=f"{self.current.level.name}: {len(self.current.results)}"
            " requests",
        )

    def finish(self, run: LevelRun) -> None:
        self.done.append(run)
        self.current = LevelRun(self.current.level, 0.0, [])
        self.started = time.perf_counter()
        self.progress.advance(self.task)

    def table(self) -> Any:
        shown = list(self.done)
        if self.current.results:
            self.current.duration = time.perf_counter() - self.started
            shown.append(self.current)
        table = levels_table(self.title, [summarize(r) for r in shown])
        return Group(table, self.progress)

    def __enter__(self) -> LiveRun:
        self.live = Live(
            get_renderable=self.table,
            console=self.console,
            refresh_per_second=4,
            transient=True,
            auto_refresh=self.console.is_terminal,
        )
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)


async def run_sweep(
    client: httpx.AsyncClient,
    config: LoadConfig,
    args: argparse.Namespace,
    origin: float,
    live: LiveRun,
) -> tuple[list[LevelRun], dict]:
    concurrencies = args.concurrency or ([None] if args.rate else [1])
    levels = [
        Level(c, r, e)
        for e in (args.reasoning_effort or [None])
        for r in (args.rate or [None])
        for c in concurrencies
    ]
    live.plan(len(levels))
    with live:
        for level in levels:
            live.begin(level)
            finished = await run_level(client, config, level, live.add, origin)
            live.finish(finished)
    return live.done, {}


async def run_profile(
    client: httpx.AsyncClient,
    config: LoadConfig,
    args: argparse.Namespace,
    slo: Slo,
    origin: float,
    live: LiveRun,
) -> tuple[list[LevelRun], dict]:
    """The profile once per reasoning effort (once if none is given)."""
    verdicts = {}
    with live:
        for effort in args.reasoning_effort or [None]:
            plan = ProfilePlan(
                args.profile, args.concurrency, args.duration, slo, effort, args.settle
            )
            live.begin(Level(args.concurrency[0], effort=effort, phase=args.profile))
            context = RunContext(client, config, origin, live.add, live.finish)
            run = await RUNNERS[args.profile](context, plan)
            verdicts[effort or "default"] = run.verdict
    return live.done, verdicts
