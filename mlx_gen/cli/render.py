"""`mlx-gen render FILE`: the exact prompt text a conversation gives the model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlx_gen.errors import CommandError
from mlx_gen.models.loading import load_tokenizer
from mlx_gen.models.registry import load_registry
from mlx_gen.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        help='JSON: a list of messages, or {"messages", "tools", "reasoning_effort"}',
    )
    parser.add_argument("--reasoning-effort", choices=["low", "medium", "high"])


def run(args: argparse.Namespace, settings: Settings) -> int:
    from mlx_gen.chat import render_conversation_file

    entry = load_registry(settings.registry_file).get(settings.model)
    effort = args.reasoning_effort or (entry.reasoning_effort if entry else "medium")
    tokenizer = load_tokenizer(settings.model, settings)
    try:
        text = render_conversation_file(args.file, tokenizer, default_effort=effort)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot render {args.file}: {exc}") from None
    sys.stdout.write(text + "\n")
    return 0
