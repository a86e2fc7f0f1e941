"""GET /health, /ready and /metrics: liveness, readiness and Prometheus text."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.server.errors import unavailable
from mlx_gen.server.readiness import not_ready_reason
from mlx_gen.server.state import state_of


async def health(request: Request) -> Response:
    """Liveness: the process answers and its engine thread is alive."""
    stats = state_of(request).served.engine.stats()
    if not stats.alive:
        error = stats.error or "unknown error"
        raise unavailable(f"The engine has stopped: {error}", code="engine_dead")
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    reason = not_ready_reason(state_of(request))
    if reason is not None:
        raise reason
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    state = state_of(request)
    state.metrics.update_engine(state.served.engine.stats())
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
