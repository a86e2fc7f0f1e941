"""The command line's flags for settings, and the argument types commands share.

A setting's flag that is not given stays None and leaves the environment,
`.env` and the config file in charge.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlx_gen.settings import Settings

# Settings whose flag is repeatable, under a singular name.
LIST_FLAGS = {
    "api_keys": "--api-key",
    "cors_origins": "--cors-origin",
    "auth_exempt_paths": "--auth-exempt-path",
}
HELP = {
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
    "prefill_step_size": "prompt tokens prefilled per engine step (the longest chunk)",
    "cors_origins": "a browser origin allowed to call the API (repeatable)",
    "auth_exempt_paths": "a path served without an API key (repeatable)",
    "max_body_bytes": "largest request body accepted (413 beyond)",
    "max_messages": "most messages in one chat request",
    "max_tokens_default": "max tokens when a request names none",
    "drain_timeout": "seconds streams in flight may finish after SIGTERM",
    "sse_keepalive_seconds": "seconds between keep-alive comments on a quiet stream",
    "log_level": "debug, info, warning or error",
    "max_context": "longest prompt + answer, in tokens",
    "speculative": "speculative decoding: ngram (prompt lookup), draft:PATH"
    " (a draft model with the same tokenizer) or eagle3:PATH (an EAGLE-3 head);"
    " PATH: a directory or a hub repository",
    "num_speculative_tokens": "tokens proposed per sequence and step",
    "speculative_max_batch": "largest batch that still speculates",
    "use_openblas": "preload Debian's OpenBLAS on Linux CPUs",
    "distributed": "tensor parallel over the ranks mlx.launch starts; rank 0 serves",
    "distributed_step_timeout": "seconds a step may wait for the other ranks",
}


def add_setting_flag(parser: argparse.ArgumentParser, field: str) -> None:
    """A flag for one setting; pydantic validates and converts what it gets."""
    env = f"MLX_GEN_{field.upper()}"
    help_text = f"{HELP.get(field, field.replace('_', ' '))} [{env}]"
    annotation = Settings.model_fields[field].annotation
    kwargs: dict[str, Any] = {"dest": field, "default": None, "help": help_text}
    if field in LIST_FLAGS:
        parser.add_argument(LIST_FLAGS[field], action="append", **kwargs)
    elif annotation is bool:
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            action=argparse.BooleanOptionalAction,
            **kwargs,
        )
    else:
        parser.add_argument(f"--{field.replace('_', '-')}", metavar="VALUE", **kwargs)


def number_list(kind: type) -> Any:
    """An argparse type: comma-separated positive numbers of `kind`."""

    def parse(text: str) -> list:
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a list of numbers: {text!r}"
            ) from None
        if not values or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"give positive numbers: {text!r}")
        return values

    return parse


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a number of at least 1: {text!r}")
    return value
