"""`mlx-gen bench serve URL`, `mlx-gen bench compare A.json B.json` and
`mlx-gen bench engine` (bench_engine.py).

`serve` loads any OpenAI-compatible server (mlx-gen, mlx_lm.server, vllm-mlx,
llama-server) with streaming chat completions at each level of a sweep, shows
a live table, then the figures next to the product's targets; `--output`
keeps every figure and every request as JSON. `compare` lays such files side
by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console

from mlx_gen.cli import bench_engine
from mlx_gen.cli.flags import number_list
from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(
        dest="bench_command", metavar="BENCH", required=True
    )
    serve = commands.add_parser("serve", help="load an OpenAI-compatible server")
    serve.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    serve.add_argument(
        "--model", help="model id to ask for (default: the first listed)"
    )
    serve.add_argument("--api-key", help="sent as a bearer token")
    serve.add_argument(
        "--concurrency",
        type=number_list(int),
        metavar="N,N",
        help="requests in flight, one level each (default 1; no cap with --rate)",
    )
    serve.add_argument(
        "--rate",
        type=number_list(float),
        metavar="R,R",
        help="Poisson arrivals per second, one level each (default: all at once)",
    )
    serve.add_argument(
        "--num-requests", type=int, default=32, metavar="N", help="per level"
    )
    serve.add_argument("--prompt-tokens", type=int, default=128, metavar="N")
    serve.add_argument("--max-tokens", type=int, default=128, metavar="N")
    serve.add_argument(
        "--warmup", type=int, default=1, metavar="N", help="unmeasured first"
    )
    serve.add_argument("--seed", type=int, default=0, help="of prompts and arrivals")
    serve.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per request"
    )
    serve.add_argument(
        "--max-duration", type=float, default=600.0, help="seconds per level at most"
    )
    serve.add_argument("--label", help="name of this run in comparisons")
    serve.add_argument("--output", type=Path, metavar="FILE", help="write JSON here")
    compare = commands.add_parser("compare", help="compare `bench serve` JSON files")
    compare.add_argument("files", type=Path, nargs="+", metavar="FILE")
    bench_engine.add_arguments(
        commands.add_parser("engine", help="measure the mlx-gen engine in-process")
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.bench_command == "compare":
        return _compare(args.files)
    if args.bench_command == "engine":
        return bench_engine.run(args, settings)
    for name in (
        "num_requests",
        "prompt_tokens",
        "max_tokens",
        "timeout",
        "max_duration",
    ):
        if getattr(args, name) <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        raise CommandError("--warmup must be 0 or more")
    if urlparse(args.url).scheme not in ("http", "https"):
        raise CommandError(f"not an http(s) URL: {args.url}")
    report = asyncio.run(_serve(args, Console(stderr=True)))
    if args.output is not None:  # first: the figures outlive a broken pipe
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        Console(stderr=True).print(f"wrote {args.output}", style="dim")
    _print_report(Console(), report)
    failed = sum(level["failed"] for level in report["levels"])
    return 0 if failed < sum(level["requests"] for level in report["levels"]) else 1


async def _serve(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import httpx
    from rich.live import Live

    from mlx_gen.bench.loadgen import (
        Level,
        LevelRun,
        LoadConfig,
        calibrate_prompt_words,
        make_client,
        normalize_base_url,
        run_level,
        server_info,
        warm_up,
    )
    from mlx_gen.bench.report import (
        hardware_line,
        levels_table,
        requests_of,
        summarize,
        target_checks,
    )

    base_url = normalize_base_url(args.url)
    concurrencies = args.concurrency or ([None] if args.rate else [1])
    levels = [Level(c, r) for r in (args.rate or [None]) for c in concurrencies]
    widest = max(c or args.num_requests for c in concurrencies)
    async with make_client(widest + 1, args.timeout) as client:
        try:
            info = await server_info(client, base_url, args.api_key)
        except (httpx.HTTPError, ValueError) as exc:
            reason = f"{type(exc).__name__} {exc}".strip()
            raise CommandError(
                f"cannot list models at {base_url}/v1/models: {reason}"
            ) from None
        model = args.model or (info["models"] or [None])[0]
        if model is None:
            raise CommandError(f"{base_url}/v1/models lists no model: pass --model")
        config = LoadConfig(
            base_url=base_url,
            model=model,
            num_requests=args.num_requests,
            prompt_words=args.prompt_tokens,
            max_tokens=args.max_tokens,
            api_key=args.api_key,
            seed=args.seed,
            request_timeout=args.timeout,
            level_deadline=args.max_duration,
        )
        with console.status(f"Warming up {model} at {base_url}"):
            await warm_up(client, config, args.warmup)
            words = await calibrate_prompt_words(client, config, args.prompt_tokens)
        if words is not None:
            config = replace(config, prompt_words=words)
        runs: list[LevelRun] = []
        active: dict[str, Any] = {"run": None, "started": 0.0}

        def live_table() -> Any:
            shown = list(runs)
            if active["run"] is not None:
                active["run"].duration = time.perf_counter() - active["started"]
                shown.append(active["run"])
            return levels_table(f"{model} at {base_url}", [summarize(r) for r in shown])

        with Live(
            get_renderable=live_table,
            console=console,
            refresh_per_second=4,
            transient=True,
            auto_refresh=console.is_terminal,
        ):
            for level in levels:
                active.update(run=LevelRun(level, 0.0, []), started=time.perf_counter())
                on_result = active["run"].results.append
                finished = await run_level(client, config, level, on_result)
                active["run"] = None
                runs.append(finished)
    summaries = [{**summarize(r), "samples": requests_of(r)} for r in runs]
    from mlx_gen.hardware import hardware

    machine = hardware()
    return {
        "label": args.label
        or f"{info['server'] or 'server'} {urlparse(base_url).netloc}",
        "url": base_url,
        "model": model,
        "server": info["server"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "num_requests": args.num_requests,
            "prompt_tokens": args.prompt_tokens,
            "prompt_words": config.prompt_words,
            "prompt_calibrated": words is not None,
            "max_tokens": args.max_tokens,
            "concurrency": concurrencies,
            "rate": args.rate,
            "warmup": args.warmup,
            "seed": args.seed,
            "request_timeout_s": args.timeout,
            "level_deadline_s": args.max_duration,
        },
        "hardware": machine,
        "hardware_text": hardware_line(machine, base_url),
        "levels": summaries,
        "targets": target_checks(summaries, model),
    }


def _print_report(console: Console, report: dict[str, Any]) -> None:
    from mlx_gen.bench.report import levels_table, targets_table

    title = f"{report['label']}: {report['model']} at {report['url']}"
    console.print(levels_table(title, report["levels"]))
    if not all(level["usage_reported"] for level in report["levels"]):
        console.print(
            "output tokens counted as streamed chunks: the server sent no usage"
        )
    console.print(
        targets_table(report["targets"], report["hardware_text"], report["model"])
    )


def _compare(files: list[Path]) -> int:
    from mlx_gen.bench.report import compare_table

    reports = []
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        if not isinstance(report, dict) or "levels" not in report:
            raise CommandError(f"{file} is not a `bench serve` JSON report")
        reports.append(report)
    console = Console()
    console.print(compare_table(reports))
    for report in reports:
        console.print(f"{report['label']}: {report['hardware_text']}", highlight=False)
    return 0
