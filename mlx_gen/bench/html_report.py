"""`bench serve --report run.html` and `bench compare --report cmp.html`: one
self-contained HTML file of Plotly figures (plotly.js inlined once: it opens
offline), a section per question an operator asks of a run."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

LATENCIES = (("ttft_s", "TTFT"), ("itl_s", "ITL"), ("e2el_s", "E2E"))
RESOURCES = (
    ("rss_bytes", "server RSS MB", 1e-6),
    ("mlx_active_memory_bytes", "MLX active MB", 1e-6),
    ("kv_tokens_used", "KV tokens used", 1),
)
QUEUES = (("queue", "queue"), ("running", "running"))


def _levels(report: dict[str, Any]) -> list[str]:
    return [level["level"] for level in report["levels"]]


def throughput_over_time(reports: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for report in reports:
        t = [s["t"] for s in report["series"]]
        for key, name in (("output_tok_s", "output"), ("goodput_tok_s", "goodput")):
            values = [s[key] for s in report["series"]]
            fig.add_scatter(x=t, y=values, mode="lines", name=_name(report, name))
    return fig.update_layout(xaxis_title="seconds", yaxis_title="tokens / s")


def latency_per_level(reports: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    for report in reports:
        for key, label in LATENCIES:
            for q in ("p50", "p95", "p99"):
                values = [_ms(level[key][q]) for level in report["levels"]]
                name = _name(report, f"{label} {q}")
                fig.add_scatter(x=_levels(report), y=values, name=name)
    return fig.update_layout(yaxis_title="ms", yaxis_type="log")


def success_per_level(reports: list[dict[str, Any]]) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for report in reports:
        statuses = sorted({s for lvl in report["levels"] for s in lvl["statuses"]})
        for status in statuses:
            counts = [lvl["statuses"].get(status, 0) for lvl in report["levels"]]
            fig.add_bar(x=_levels(report), y=counts, name=_name(report, status))
        rate = [lvl["success_rate"] * 100 for lvl in report["levels"]]
        fig.add_scatter(
            x=_levels(report),
            y=rate,
            name=_name(report, "success %"),
            secondary_y=True,
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="requests by status", secondary_y=False)
    return fig.update_yaxes(title_text="success %", secondary_y=True)


def capacity(report: dict[str, Any]) -> go.Figure:
    """Throughput and goodput per level, with the ramp's capacity and knee."""
    fig = go.Figure()
    names = _levels(report)
    fig.add_scatter(
        x=names, y=[lvl["output_tok_s"] for lvl in report["levels"]], name="output"
    )
    goodput = [lvl["goodput"]["output_tok_s"] for lvl in report["levels"]]
    fig.add_scatter(x=names, y=goodput, name="goodput")
    for verdict in report["profile"]["verdicts"].values():
        for key, color in (("capacity", "green"), ("knee", "orange")):
            users = verdict.get(key)
            match = [n for n, lvl in zip(names, report["levels"], strict=True)
                     if lvl["concurrency"] == users]  # fmt: skip
            if match:
                fig.add_vline(
                    x=names.index(match[0]),
                    line_color=color,
                    annotation_text=f"{key} {users}",
                )
    return fig.update_layout(yaxis_title="tokens / s")


def resources_over_time(reports: list[dict[str, Any]]) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for report in reports:
        samples = report["resources"]
        t = [s["t"] for s in samples]
        for key, label, scale in RESOURCES:
            if any(key in s for s in samples):
                values = [s[key] * scale if key in s else None for s in samples]
                fig.add_scatter(x=t, y=values, name=_name(report, label))
        for key, label in QUEUES:
            if any(key in s for s in samples):
                values = [s.get(key) for s in samples]
                fig.add_scatter(
                    x=t, y=values, name=_name(report, label), secondary_y=True
                )
    fig.update_xaxes(title_text="seconds")
    fig.update_yaxes(title_text="memory", secondary_y=False)
    return fig.update_yaxes(title_text="sequences", secondary_y=True)


