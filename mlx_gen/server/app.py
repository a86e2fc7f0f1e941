"""The Starlette app: routes, middleware stack and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlx_gen.server.access_log import AccessLogMiddleware
from mlx_gen.server.auth import AuthMiddleware, KeyRing
from mlx_gen.server.chat_completions import chat_completions
from mlx_gen.server.completions import completions
from mlx_gen.server.errors import APIError, api_error_handler, http_error_handler
from mlx_gen.server.health import DrainGate, health, metrics, ready, warm_up
from mlx_gen.server.limits import BodyLimitMiddleware, RateLimiter
from mlx_gen.server.metrics import Metrics
from mlx_gen.server.models import get_model, list_models
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import AppState
from mlx_gen.server.tokenize import detokenize, tokenize
from mlx_gen.settings import Settings

ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/tokenize", tokenize, methods=["POST"]),
    Route("/detokenize", detokenize, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


class OpenAICORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with its refused preflights in the OpenAI error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        error = APIError(400, bytes(response.body).decode(), code="cors_rejected")
        headers = {k: v for k, v in response.headers.items() if k.startswith("access")}
        return JSONResponse(error.body(), status_code=400, headers=headers)


def create_app(settings: Settings, served: ServedModel) -> Starlette:
    state = AppState(
        settings=settings,
        served=served,
        metrics=Metrics(),
        limiter=RateLimiter(settings.rate_limit_rpm, settings.rate_limit_tpm),
        keys=KeyRing(settings.all_api_keys()),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warming = asyncio.create_task(warm_up(state))
        try:
            yield
        finally:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming

    # Outermost first: every response, even a 401 or 413, gets a request id
    # and a log line; CORS answers preflights before auth sees them.
    middleware = [Middleware(AccessLogMiddleware, metrics=state.metrics)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                OpenAICORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "x-api-key"],
                expose_headers=["x-request-id", "retry-after"],
            )
        )
    middleware += [
        Middleware(DrainGate, state=state),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(
            AuthMiddleware, keys=state.keys, exempt_paths=settings.auth_exempt_paths
        ),
    ]
    app = Starlette(
        routes=ROUTES,
        middleware=middleware,
        exception_handlers={
            APIError: api_error_handler,
            HTTPException: http_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.mlx_gen = state
    return app
