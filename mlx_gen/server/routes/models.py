"""GET /v1/models and GET /v1/models/{id}: the one served model."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.server.errors import model_not_found
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import state_of


def model_card(served: ServedModel) -> dict[str, Any]:
    return {
        "id": served.name,
        "object": "model",
        "created": served.created,
        "owned_by": "mlx-gen",
        "max_model_len": served.max_context,
    }


async def list_models(request: Request) -> Response:
    served = state_of(request).served
    return JSONResponse({"object": "list", "data": [model_card(served)]})


async def get_model(request: Request) -> Response:
    served = state_of(request).served
    name = request.path_params["model_id"]
    if name != served.name:
        raise model_not_found(name)
    return JSONResponse(model_card(served))
