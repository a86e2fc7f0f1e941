"""Errors in the OpenAI shape: `{"error": {"message", "type", "param", "code"}}`,
or in Anthropic's, `{"type": "error", "error": {"type", "message"}}`, on
Anthropic's route family (/v1/messages...).

Every non-2xx answer of the server goes through here, including the router's
own 404/405, the middlewares' refusals and validation failures, so clients
(the official SDKs included) can always parse an error the same way. The
shape is chosen by the request's path in `APIError.response`, the one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

logger = logging.getLogger("mlx_gen.server")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}

ANTHROPIC_PATH = "/v1/messages"
# Anthropic's error type of each status; other 4xx are invalid requests,
# other 5xx API errors.
ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_path(path: str) -> bool:
    """Whether `path` is Anthropic's route family: its errors take that shape."""
    return path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/")


class APIError(Exception):
    """An error answer; raise it anywhere below a route handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def anthropic_body(self) -> dict[str, Any]:
        fallback = "api_error" if self.status >= 500 else "invalid_request_error"
        kind = ANTHROPIC_TYPES.get(self.status, fallback)
        return {"type": "error", "error": {"type": kind, "message": self.message}}

    def response(self, path: str) -> Response:
        """The answer to a request for `path`, in the shape its API uses."""
        body = self.anthropic_body() if anthropic_path(path) else self.body()
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def error_body(
    message: str,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(
    message: str, param: str | None = None, code: str | None = None
) -> APIError:
    return APIError(400, message, param=param, code=code)


def unsupported(param: str, detail: str = "") -> APIError:
    """A parameter or value we do not implement: refused, never ignored."""
    if detail:
        message = f"Unsupported value for '{param}': {detail}."
        return APIError(400, message, param=param, code="unsupported_value")
    message = f"Unsupported parameter: '{param}' is not supported by this server."
    return APIError(400, message, param=param, code="unsupported_parameter")


def model_not_found(name: str) -> APIError:
    return APIError(
        404,
        f"The model '{name}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def unavailable(message: str, code: str, retry_after: float | None = None) -> APIError:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return APIError(503, message, type="server_error", code=code, headers=headers)


def _is_union_tag(part: str) -> bool:
    """pydantic names the member of a union it tried ('str', 'list[int]', 'Model')."""
    return (
        part in {"str", "int", "float", "bool"}
        or part[:1].isupper()
        or any(c in part for c in "[]-")
    )


def loc_to_param(loc: tuple[int | str, ...]) -> str:
    """('messages', 0, 'content') -> 'messages[0].content'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_union_tag(part):
            out += f".{part}" if out else part
    return out


def from_validation_error(exc: ValidationError) -> APIError:
    """The first problem of a pydantic error, named by its parameter path.

    When a union field fails, the member whose error reached deepest into the
    value says best what was wrong with it.
    """
    errors = exc.errors(include_url=False)
    field = errors[0]["loc"][:1]
    err = max(
        (e for e in errors if e["loc"][:1] == field),
        key=lambda e: len(loc_to_param(tuple(e["loc"]))),
    )
    param = loc_to_param(tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        return unsupported(param)
    if err["type"] == "unsupported_parameter":
        return unsupported(param, err["msg"])
    if err["type"] == "missing":
        return bad_request(f"Missing required parameter: '{param}'.", param)
    msg = err["msg"].removeprefix("Value error, ")
    where = f"'{param}'" if param else "the request body"
    return bad_request(f"Invalid value for {where}: {msg}", param or None)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response(request.scope["path"])


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """The router's 404 / 405 (and any HTTPException) in the OpenAI shape."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = f"{exc.detail}: {request.method} {request.scope['path']}"
    error = APIError(exc.status_code, message, code=code, headers=exc.headers)
    return error.response(request.scope["path"])


def internal_error() -> APIError:
    return APIError(
        500,
        "The server had an error while processing your request.",
        type="server_error",
        code="internal_error",
    )
