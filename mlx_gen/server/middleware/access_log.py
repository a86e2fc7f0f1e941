"""The outermost middleware: request id, last-resort 500, one JSON log line.

Every response gets an `x-request-id` (a sane client-provided one is echoed),
nothing escapes as a traceback to the client, and each request ends with one
structured line on the `mlx_gen.access` logger plus its metrics.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlx_gen.server.context import RequestInfo, attach
from mlx_gen.server.errors import internal_error
from mlx_gen.server.metrics import Metrics

access_logger = logging.getLogger("mlx_gen.access")
logger = logging.getLogger("mlx_gen.server")

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_from(headers: Headers) -> str:
    given = headers.get("x-request-id", "")
    if _SANE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo(request_id=request_id_from(Headers(scope=scope)))
        attach(scope, info)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                info.status = message["status"]
                MutableHeaders(scope=message).append("x-request-id", info.request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("request %s failed", info.request_id)
            if started:
                info.status = 500
            else:
                failed = internal_error().response(scope["path"])
                await failed(scope, receive, send_with_id)
        finally:
            # The route template, not the path: a bounded set of metric labels.
            info.endpoint = getattr(scope.get("route"), "path", "unmatched")
            duration = time.perf_counter() - info.started
            self.metrics.observe_request(info, duration)
            access_logger.info(json.dumps(_log_record(scope, info, duration)))


def _log_record(scope: Scope, info: RequestInfo, duration: float) -> dict:
    ttft_ms = None if info.ttft is None else round(info.ttft * 1000, 2)
    return {
        "request_id": info.request_id,
        "key_id": info.key_id,
        "method": scope["method"],
        "path": scope["path"],
        "model": info.model,
        "status": info.status,
        "prompt_tokens": info.prompt_tokens,
        "completion_tokens": info.completion_tokens,
        "reasoning_tokens": info.reasoning_tokens,
        "cached_tokens": info.cached_tokens,
        "ttft_ms": ttft_ms,
        "duration_ms": round(duration * 1000, 2),
    }
