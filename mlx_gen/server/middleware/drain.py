"""The drain gate: while shutting down, only the operational paths are answered."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mlx_gen.server.readiness import draining_error
from mlx_gen.server.state import AppState

OPERATIONAL_PATHS = ("/health", "/ready", "/metrics")


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
            await draining_error().response(scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
