"""`mlx-gen serve`: the OpenAI-compatible server (mlx_gen.server)."""

from __future__ import annotations

import argparse
import importlib.util

from rich.console import Console

from mlx_gen.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    if importlib.util.find_spec("mlx_gen.server.run") is None:
        Console(stderr=True).print("[bold red]error:[/] the server is not built yet")
        return 2
    from mlx_gen.server.run import serve

    return int(serve(settings) or 0)
