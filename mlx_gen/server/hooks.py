"""The one test-only seam: a hook that sees each engine request before it is queued.

The app factory installs it when given one, around the engine; the routes
never know, they only talk to an engine. Tests script a model's output with
it; `mlx-gen serve` installs the fault hook (server/faults.py) when
MLX_GEN_TEST_FAULT_USER is set at start. The server itself sets none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_gen.engine.types import GenerationRequest
from mlx_gen.server.served import Engine, EventStream

RequestHook = Callable[[GenerationRequest], None]


class HookedEngine:
    """`engine`, with `hook` run on every request it is handed."""

    def __init__(self, engine: Engine, hook: RequestHook) -> None:
        self.engine = engine
        self.hook = hook

    def submit(self, request: GenerationRequest) -> EventStream:
        return self.submit_many([request])

    def submit_many(self, requests: list[GenerationRequest]) -> EventStream:
        for request in requests:
            self.hook(request)
        return self.engine.submit_many(requests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
