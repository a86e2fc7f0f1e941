"""`mlx-gen serve`: the OpenAI-compatible server (mlx_gen.server)."""

from __future__ import annotations

import argparse

from mlx_gen.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.distributed:  # ranks > 0 follow rank 0, which serves
        from mlx_gen.engine.config import EngineConfig
        from mlx_gen.engine.distributed.follower import follow_unless_leader

        code = follow_unless_leader(settings, EngineConfig.from_settings(settings))
        if code is not None:
            return code
    from mlx_gen.server.run import serve

    return int(serve(settings) or 0)
