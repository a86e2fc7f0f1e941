"""The live view of `mlx-gen bench serve`: the levels table above a progress
bar of levels done out of planned, with the running level's request count."""

from __future__ import annotations

import io

from rich.console import Console

from mlx_gen.bench.loadgen import Level, LevelRun
from mlx_gen.bench.request import RequestResult
from mlx_gen.cli.bench_live import LiveRun


def _result() -> RequestResult:
    return RequestResult(
        ok=True, sent_at=0, ttft=0.05, e2el=0.1, itl=[0.01] * 4,
        output_tokens=5, text_chunks=5, usage_reported=True,
    )  # fmt: skip


def _shown(live: LiveRun) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(live.table())
    return console.file.getvalue()


def test_the_bar_counts_levels_and_the_running_level_its_requests():
    live = LiveRun(Console(file=io.StringIO()), "run")
    live.plan(2)
    first = Level(1)
    live.begin(first)
    live.add(_result())
    live.add(_result())
    shown = _shown(live)
    assert "c=1: 2 requests" in shown and "0/2 levels" in shown
    live.finish(LevelRun(first, 1.0, [_result(), _result()]))
    live.begin(Level(4))
    shown = _shown(live)
    assert "1/2 levels" in shown and "c=4" in shown
    assert shown.index("level") < shown.index("1/2 levels")  # table, then bar


def test_a_profile_has_no_planned_total():
    live = LiveRun(Console(file=io.StringIO()), "ramp")
    live.begin(Level(1, phase="ramp"))
    live.finish(LevelRun(Level(1, phase="ramp"), 1.0, [_result()]))
    assert "1/? levels" in _shown(live)
