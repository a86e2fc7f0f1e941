"""`mlx-gen bench serve URL`, `mlx-gen bench compare A.json B.json` and
`mlx-gen bench engine` (bench_engine.py).

`serve` (bench_serve.py) loads any OpenAI-compatible server (mlx-gen,
mlx_lm.server, vllm-mlx, llama-server): a sweep of levels, or a profile (ramp,
spike, soak, stress), shows a live table, then the figures next to the
product's targets; `--output` keeps every figure and request as JSON and
`--report` draws them in one HTML file. `compare` lays such files side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from mlx_gen.cli import bench_engine, bench_serve
from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(
        dest="bench_command", metavar="BENCH", required=True
    )
    bench_serve.add_arguments(
        commands.add_parser("serve", help="load an OpenAI-compatible server")
    )
    compare = commands.add_parser("compare", help="compare `bench serve` JSON files")
    compare.add_argument("files", type=Path, nargs="+", metavar="FILE")
    compare.add_argument(
        "--report", type=Path, metavar="FILE", help="overlay the runs in HTML here"
    )
    bench_engine.add_arguments(
        commands.add_parser("engine", help="measure the mlx-gen engine in-process")
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.bench_command == "compare":
        return _compare(args.files, args.report)
    if args.bench_command == "engine":
        return bench_engine.run(args, settings)
    return bench_serve.run(args)


def _compare(files: list[Path], html: Path | None) -> int:
    from mlx_gen.bench.tables import compare_table

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
    if html is not None:
        from mlx_gen.bench.html_report import write_comparison

        for file, report in zip(files, reports, strict=True):
            if "series" not in report:
                raise CommandError(f"{file}: written before --report existed: rerun")

        write_comparison(reports, html)
        Console(stderr=True).print(f"wrote {html}", style="dim")
    return 0
