"""The one test-only seam: a hook that sees each engine request before it is queued.

The app factory installs it when given one, around the engine; the routes
never know, they only talk to an engine. Tests script a model's output with
it; `mlx-gen serve` installs the fault hook (server/faults.py) when
MLX_GEN_TEST_FAULT_USER is set at start. The server itself sets none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from mlx_gen.engine.types import GenerationEvent, GenerationRequest
from mlx_gen.server.served import Engine

RequestHook = Callable[[GenerationRequest], None]


class HookedEngine:
    """`engine`, with `hook` run on every request it is handed."""

    def __init__(self, engine: Engine, hook: RequestHook) -> None:
        self.engine = engine
        self.hook = hook

    def submit(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        self.hook(request)
        return self.engine.submit(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
