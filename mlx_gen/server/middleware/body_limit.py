"""The body-size limit: a request larger than `max_bytes` is refused with a 413."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlx_gen.server.errors import APIError


def body_too_large(limit: int) -> APIError:
    # Connection: close, or uvicorn would go on reading (and dropping) the
    # rest of the body for as long as the client sends it.
    return APIError(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        code="request_too_large",
        headers={"Connection": "close"},
    )


class BodyLimitMiddleware:
    """Refuses a body over `max_bytes` without reading it whole.

    A declared Content-Length over the limit is refused before any byte is
    read; a chunked body is counted as it arrives and refused at the first
    chunk that crosses the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            too_large = body_too_large(self.max_bytes).response(scope["path"])
            await too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the handler's body read: the app's
                    # exception handlers turn it into the 413.
                    raise body_too_large(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
