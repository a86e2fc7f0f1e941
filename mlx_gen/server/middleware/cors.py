"""Starlette's CORS, with its refused preflights in the OpenAI error shape."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from mlx_gen.server.errors import APIError


class OpenAICORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        error = APIError(400, bytes(response.body).decode(), code="cors_rejected")
        headers = {k: v for k, v in response.headers.items() if k.startswith("access")}
        return JSONResponse(error.body(), status_code=400, headers=headers)
