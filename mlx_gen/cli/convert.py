"""`mlx-gen convert SRC OUT`: a Hugging Face checkpoint to an MLX model directory.

Shows progress while it works, then what came out (size, bits per weight, the
memory serving it takes) and a few tokens generated from it, the proof that it
loads. With `--check`, also what the recipe cost: the result's KL divergence
from the source, top-1 agreement and perplexities on a bundled text (the rows
of `mlx-gen eval kl`). Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mlx_gen.cli.eval import add_kl_rows
from mlx_gen.errors import CommandError
from mlx_gen.settings import Settings
from mlx_gen.units import format_bytes

if TYPE_CHECKING:
    from mlx_gen.engine.memory import ModelShape
    from mlx_gen.engine.types import MemoryPlan
    from mlx_gen.models.quality import KLReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="hub id (owner/name) or checkpoint directory")
    parser.add_argument("out", type=Path, help="MLX model directory to write")
    parser.add_argument("--bits", type=int, choices=[4, 8], help="affine bits (4)")
    parser.add_argument(
        "--group-size", type=int, choices=[32, 64, 128], help="affine group (64)"
    )
    parser.add_argument("--mode", choices=["affine", "mxfp4"], help="(affine)")
    parser.add_argument(
        "--recipe",
        choices=["mxfp4-q8"],
        help="mxfp4-q8: MXFP4 experts, 8-bit affine elsewhere (GPT-OSS)",
    )
    parser.add_argument(
        "--dtype",
        choices=["bfloat16", "float16", "float32"],
        help="type of the unquantized parameters (default: the checkpoint's)",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT")
    parser.add_argument(
        "--verify-tokens",
        type=int,
        default=8,
        metavar="N",
        help="tokens to generate from the result as proof it works (0: skip)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="measure what the recipe cost: KL divergence from the source, top-1"
        " agreement, perplexity (options: mlx-gen eval kl)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mlx_gen.errors import ConvertError, QualityError
    from mlx_gen.models.conversion import convert
    from mlx_gen.models.quant_recipes import make_recipe

    out, err = Console(), Console(stderr=True)
    try:
        recipe = make_recipe(args.bits, args.group_size, args.mode, args.recipe)
        with _progress(err) as progress:
            result = convert(
                args.src,
                args.out,
                recipe,
                dtype=args.dtype,
                force=args.force,
                on_stage=progress.stage,
                on_bytes=progress.bytes,
            )
            proof = None
            if args.verify_tokens > 0:
                progress.stage("Verifying")
                proof = verify(result.out_dir, settings, args.verify_tokens)
            cost = None
            if args.check:
                progress.stage("Checking against the source")
                cost = check(result.source_dir, result.out_dir, settings)
    except (ConvertError, QualityError) as exc:
        raise CommandError(str(exc)) from None
    _report(out, result, proof, cost)
    return 0


@dataclass
class Verification:
    token_ids: list[int]
    text: str
    seconds: float
    shape: ModelShape  # weights and KV bytes as served on this machine
    plan: MemoryPlan | None  # the engine's plan; None when it does not fit
    plan_error: str | None = None


def verify(
    model_dir: Path, settings: Settings, max_tokens: int = 8, prompt: str = "Hello"
) -> Verification:
    """Load `model_dir` as the server does, plan its memory as the engine does,
    and generate `max_tokens` greedily."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    from mlx_gen.engine.config import EngineConfig
    from mlx_gen.engine.memory import detect_device, measure_model, plan_memory
    from mlx_gen.engine.types import ModelTooLarge
    from mlx_gen.models.loading import load_model

    loaded = load_model(str(model_dir), settings)
    shape = measure_model(loaded.model, loaded.tokenizer)
    config = EngineConfig.from_settings(settings)
    try:
        plan, plan_error = plan_memory(shape, config, detect_device()).plan, None
    except ModelTooLarge as exc:
        plan, plan_error = None, str(exc)
    start = time.perf_counter()
    prompt_ids = mx.array(loaded.tokenizer.encode(prompt))
    steps = generate_step(prompt_ids, loaded.model, max_tokens=max_tokens)
    token_ids = [int(token) for token, _ in steps] if max_tokens else []
    seconds = time.perf_counter() - start
    text = loaded.tokenizer.decode(token_ids)
    return Verification(token_ids, text, seconds, shape, plan, plan_error)


