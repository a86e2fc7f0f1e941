"""The `mlx-gen` command: parse, build the settings, dispatch.

Each sub-command lives in `mlx_gen/cli/<name>.py` as `run(args, settings) ->
int`, with an `add_arguments(parser)` for its own flags if it has any; this
module only parses and dispatches. The settings' flags come from flags.py. To
add a command: a `Command` in `COMMANDS` and its module.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mlx_gen.blas import maybe_reexec_with_openblas
from mlx_gen.cli.bench import add_arguments as add_bench_arguments
from mlx_gen.cli.chat import add_arguments as add_chat_arguments
from mlx_gen.cli.convert import add_arguments as add_convert_arguments
from mlx_gen.cli.eval import add_arguments as add_eval_arguments
from mlx_gen.cli.flags import add_setting_flag
from mlx_gen.cli.generate import add_arguments as add_generate_arguments
from mlx_gen.cli.render import add_arguments as add_render_arguments
from mlx_gen.errors import CommandError, ModelLoadError, RegistryError, SettingsError
from mlx_gen.settings import Settings, load_settings

_MODEL_SETTINGS = ("model", "registry_file", "cache_dir", "use_openblas")


@dataclass(frozen=True)
class Command:
    help: str
    settings: tuple[str, ...]
    uses_mlx: bool  # worth re-executing with OpenBLAS
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: dict[str, Command] = {
    "generate": Command(
        "generate text from a prompt", _MODEL_SETTINGS, True, add_generate_arguments
    ),
    "chat": Command(
        "chat with a model in the terminal (local, or a server's --url)",
        (*_MODEL_SETTINGS, "max_context"),
        True,
        add_chat_arguments,
    ),
    "models": Command(
        "list the registered models", ("model", "registry_file", "cache_dir"), False
    ),
    "serve": Command(
        "serve the OpenAI-compatible API", tuple(Settings.model_fields), True
    ),
    "render": Command(
        "print the prompt a conversation renders to",
        ("model", "registry_file", "cache_dir"),
        False,
        add_render_arguments,
    ),
    "env": Command(
        "show platform, MLX, device and BLAS", ("cache_dir", "use_openblas"), True
    ),
    "convert": Command(
        "convert a Hugging Face checkpoint into a quantized MLX model",
        ("registry_file", "cache_dir", "use_openblas"),
        True,
        add_convert_arguments,
    ),
    "eval": Command(
        "measure what a conversion changed: KL divergence against the source",
        ("registry_file", "cache_dir", "use_openblas"),
        True,
        add_eval_arguments,
    ),
    "bench": Command(
        "measure the engine, load an OpenAI-compatible server, compare runs",
        (),
        True,  # `bench engine` runs MLX: worth OpenBLAS on Linux
        add_bench_arguments,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlx-gen", description="Local text generation on MLX."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        if command.add_arguments is not None:
            command.add_arguments(sub)
        sub.add_argument("--config", type=Path, metavar="FILE", help="TOML config")
        for field in command.settings:
            add_setting_flag(sub, field)
    return parser


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags; a flag left out is not an override."""
    fields = COMMANDS[args.command].settings
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}


def main(argv: list[str] | None = None) -> int:
    """Run one command. Only a real process entry (argv None) may re-execute."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    errors = Console(stderr=True)
    try:
        settings = load_settings(settings_overrides(args), config_file=args.config)
        if argv is None and COMMANDS[args.command].uses_mlx:
            maybe_reexec_with_openblas(settings.use_openblas)
        module = importlib.import_module(f"mlx_gen.cli.{args.command}")
        return int(module.run(args, settings))
    except (SettingsError, RegistryError) as exc:
        return _fail(errors, str(exc), 2)
    except (ModelLoadError, CommandError) as exc:
        return _fail(errors, str(exc), 1)
    except KeyboardInterrupt:
        return _fail(errors, "interrupted", 130)


def _fail(console: Console, message: str, code: int) -> int:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return code
