"""A load run's figures (report.py) as rich tables: one for a run, its
targets, one comparing runs side by side (mlx-gen against another server),
and the verdict lines of a load profile."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _p50_p99(metric: str) -> Any:
    return lambda s: f"{_ms(s[metric]['p50'])} / {_ms(s[metric]['p99'])}"


LEVEL_COLUMNS = (
    ("level", lambda s: s["level"]),
    ("ok", lambda s: f"{s['completed']}/{s['requests']}"),
    ("TTFT", _p50_p99("ttft_s")),
    ("TPOT", _p50_p99("tpot_s")),
    ("ITL", _p50_p99("itl_s")),
    ("E2EL", _p50_p99("e2el_s")),
    ("tok/s", lambda s: _rate(s["output_tok_s"])),
    ("req/s", lambda s: f"{s['requests_per_s']:.2f}"),
    ("failures", lambda s: ", ".join(f"{k}×{v}" for k, v in s["failures"].items())),
)


def levels_table(title: str, levels: list[dict[str, Any]]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        caption="latencies in ms, p50 / p99; tok/s: output tokens of all streams",
        caption_justify="left",
    )
    for name, _ in LEVEL_COLUMNS:
        table.add_column(
            name, justify="left" if name in ("level", "failures") else "right"
        )
    for summary in levels:
        table.add_row(*(cell(summary) for _, cell in LEVEL_COLUMNS))
    return table


def targets_table(
    checks: list[dict[str, Any]], hardware_text: str, model: str
) -> Table:
    table = Table(
        title=f"Targets (GPT-OSS-20B, 32 GB Apple Silicon Mac); measured: {model}",
        title_justify="left",
        caption=f"measured on: {hardware_text}",
        caption_justify="left",
    )
    for name in ("figure", "target", "measured", "met"):
        table.add_column(name)
    for c in checks:
        value = c["measured"]
        if value is None:
            shown = "not measured"
        elif "TTFT" in c["name"]:
            shown = f"{value * 1000:.1f} ms"
        elif "success" in c["name"]:
            shown = f"{value:.1%}"
        else:
            shown = f"{value:.1f} tok/s"
        met = {True: "[green]yes", False: "[red]no", None: "-"}[c["met"]]
        table.add_row(c["name"], c["target"], shown, c["why"] or met)
    return table


# (figure, how to read it from a level summary, scale for display)
COMPARED = (
    ("TTFT p50 ms", lambda s: s["ttft_s"]["p50"], 1000),
    ("TPOT p50 ms", lambda s: s["tpot_s"]["p50"], 1000),
    ("E2EL p99 ms", lambda s: s["e2el_s"]["p99"], 1000),
    ("output tok/s", lambda s: s["output_tok_s"], 1),
    ("success %", lambda s: s["success_rate"], 100),
)


def compare_table(reports: list[dict[str, Any]]) -> Table:
    """Runs side by side, level by level; later runs as a ratio to the first."""
    labels = [r["label"] for r in reports]
    table = Table(title="Comparison (ratio to " + labels[0] + ")", title_justify="left")
    table.add_column("level")
    table.add_column("figure")
    for label in labels:
        table.add_column(label, justify="right")
    by_level = [{s["level"]: s for s in r["levels"]} for r in reports]
    order = list(dict.fromkeys(lvl for levels in by_level for lvl in levels))
    for level in order:
        for name, get, scale in COMPARED:
            cells = []
            base = by_level[0].get(level)
            base_value = get(base) if base else None
            for levels in by_level:
                summary = levels.get(level)
                value = get(summary) if summary else None
                if value is None:
                    cells.append("-")
                    continue
                text = f"{value * scale:.1f}"
                if base_value and levels is not by_level[0]:
                    text += f" ({value / base_value:.2f}×)"
                cells.append(text)
            table.add_row(level, name, *cells)
        table.add_section()
    return table


def _verdict_line(profile: str, verdict: dict[str, Any]) -> str:
    if profile == "ramp":
        broken = (
            f"SLO broken at {verdict['broken_at']} users by:"
            f" {', '.join(verdict['broken_by'])}"
            if verdict["broken_at"] is not None
            else "SLO held at every step"
        )
        return (
            f"capacity {verdict['capacity']} users (last level within the SLO),"
            f" knee {verdict['knee']} users; {broken}"
        )
    if profile == "spike":
        recovery = verdict["recovery_s"]
        back = "never within the run" if recovery is None else f"{recovery:.0f} s"
        return f"recovery after the spike: {back}; spike: {verdict['spike_statuses']}"
    if profile == "soak":
        change = {k: v for k, v in verdict["change"].items() if v is not None}
        return "drift, last tenth vs first: " + ", ".join(
            f"{k} {v:+.1%}" for k, v in change.items()
        )
    good = verdict["goodput"]
    return (
        f"statuses {verdict['statuses']}; refused {verdict['refused']}"
        f" ({verdict['refused_with_retry_after']} with Retry-After), retried"
        f" {verdict['retried']}, timeouts/resets {verdict['ungraceful']}; goodput"
        f" {good['requests_per_s']:.2f} req/s, {good['output_tok_s']:.1f} tok/s"
    )


def profile_lines(profile: dict[str, Any]) -> list[str]:
    """A sentence per profile run: what the profile found."""
    if profile["name"] is None:
        return []
    return [
        f"{profile['name']} ({effort}): {_verdict_line(profile['name'], verdict)}"
        for effort, verdict in profile["verdicts"].items()
    ]
