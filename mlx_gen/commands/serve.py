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
    if settings.distributed:  # ranks > 0 follow rank 0, which serves
        from mlx_gen.engine.config import EngineConfig
        from mlx_gen.engine.distributed import follow_unless_leader

        code = follow_unless_leader(settings, EngineConfig.from_settings(settings))
        if code is not None:
            return code
    from mlx_gen.server.run import serve

    return int(serve(settings) or 0)
