"""The app factory: routes, middleware stack, lifespan and the test seam."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from mlx_gen.server.errors import APIError, api_error_handler, http_error_handler
from mlx_gen.server.hooks import HookedEngine, RequestHook
from mlx_gen.server.metrics import Metrics
from mlx_gen.server.middleware.access_log import AccessLogMiddleware
from mlx_gen.server.middleware.auth import AuthMiddleware, KeyRing
from mlx_gen.server.middleware.body_limit import BodyLimitMiddleware
from mlx_gen.server.middleware.cors import OpenAICORSMiddleware
from mlx_gen.server.middleware.drain import DrainGate
from mlx_gen.server.rate_limits import RateLimiter
from mlx_gen.server.readiness import warm_up
from mlx_gen.server.response_store import ResponseStore
from mlx_gen.server.routes.chat_completions import chat_completions
from mlx_gen.server.routes.completions import completions
from mlx_gen.server.routes.health import health, metrics, ready
from mlx_gen.server.routes.messages import count_tokens, create_message
from mlx_gen.server.routes.models import get_model, list_models
from mlx_gen.server.routes.responses import (
    create_response,
    delete_response,
    get_response,
    list_input_items,
)
from mlx_gen.server.routes.tokenize import detokenize, tokenize
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import AppState
from mlx_gen.settings import Settings

ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/tokenize", tokenize, methods=["POST"]),
    Route("/detokenize", detokenize, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


def create_app(
    settings: Settings, served: ServedModel, request_hook: RequestHook | None = None
) -> Starlette:
    """The app serving `served`. `request_hook` is for tests only (see
    server/hooks.py): it wraps the engine the routes submit to."""
    hooked = served
    if request_hook is not None:
        hooked = replace(served, engine=HookedEngine(served.engine, request_hook))
    state = AppState(
        settings=settings,
        served=hooked,
        metrics=Metrics(),
        limiter=RateLimiter(settings.rate_limit_rpm, settings.rate_limit_tpm),
        keys=KeyRing(settings.all_api_keys()),
        responses=ResponseStore(
            settings.responses_store_size, settings.responses_store_max_age
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warming = asyncio.create_task(warm_up(state, served.engine))
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
                allow_headers=[
                    "authorization",
                    "content-type",
                    "x-api-key",
                    "anthropic-version",
                    "anthropic-beta",
                ],
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
