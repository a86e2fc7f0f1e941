"""The report of `mlx-gen bench engine`: targets, a table and JSON, with the
machine (mlx_gen.hardware) the figures come from."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from mlx_gen.bench.engine_bench import PointResult
from mlx_gen.units import GB, format_bytes

# The product's targets, for GPT-OSS-20B on a 32 GB Apple Silicon Mac.
TARGET_DECODE_TPS = 150.0
TARGET_PEAK_BYTES = 16 * GB
TARGET_TTFT = 0.100


def max_rss_bytes() -> int | None:
    """The most resident memory this process has had (MLX's and Python's)."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kB on Linux


def is_gpt_oss_20b(config: dict[str, Any]) -> bool:
    return (
        config.get("model_type") == "gpt_oss"
        and config.get("hidden_size") == 2880
        and config.get("num_hidden_layers") == 24
        and config.get("num_local_experts") == 32
    )


def targets(
    results: list[PointResult], config: dict[str, Any], hw: dict[str, Any]
) -> dict[str, Any]:
    """The three targets beside the measured figures, and whether they apply."""
    singles = sorted(
        (r for r in results if r.point.batch == 1), key=lambda r: r.point.prompt_tokens
    )
    single = singles[0].engine if singles else None
    where = f"batch 1, prompt {singles[0].point.prompt_tokens}" if singles else None
    peak = max(r.engine.peak_memory_bytes for r in results)
    rows = [
        _row("single-stream decode", "tok/s", TARGET_DECODE_TPS, True,
             single.decode_tps_per_stream if single else None, where),
        _row("TTFT (idle, p50)", "s", TARGET_TTFT, False,
             single.ttft_p50 if single else None, where),
        _row("peak memory", "bytes", TARGET_PEAK_BYTES, False, peak, "all points"),
    ]  # fmt: skip
    applies = bool(hw["metal"]) and is_gpt_oss_20b(config)
    why = (
        "GPT-OSS-20B shape on Apple Silicon + Metal: the targets apply"
        if applies
        else "the targets are for GPT-OSS-20B on Apple Silicon + Metal: "
        "this model or machine is not that, so compare for scale only"
    )
    return {"apply": applies, "why": why, "rows": rows}


def _row(
    metric: str,
    unit: str,
    target: float,
    higher_is_better: bool,
    measured: float | None,
    where: str | None,
) -> dict[str, Any]:
    met = None
    if measured is not None:
        met = measured >= target if higher_is_better else measured <= target
    return {
        "metric": metric,
        "unit": unit,
        "target": target,
        "measured": measured,
        "met": met,
        "at": where,
    }


def report_json(
    model: dict[str, Any],
    settings: dict[str, Any],
    results: list[PointResult],
    hw: dict[str, Any],
    config: dict[str, Any],
) -> dict[str, Any]:
    points = []
    for r in results:
        decode = speed = None
        if r.raw is not None:
            if r.raw.decode_tps and r.engine.decode_tps:
                decode = r.engine.decode_tps / r.raw.decode_tps
            # The same prompts and outputs: the ratio of the times they took.
            speed = r.raw.seconds / r.engine.seconds
        speed_up = None
        if r.plain is not None and r.plain.decode_tps and r.engine.decode_tps:
            speed_up = r.engine.decode_tps / r.plain.decode_tps
        points.append(
            asdict(r.point)
            | {
                "engine": asdict(r.engine),
                "raw": asdict(r.raw) if r.raw is not None else None,
                "plain": asdict(r.plain) if r.plain is not None else None,
                "decode_ratio_engine_to_raw": decode,
                "speed_ratio_engine_to_raw": speed,
                "speculation_decode_speed_up": speed_up,
            }
        )
    return {
        "benchmark": "mlx-gen bench engine",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model,
        "hardware": hw,
        "settings": settings,
        "points": points,
        "process_max_rss_bytes": max_rss_bytes(),
        "targets": targets(results, config, hw),
    }


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def _shown(row: dict[str, Any]) -> tuple[str, str]:
    unit, target, measured = row["unit"], row["target"], row["measured"]
    if unit == "s":
        return f"{target * 1000:.0f} ms", _num(
            measured and measured * 1000, "{:.0f} ms"
        )
    if unit == "bytes":
        return f"{target / GB:.0f} GB", format_bytes(measured)
    return f"{target:.0f} {unit}", _num(measured, "{:.1f} " + unit)


