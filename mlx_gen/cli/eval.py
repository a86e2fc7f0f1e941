"""`mlx-gen eval kl SRC CONVERTED`: what a converted model lost against its source.

Both models score the same text (a bundled few KB of prose, code and figures,
or `--text FILE`), one model in memory at a time (mlx_gen.models.quality): the
mean and 99th-percentile KL divergence, top-1 agreement and both perplexities,
as a table or, with `--json`, one JSON object. `mlx-gen convert --check` shows
the same rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mlx_gen.cli.flags import positive_int
from mlx_gen.errors import CommandError, QualityError
from mlx_gen.models.quality import DEFAULT_CHUNK, DEFAULT_MAX_TOKENS
from mlx_gen.settings import Settings

if TYPE_CHECKING:
    from mlx_gen.models.quality import KLReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="eval_command", metavar="EVAL", required=True)
    kl = commands.add_parser(
        "kl",
        help="KL divergence, top-1 agreement and perplexity against the source",
        description="Score the same text with a source model and its conversion"
        " and report what the conversion changed.",
    )
    kl.add_argument("src", help="the source: registered model name or directory")
    kl.add_argument("converted", help="the converted model: name or directory")
    kl.add_argument(
        "--text",
        type=Path,
        metavar="FILE",
        help="UTF-8 text to score (default: a bundled sample of prose and code)",
    )
    kl.add_argument(
        "--tokens",
        type=positive_int,
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help=f"score at most the first N tokens ({DEFAULT_MAX_TOKENS})",
    )
    kl.add_argument(
        "--chunk",
        type=positive_int,
        default=DEFAULT_CHUNK,
        metavar="N",
        help=f"tokens of context, each chunk with a fresh cache ({DEFAULT_CHUNK})",
    )
    kl.add_argument(
        "--top-k",
        type=positive_int,
        metavar="K",
        help="source log-probs kept per position (default: the whole vocabulary"
        " if that fits in 256 MB, else as many as do)",
    )
    kl.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mlx_gen.models.loading import load_model, load_tokenizer
    from mlx_gen.models.quality import evaluation_tokens, measure_kl

    text = read_text(args.text)
    status = Console(stderr=True)
    try:
        tokens = evaluation_tokens(
            load_tokenizer(args.src, settings),
            load_tokenizer(args.converted, settings),
            text,
            args.tokens,
        )
        with status.status("Loading the source") as spinner:
            report = measure_kl(
                lambda: load_model(args.src, settings).model,
                lambda: load_model(args.converted, settings).model,
                tokens,
                chunk=args.chunk,
                top_k=args.top_k,
                on_stage=spinner.update,
            )
    except QualityError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        text_name = str(args.text) if args.text else "built-in"
        found = {"source": args.src, "converted": args.converted, "text": text_name}
        print(json.dumps({**found, **report.as_dict()}, indent=2))
        return 0
    table = Table(title=f"{args.converted} against {args.src}", show_header=False)
    add_kl_rows(table, report)
    Console().print(table)
    return 0


def read_text(path: Path | None) -> str:
    """The text to score: `path`'s, or the bundled sample."""
    if path is None:
        from mlx_gen.models.quality import default_text

        return default_text()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CommandError(f"cannot read {path}: {reason or exc}") from None


def add_kl_rows(table: Table, report: KLReport) -> None:
    """What the conversion changed, in rows of a two-column table."""
    table.add_row(
        "KL divergence (source ‖ converted)",
        f"mean {report.kl_mean:.4g}, p99 {report.kl_p99:.4g}, max {report.kl_max:.4g}",
    )
    table.add_row("top-1 agreement", f"{report.top1_agreement:.1%}")
    change = report.converted_perplexity / report.source_perplexity - 1
    table.add_row(
        "perplexity",
        f"source {report.source_perplexity:.4g} → converted"
        f" {report.converted_perplexity:.4g} ({change:+.2%})",
    )
    table.add_row(
        "tokens scored",
        f"{report.tokens_scored:,} in {report.chunks} chunks of up to {report.chunk}",
    )
    kept = f"{report.top_k:,} of {report.vocab_size:,} log-probs per position"
    if report.top_k == report.vocab_size:
        kept += " (exact)"
    else:
        kept += (
            f"; {report.source_tail_mass:.1%} of the source's probability outside"
            " them (the KL is a lower bound)"
        )
    table.add_row("source record", kept)
