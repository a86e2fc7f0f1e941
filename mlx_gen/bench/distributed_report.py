"""`mlx-gen bench engine --distributed`: every rank's memory beside the report.

Rank 0 measures speed as for one process; the other ranks' figures come from
the engine's last collective before it let them go (their weights, their MLX
memory in use then, and their peak since they started). Rank 0's own peak is
reset at each point, so its row shows the largest point's peak.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from mlx_gen.bench.engine_bench import PointResult


def add_ranks(report: dict[str, Any], engine: Any, results: list[PointResult]) -> None:
    """Put `distributed` (ranks and per-rank memory) into the JSON report."""
    ranks = [asdict(r) for r in engine.rank_memory or []]
    if ranks:
        largest = max(r.engine.peak_memory_bytes for r in results)
        ranks[0]["peak_bytes"] = max(ranks[0]["peak_bytes"], largest)
    report["distributed"] = {"ranks": engine.ranks, "per_rank": ranks}


def print_ranks(console: Console, report: dict[str, Any]) -> None:
    shared = report["distributed"]
    table = Table(
        title=f"Tensor parallel over {shared['ranks']} ranks: memory per rank",
        box=box.SIMPLE,
    )
    for column in ("rank", "weights MB", "active MB", "peak MB"):
        table.add_column(column, justify="right")
    for rank in shared["per_rank"]:
        table.add_row(
            str(rank["rank"]),
            *(
                f"{rank[key] / 10**6:,.1f}"
                for key in ("weights_bytes", "active_bytes", "peak_bytes")
            ),
        )
    if not shared["per_rank"]:
        table.caption = "no figures: a rank was lost before the end"
    console.print(table)