def reasoning_levels(report: dict[str, Any]) -> go.Figure:
    """Per reasoning effort, averaged over its levels: tokens and latencies."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    by_effort: dict[str, list[dict[str, Any]]] = {}
    for level in report["levels"]:
        by_effort.setdefault(level["effort"], []).append(level)
    efforts = list(by_effort)

    def mean(get: Callable[[dict[str, Any]], float | None]) -> list[float | None]:
        out = []
        for effort in efforts:
            values = [v for v in map(get, by_effort[effort]) if v is not None]
            out.append(sum(values) / len(values) if values else None)
        return out

    answer = mean(
        lambda lvl: (
            lvl["output_tokens_per_request_mean"] - (lvl["reasoning_tokens_mean"] or 0)
        )
    )
    fig.add_bar(x=efforts, y=mean(lambda lvl: lvl["reasoning_tokens_mean"]),
                name="reasoning tokens")  # fmt: skip
    fig.add_bar(x=efforts, y=answer, name="answer tokens")
    for key, label in (("answer_ttft_s", "TTFT to answer p50"), ("e2el_s", "E2E p50")):
        values = mean(lambda lvl, key=key: _ms(lvl[key]["p50"]))
        fig.add_scatter(x=efforts, y=values, name=label, secondary_y=True)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="tokens per request", secondary_y=False)
    return fig.update_yaxes(title_text="ms", secondary_y=True)


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _name(report: dict[str, Any], what: str) -> str:
    return f"{report['label']}: {what}" if report.get("_overlay") else what


def _page(title: str, sections: list[tuple[str, str, go.Figure | None]]) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em} p{color:#444}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    first = True
    for heading, text, fig in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>")
        parts.append(f"<p>{html.escape(text)}</p>")
        if fig is not None:
            fig.update_layout(height=420, margin={"t": 30})
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
            first = False
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _sections(report: dict[str, Any]) -> list[tuple[str, str, go.Figure | None]]:
    from mlx_gen.bench.tables import profile_lines

    found = " ".join(profile_lines(report["profile"]))
    efforts = {level["effort"] for level in report["levels"]} - {None}
    ramp = report["profile"]["name"] == "ramp"
    return [
        ("Throughput and goodput over time",
         "Output tokens per second of answered requests, and of those within"
         " the SLO (goodput), by the second they finished.",
         throughput_over_time([report])),
        ("Latency per level", "p50, p95 and p99 per level (log scale).",
         latency_per_level([report])),
        ("Success and status per level", "Requests per HTTP status or error.",
         success_per_level([report])),
        ("Capacity and knee" if ramp else "Throughput per level",
         found or "Throughput and goodput per level.", capacity(report)),
        ("Server memory and queue over time",
         "Scraped from the server's /metrics and its process, every second."
         if report["resources"] else "No server metrics or process were found.",
         resources_over_time([report]) if report["resources"] else None),
        ("Reasoning levels side by side",
         "Tokens per request and latency per reasoning effort."
         if efforts else "This run used no --reasoning-effort.",
         reasoning_levels(report) if efforts else None),
    ]  # fmt: skip


def write_report(report: dict[str, Any], path: Path) -> None:
    title = f"{report['label']}: {report['model']} at {report['url']}"
    path.write_text(_page(title, _sections(report)), encoding="utf-8")


def write_comparison(reports: list[dict[str, Any]], path: Path) -> None:
    """The runs overlaid, each trace named by its run's label."""
    runs = [{**r, "_overlay": True} for r in reports]
    sections = [
        ("Throughput and goodput over time", "", throughput_over_time(runs)),
        ("Latency per level", "p50, p95 and p99 (log scale).",
         latency_per_level(runs)),
        ("Success and status per level", "", success_per_level(runs)),
        ("Server memory and queue over time", "", resources_over_time(runs)),
    ]  # fmt: skip
    title = "Comparison: " + " vs ".join(r["label"] for r in reports)
    path.write_text(_page(title, sections), encoding="utf-8")
