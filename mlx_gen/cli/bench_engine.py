"""`mlx-gen bench engine --model NAME`: arguments, the run, the report."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from mlx_gen.cli.flags import add_setting_flag, number_list
from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings, load_settings

# Settings this sub-command takes as flags (`bench` itself takes none).
SETTINGS = (
    "model",
    "registry_file",
    "cache_dir",
    "max_context",
    "memory_budget_gb",
    "prefill_step_size",
    "speculative",
    "num_speculative_tokens",
    "speculative_max_batch",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    int_list = number_list(int)
    for field in SETTINGS:
        add_setting_flag(parser, field)
    parser.add_argument(
        "--prompt-tokens",
        type=int_list,
        default=[128, 1024],
        metavar="N,N",
        help="prompt lengths (default 128,1024)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=128,
        metavar="N",
        help="tokens generated per request, at least 2 (default 128)",
    )
    parser.add_argument(
        "--batch",
        type=int_list,
        default=[1, 8, 32],
        metavar="N,N",
        help="requests submitted together (default 1,8,32)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="also run mlx-lm's BatchGenerator on the same model, for comparison",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the random prompts")
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="of every request (default 1; 0: greedy, where a random-weight"
        " model repeats itself and speculation has proposals to keep)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="tensor parallel over the ranks mlx.launch starts; rank 0 reports",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write JSON here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mlx_gen.bench.engine_bench import Point, run_points
    from mlx_gen.bench.engine_report import print_report, report_json
    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.llm_engine import LLMEngine
    from mlx_gen.engine.types import EngineError
    from mlx_gen.hardware import hardware
    from mlx_gen.models.loading import load_model

    if not 0 <= args.temperature <= 2:
        raise CommandError("--temperature must be between 0 and 2")
    if args.max_tokens < 2:
        raise CommandError("--max-tokens must be at least 2: decode needs two tokens")
    if args.distributed and args.raw:
        raise CommandError("--raw runs mlx-lm in one process: not with --distributed")
    given = {f: getattr(args, f) for f in SETTINGS if getattr(args, f) is not None}
    if given:  # flags over the environment and config, as for every command
        settings = load_settings(given, config_file=args.config)
    console, status = Console(), Console(stderr=True)
    points = [
        Point(p, b, args.max_tokens)
        for p in sorted(set(args.prompt_tokens))
        for b in sorted(set(args.batch))
    ]
    widest = max(args.batch)
    _warn_reference_blas(status)
    # Every point's requests fit one batch; no stop token ends one early.
    config = replace(
        EngineConfig.from_settings(settings),
        max_batch_size=max(widest, settings.max_batch_size),
        max_queue=max(widest, settings.max_queue),
        default_stop_token_ids=[],
    )
    if args.distributed:  # ranks > 0 follow rank 0, which measures
        from mlx_gen.engine.distributed.follower import follow_unless_leader

        code = follow_unless_leader(settings, config)
        if code is not None:
            return code
    plain = None  # with --speculative: the same engine without, for the speed-up
    with status.status(f"Loading {settings.model}") as spinner:
        if args.distributed:
            from mlx_gen.engine.distributed.engine import load_leader

            loaded, engine = load_leader(settings, config)
        else:
            loaded = load_model(settings.model, settings)
            engine = LLMEngine(loaded.model, loaded.tokenizer, config)
            if config.speculative is not None:  # the speed-up's baseline
                off = replace(config, speculative=None)
                plain = LLMEngine(loaded.model, loaded.tokenizer, off)
        try:
            engine.start()
            if plain is not None:
                plain.start()
            plan = engine.plan
            results = run_points(
                loaded,
                engine,
                points,
                args.raw,
                config.prefill_step_size,
                args.seed,
                progress=lambda text: spinner.update(f"Measuring: {text}"),
                temperature=args.temperature,
                plain=plain,
            )
        except EngineError as exc:  # too large for memory, or a point too long
            raise CommandError(str(exc)) from None
        finally:
            engine.shutdown()
            if plain is not None:
                plain.shutdown()
    model = {
        "name": loaded.name,
        "quantization": loaded.entry.quantization,
        "model_type": loaded.config.get("model_type"),
        "weights_bytes": plan.weights_bytes if plan else None,
    }
    used = {
        "prompt_tokens": sorted(set(args.prompt_tokens)),
        "batch": sorted(set(args.batch)),
        "max_tokens": args.max_tokens,
        "raw": args.raw,
        "seed": args.seed,
        "temperature": args.temperature,
        "speculative": config.speculative,
        "num_speculative_tokens": config.num_speculative_tokens,
        "max_batch_size": config.max_batch_size,
        "prefill_step_size": config.prefill_step_size,
        "prefix_cache_bytes": config.prefix_cache_bytes,
    }
    report = report_json(model, used, results, hardware(), loaded.config)
    if args.distributed:
        from mlx_gen.bench.distributed_report import add_ranks

        add_ranks(report, engine, results)
    # The file first: minutes of measuring survive a closed pipe on stdout.
    if args.output is not None:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        status.print(f"wrote {args.output}", style="dim")
    print_report(console, report)
    if args.distributed:
        from mlx_gen.bench.distributed_report import print_ranks

        print_ranks(console, report)
    return 0


def _warn_reference_blas(console: Console) -> None:
    """`bench` does not re-execute itself with OpenBLAS: say what that costs."""
    from mlx_gen.blas import blas_in_use, find_openblas

    openblas = find_openblas()
    if openblas is not None and "reference BLAS" in blas_in_use():
        console.print(
            "[yellow]note:[/] MLX uses the reference BLAS here: float32 matmuls run"
            f" about 18x slower than with LD_PRELOAD={openblas}",
            soft_wrap=True,
        )
