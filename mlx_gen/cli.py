"""The `mlx-gen` command: parse, build the settings, dispatch.

Each sub-command lives in `mlx_gen/commands/<name>.py` as
`run(args, settings) -> int`; this module only parses and dispatches. A
setting's flag that is not given stays None and leaves the environment, `.env`
and the config file in charge. To add a command: a `Command` in `COMMANDS`, an
`add_<name>_arguments` for its own flags if it has any, and its module.
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
from mlx_gen.commands.bench import add_arguments as add_bench_arguments
from mlx_gen.commands.chat import add_arguments as add_chat_arguments
from mlx_gen.commands.convert import add_arguments as add_convert_arguments
from mlx_gen.errors import CommandError, ModelLoadError, RegistryError, SettingsError
from mlx_gen.settings import Settings, load_settings

# Settings whose flag is repeatable, under a singular name.
_LIST_FLAGS = {
    "api_keys": "--api-key",
    "cors_origins": "--cors-origin",
    "auth_exempt_paths": "--auth-exempt-path",
}
_HELP = {
    "model": "registered model name or model directory",
    "registry_file": "TOML file of extra or overriding model entries",
    "cache_dir": "where built synthetic models are kept",
    "host": "address to listen on",
    "port": "port to listen on (0: any free port)",
    "allow_public_without_auth": "allow a non-loopback host without API keys",
    "api_keys": "an accepted API key (repeatable)",
    "api_key_file": "file of accepted API keys, one per line",
    "rate_limit_rpm": "requests per minute per key",
    "rate_limit_tpm": "tokens per minute per key",
    "max_batch_size": "sequences decoded together",
    "max_queue": "requests waiting beyond the batch before 503",
    "memory_budget_gb": "memory the engine may plan for (default: 16 GB or the"
    " device's working set, whichever is smaller)",
    "memory_headroom_gb": "memory left out of the plan for everything else",
    "prefix_cache_gb": "memory for reusable prompt prefixes (0: off)",
    "prefill_step_size": "longest prompt chunk prefilled in one step",
    "cors_origins": "a browser origin allowed to call the API (repeatable)",
    "auth_exempt_paths": "a path served without an API key (repeatable)",
    "max_body_bytes": "largest request body accepted (413 beyond)",
    "max_messages": "most messages in one chat request",
    "max_tokens_default": "max tokens when a request names none",
    "drain_timeout": "seconds streams in flight may finish after SIGTERM",
    "sse_keepalive_seconds": "seconds between keep-alive comments on a quiet stream",
    "log_level": "debug, info, warning or error",
    "max_context": "longest prompt + answer, in tokens",
    "use_openblas": "preload Debian's OpenBLAS on Linux CPUs",
    "distributed": "tensor parallel over the ranks mlx.launch starts; rank 0 serves",
    "distributed_step_timeout": "seconds a step may wait for the other ranks",
}
_MODEL_SETTINGS = ("model", "registry_file", "cache_dir", "use_openblas")


@dataclass(frozen=True)
class Command:
    help: str
    settings: tuple[str, ...]
    uses_mlx: bool  # worth re-executing with OpenBLAS
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="text to continue or answer")
    parser.add_argument("--max-tokens", type=int, default=256, metavar="N")
    parser.add_argument("--temperature", type=float, help="default: the model's")
    parser.add_argument("--top-p", type=float, help="default: the model's")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable output")
    parser.add_argument(
        "--raw", action="store_true", help="send the prompt as is, no chat format"
    )


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        type=Path,
        help='JSON: a list of messages, or {"messages", "tools", "reasoning_effort"}',
    )
    parser.add_argument("--reasoning-effort", choices=["low", "medium", "high"])


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
            _add_setting_flag(sub, field)
    return parser


def _add_setting_flag(parser: argparse.ArgumentParser, field: str) -> None:
    """A flag for one setting; pydantic validates and converts what it gets."""
    env = f"MLX_GEN_{field.upper()}"
    help_text = f"{_HELP.get(field, field.replace('_', ' '))} [{env}]"
    annotation = Settings.model_fields[field].annotation
    kwargs: dict[str, Any] = {"dest": field, "default": None, "help": help_text}
    if field in _LIST_FLAGS:
        parser.add_argument(_LIST_FLAGS[field], action="append", **kwargs)
    elif annotation is bool:
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            action=argparse.BooleanOptionalAction,
            **kwargs,
        )
    else:
        parser.add_argument(f"--{field.replace('_', '-')}", metavar="VALUE", **kwargs)


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
        module = importlib.import_module(f"mlx_gen.commands.{args.command}")
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
