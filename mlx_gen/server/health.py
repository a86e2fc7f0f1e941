"""Liveness, readiness, metrics, warm-up and the drain gate.

Readiness is true only once one tiny generation went through the engine, and
turns false for good when the server starts draining or the engine dies.
"""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlx_gen.engine.types import GenerationRequest, SamplingParams
from mlx_gen.server.errors import APIError, unavailable
from mlx_gen.server.state import AppState, state_of

logger = logging.getLogger("mlx_gen.server")

OPERATIONAL_PATHS = ("/health", "/ready", "/metrics")


def _draining() -> APIError:
    return unavailable(
        "The server is shutting down and takes no new requests.",
        code="shutting_down",
        retry_after=5,
    )


def not_ready_reason(state: AppState) -> APIError | None:
    stats = state.served.engine.stats()
    if not stats.alive:
        return unavailable(
            f"The generation engine has stopped: {stats.error or 'unknown error'}",
            code="engine_dead",
        )
    if state.draining:
        return _draining()
    if not state.warmed:
        detail = state.warmup_error or "the model is warming up"
        return unavailable(f"Not ready: {detail}.", code="not_ready", retry_after=1)
    return None


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


async def warm_up(state: AppState) -> None:
    """One tiny generation, so the first real request meets a warm engine."""
    served = state.served
    prompt = served.chat_format.render([{"role": "user", "content": "Hi"}])
    sampling = SamplingParams(
        max_tokens=1,
        temperature=0.0,
        stop_token_ids=list(served.chat_format.stop_token_ids),
    )
    request = GenerationRequest(prompt.token_ids, sampling, request_id="warm-up")
    try:
        async for event in served.engine.submit(request):
            if event.finish_reason == "error":
                raise RuntimeError(event.error or "engine error")
    except Exception as exc:
        state.warmup_error = f"warm-up failed: {exc}"
        logger.error("warm-up failed: %s", exc)
        return
    state.warmed = True
    logger.info("warm-up done: ready")


class DrainGate:
    """While draining, only the operational paths are answered."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.state.draining
            and scope["path"] not in OPERATIONAL_PATHS
        ):
            await _draining().response()(scope, receive, send)
            return
        await self.app(scope, receive, send)