def check(source: Path, model_dir: Path, settings: Settings) -> KLReport:
    """The converted model against its source on the bundled text, one model
    in memory at a time (mlx_gen.models.quality), with `eval kl`'s defaults."""
    import mlx.core as mx

    from mlx_gen.models.conversion import load_source
    from mlx_gen.models.loading import cast_for_backend, load_model, load_tokenizer
    from mlx_gen.models.quality import default_text, evaluation_tokens, measure_kl

    def source_model() -> Any:
        # Loaded as convert reads it (any checkpoint layout), run as served here.
        model, _, _ = load_source(source)
        cast_for_backend(model)
        mx.eval(model.parameters())
        return model

    _, source_tokenizer, _ = load_source(source)  # lazy: no weight is read
    converted_tokenizer = load_tokenizer(str(model_dir), settings)
    tokens = evaluation_tokens(source_tokenizer, converted_tokenizer, default_text())
    return measure_kl(
        source_model, lambda: load_model(str(model_dir), settings).model, tokens
    )


class _StageProgress:
    """One line per stage; the writing stage has a byte bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None
        self._total = 1

    def stage(self, name: str) -> None:
        self._finish()
        self._task = self._progress.add_task(name, total=None, amount="")
        self._total = 1

    def bytes(self, done: int, total: int) -> None:
        self._total = total
        amount = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
        self._progress.update(self._task, completed=done, total=total, amount=amount)

    def _finish(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=self._total, completed=self._total)

    def __enter__(self) -> _StageProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._finish()
        else:  # only the error line stays: it says what went wrong
            self._progress.live.transient = True
        self._progress.__exit__(*exc)


def _progress(console: Console) -> _StageProgress:
    return _StageProgress(
        Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,  # no frames in logs and pipes
        )
    )


def _report(
    console: Console,
    result: Any,
    proof: Verification | None,
    cost: KLReport | None,
) -> None:
    table = Table(title=f"Converted → {result.out_dir}", show_header=False)
    table.add_row("recipe", result.recipe.name)
    table.add_row("layers", ", ".join(f"{n}× {q}" for q, n in result.quantized.items()))
    if result.unquantized:
        table.add_row("[yellow]left unquantized", ", ".join(result.unquantized))
    table.add_row("unquantized dtype", result.dtype or "as in the checkpoint")
    table.add_row("bits per weight", f"{result.bits_per_weight:.3f}")
    table.add_row("size on disk", format_bytes(result.disk_bytes))
    if result.source_weights_bytes:
        share = result.weights_bytes / result.source_weights_bytes
        table.add_row(
            "weights",
            f"{format_bytes(result.weights_bytes)}: {share:.0%} of the source's"
            f" {format_bytes(result.source_weights_bytes)}",
        )
    if proof is not None:
        _memory_rows(table, proof)
        rate = len(proof.token_ids) / proof.seconds if proof.seconds else 0.0
        table.add_row(
            "generated", f"{proof.text!r} ({len(proof.token_ids)} tokens, {rate:.1f}/s)"
        )
    if cost is not None:
        add_kl_rows(table, cost)
    console.print(table)


def _memory_rows(table: Table, proof: Verification) -> None:
    """The engine's own plan (mlx_gen.engine.memory) for serving the result here."""
    import mlx.core as mx

    backend = "Metal" if mx.metal.is_available() else "CPU, float32"
    shape = proof.shape
    table.add_row(f"weights in memory ({backend})", format_bytes(shape.weights_bytes))
    kv = format_bytes(shape.kv_bytes_per_token)
    kv += f" per token ({shape.full_layers} layers)"
    if shape.fixed_bytes_per_sequence:
        kv += (
            f" + {format_bytes(shape.fixed_bytes_per_sequence)} per sequence (sliding)"
        )
    table.add_row("KV cache", kv)
    for tokens in (8192, 131072):
        need = shape.weights_bytes + shape.fixed_bytes_per_sequence
        need += tokens * shape.kv_bytes_per_token
        table.add_row(f"1 × {tokens:,} tokens", format_bytes(need))
    plan = proof.plan
    if plan is None:
        table.add_row("[red]engine plan", proof.plan_error)
        return
    table.add_row(
        "engine plan",
        f"budget {format_bytes(plan.budget_bytes)}: room for"
        f" {plan.kv_token_budget:,} KV tokens, longest sequence {plan.max_context:,}",
    )
