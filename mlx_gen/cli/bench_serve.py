"""`mlx-gen bench serve URL`: a sweep of levels or a profile against any
OpenAI-compatible server, a live table while it runs, the figures next to the
product's targets after; JSON (`--output`) and HTML (`--report`) to keep."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any
from urllib.parse import urlparse

from rich.console import Console

from mlx_gen.cli.bench_serve_args import add_arguments, check
from mlx_gen.errors import CommandError

__all__ = ["add_arguments", "run"]


def run(args: argparse.Namespace) -> int:
    check(args)
    if urlparse(args.url).scheme not in ("http", "https"):
        raise CommandError(f"not an http(s) URL: {args.url}")
    report = asyncio.run(_serve(args, Console(stderr=True)))
    if args.output is not None:  # first: the figures outlive a broken pipe
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        Console(stderr=True).print(f"wrote {args.output}", style="dim")
    if args.report is not None:
        from mlx_gen.bench.html_report import write_report

        write_report(report, args.report)
        Console(stderr=True).print(f"wrote {args.report}", style="dim")
    _print_report(Console(), report)
    if args.targets and any(c["met"] is False for c in report["targets"]):
        return 1
    failed = sum(level["failed"] for level in report["levels"])
    return 0 if failed < sum(level["requests"] for level in report["levels"]) else 1


def _workload(args: argparse.Namespace) -> Any:
    from mlx_gen.bench.workload import Workload, load_prompts

    try:
        prompts = load_prompts(args.prompts) if args.prompts else ()
    except (OSError, ValueError) as exc:
        raise CommandError(f"--prompts: {exc}") from None
    return Workload(
        prompt_words=args.prompt_tokens,
        max_tokens=args.max_tokens,
        prompts=prompts,
        stream_fraction=args.stream_fraction,
        endpoint=args.endpoint,
    )


async def _connect(client: Any, args: argparse.Namespace, base_url: str) -> dict:
    import httpx

    from mlx_gen.bench.loadgen import server_info

    try:
        return await server_info(client, base_url, args.api_key)
    except (httpx.HTTPError, ValueError) as exc:
        reason = f"{type(exc).__name__} {exc}".strip()
        raise CommandError(
            f"cannot list models at {base_url}/v1/models: {reason}"
        ) from None


async def _serve(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from mlx_gen.bench import analysis
    from mlx_gen.bench.loadgen import (
        LoadConfig,
        calibrate_prompt_words,
        calibrated,
        make_client,
        normalize_base_url,
        warm_up,
    )
    from mlx_gen.bench.monitor import Monitor, pid_listening_on
    from mlx_gen.bench.report import requests_of, summarize, target_checks
    from mlx_gen.cli.bench_live import LiveRun, run_profile, run_sweep

    base_url = normalize_base_url(args.url)
    slo = analysis.Slo(
        args.slo_success, args.slo_ttft_p95 / 1000, args.slo_itl_p95 / 1000
    )
    workload = _workload(args)
    widest = max(c or args.num_requests for c in args.concurrency or [1])
    if args.profile == "spike":
        widest = args.concurrency[1]
    async with make_client(widest + 2, args.timeout) as client:
        info = await _connect(client, args, base_url)
        model = args.model or (info["models"] or [None])[0]
        if model is None:
            raise CommandError(f"{base_url}/v1/models lists no model: pass --model")
        config = LoadConfig(
            base_url=base_url,
            model=model,
            num_requests=args.num_requests,
            workload=workload,
            api_key=args.api_key,
            seed=args.seed,
            request_timeout=args.timeout,
            level_deadline=args.max_duration,
            retries=args.retries,
        )
        with console.status(f"Warming up {model} at {base_url}"):
            await warm_up(client, config, args.warmup)
            words_for = None
            if not workload.prompts:
                words_for = await calibrate_prompt_words(client, config)
        if words_for is not None:
            config = calibrated(config, words_for)
        origin = time.perf_counter()
        pid = args.server_pid or pid_listening_on(base_url)
        monitor = Monitor(
            client, args.metrics_url or f"{base_url}/metrics", pid, origin
        )
        monitor.start()
        live = LiveRun(console, f"{model} at {base_url}")
        try:
            if args.profile is None:
                runs, verdicts = await run_sweep(client, config, args, origin, live)
            else:
                runs, verdicts = await run_profile(
                    client, config, args, slo, origin, live
                )
        finally:
            resources = await monitor.stop()
        end = time.perf_counter() - origin
    results = [r for run in runs for r in run.results]
    summaries = [
        {
            **summarize(r),
            "goodput": analysis.goodput(r.results, r.duration, slo),
            "statuses": analysis.by_status(r.results),
            "samples": requests_of(r),
        }
        for r in runs
    ]
    from mlx_gen.bench.report import hardware_line
    from mlx_gen.hardware import hardware

    machine = hardware()
    return {
        "label": args.label
        or f"{info['server'] or 'server'} {urlparse(base_url).netloc}",
        "url": base_url,
        "model": model,
        "server": info["server"],
        "server_pid": pid,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "profile": args.profile,
            "num_requests": args.num_requests,
            "prompt_tokens": str(args.prompt_tokens),
            "prompt_words": str(config.workload.prompt_words),
            "prompt_calibrated": words_for is not None,
            "prompts_file": str(args.prompts) if args.prompts else None,
            "max_tokens": str(args.max_tokens),
            "stream_fraction": args.stream_fraction,
            "endpoint": args.endpoint,
            "reasoning_effort": args.reasoning_effort,
            "concurrency": args.concurrency or ([None] if args.rate else [1]),
            "rate": args.rate,
            "duration_s": args.duration,
            "settle_s": args.settle,
            "retries": args.retries,
            "warmup": args.warmup,
            "seed": args.seed,
            "request_timeout_s": args.timeout,
            "level_deadline_s": args.max_duration,
        },
        "slo": slo.as_dict(),
        "profile": {"name": args.profile, "verdicts": verdicts},
        "hardware": machine,
        "hardware_text": hardware_line(machine, base_url),
        "levels": summaries,
        "series": analysis.time_series(results, slo, end),
        "resources": resources,
        "targets": target_checks(summaries, model),
    }


def _print_report(console: Console, report: dict[str, Any]) -> None:
    from mlx_gen.bench.tables import levels_table, profile_lines, targets_table

    title = f"{report['label']}: {report['model']} at {report['url']}"
    console.print(levels_table(title, report["levels"]))
    if not all(level["usage_reported"] for level in report["levels"]):
        console.print(
            "output tokens counted as streamed chunks: the server sent no usage"
        )
    for line in profile_lines(report["profile"]):
        console.print(line, highlight=False)
    console.print(
        targets_table(report["targets"], report["hardware_text"], report["model"])
    )
