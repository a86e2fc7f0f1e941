"""results.json as markdown: one section per benchmark, its figures in tables."""

from __future__ import annotations

from typing import Any

_SKIP = {"date", "command", "load_average_start", "load_average_end"}


def fmt(value: Any) -> str:
    """Numbers to about three significant figures; spreads as median (min–max)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, dict) and {"median", "min", "max"} <= set(value):
        return f"{fmt(value['median'])} ({fmt(value['min'])}–{fmt(value['max'])})"
    if isinstance(value, dict):
        return ", ".join(f"{k} {fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
    return lines


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark run",
        "",
        f"Machine: {m['cpu']}, {m['cpu_cores']} cores,"
        f" {m['memory_bytes'] / 2**30:.1f} GiB RAM, {m['accelerator']};"
        f" {m['os']} (Linux {m['kernel']}), Python {m['python']},"
        f" mlx {m['mlx']}, mlx-lm {m['mlx_lm']}, mlx-gen {m['mlx_gen']};"
        f" BLAS {m['blas']}.",
    ]
    for nodeid, figures in results["benchmarks"].items():
        lines += ["", f"## {nodeid}", ""]
        lines.append(
            f"{figures['date']}; load average {fmt(figures['load_average_start'])}"
            f" at the start, {fmt(figures.get('load_average_end'))} at the end."
        )
        lines += ["", "```", figures["command"], "```", ""]
        scalars = {
            k: v for k, v in figures.items() if k not in _SKIP and not _is_rows(v)
        }
        if scalars:
            lines += table([{"figure": k, "value": v} for k, v in scalars.items()])
        elif not any(_is_rows(v) for v in figures.values()):
            lines.append("No figures: the benchmark failed or was interrupted.")
        for key, value in figures.items():
            if _is_rows(value):
                lines += ["", f"{key}:", "", *table(value)]
    return "\n".join(lines) + "\n"
