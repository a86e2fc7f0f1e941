"""The app's shared state: what it serves, its limits, and its lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from mlx_gen.server.metrics import Metrics
from mlx_gen.server.middleware.auth import KeyRing
from mlx_gen.server.rate_limits import RateLimiter
from mlx_gen.server.response_store import ResponseStore
from mlx_gen.server.served import ServedModel
from mlx_gen.settings import Settings


@dataclass
class AppState:
    settings: Settings
    served: ServedModel
    metrics: Metrics
    limiter: RateLimiter
    keys: KeyRing
    responses: ResponseStore
    warmed: bool = False  # one generation went through the engine
    draining: bool = False  # shutting down: no new work
    warmup_error: str | None = None


def state_of(request: Request) -> AppState:
    return request.app.state.mlx_gen