def print_report(console: Console, report: dict[str, Any]) -> None:
    model, hw = report["model"], report["hardware"]
    with_raw = any(p["raw"] is not None for p in report["points"])
    speculating = any(p["plain"] is not None for p in report["points"])
    table = Table(
        title=f"mlx-gen engine · {model['name']}",
        title_justify="left",
        caption="prefill and decode in tok/s: decode of all streams together, and"
        " per stream once it started (median); speed vs mlx-lm: the same work's"
        " time with mlx-lm's BatchGenerator / with the engine; decode speed-up:"
        " with speculation / without, the same prompts",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    columns = ["prompt", "batch", "TTFT p50 ms", "prefill", "decode", "per stream"]
    columns += ["peak MB", "tokens / step"]
    columns += ["acceptance", "decode speed-up"] if speculating else []
    columns += ["mlx-lm decode", "speed vs mlx-lm"] if with_raw else []
    for name in columns:
        # Headers wrap between words, never inside one.
        table.add_column(name, justify="right", min_width=max(map(len, name.split())))
    for p in report["points"]:
        e = p["engine"]
        cells = [
            str(p["prompt_tokens"]),
            str(p["batch"]),
            f"{e['ttft_p50'] * 1000:,.0f}",
            _num(e["prefill_tps"], "{:,.0f}"),
            _num(e["decode_tps"], "{:,.0f}"),
            _num(e["decode_tps_per_stream"], "{:,.1f}"),
            f"{e['peak_memory_bytes'] / 10**6:,.1f}",
            _num(e["tokens_per_step"], "{:.2f}"),
        ]
        if speculating:
            speed_up = p["speculation_decode_speed_up"]
            cells += [_num(e["acceptance"], "{:.0%}"), _num(speed_up, "{:.2f}x")]
        if with_raw:
            raw = p["raw"] or {}
            ratio = p["speed_ratio_engine_to_raw"]
            cells += [_num(raw.get("decode_tps"), "{:,.0f}"), _num(ratio, "{:.0%}")]
        table.add_row(*cells)
    console.print(table)
    goals = Table(title="Targets", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("metric", "target", "measured", "at", "met"):
        goals.add_column(name, no_wrap=name != "at")
    # Colour a verdict only where the targets apply; elsewhere it is a hint.
    colours = ("green", "red") if report["targets"]["apply"] else ("dim", "dim")
    for row in report["targets"]["rows"]:
        verdict = {
            True: f"[{colours[0]}]yes",
            False: f"[{colours[1]}]no",
            None: "–",
        }[row["met"]]
        goals.add_row(row["metric"], *_shown(row), row["at"] or "–", verdict)
    console.print(goals)
    console.print(report["targets"]["why"], style="yellow", soft_wrap=True)
    rss = report["process_max_rss_bytes"]
    if rss is not None:
        console.print(
            f"Process peak resident memory: {format_bytes(rss)}", highlight=False
        )
    console.print(
        f"Measured on: [bold]{hw['accelerator']}[/] · {hw['device']} · CPU "
        f"{hw['cpu']} ({hw['cpu_cores']} cores) · {hw['memory_bytes'] / GB:.1f} GB"
        f" memory · BLAS {hw['blas']} · mlx {hw['mlx']}, mlx-lm {hw['mlx_lm']}",
        soft_wrap=True,
        highlight=False,
    )
