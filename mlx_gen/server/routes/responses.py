"""/v1/responses: created through the chat path (the request stands for a
chat request, schemas/responses.py), kept in the app's response store."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.server.answers.chat import ChatAnswer
from mlx_gen.server.answers.responses import ResponsesAnswer
from mlx_gen.server.context import info_of
from mlx_gen.server.errors import APIError
from mlx_gen.server.generate import read_generation
from mlx_gen.server.response_store import StoredResponse
from mlx_gen.server.routes.chat_completions import answer_chat
from mlx_gen.server.schemas.responses import ResponsesRequest
from mlx_gen.server.state import state_of


def not_found(response_id: str, param: str | None = None) -> APIError:
    return APIError(
        404,
        f"No response found with id '{response_id}'.",
        param=param,
        code="response_not_found",
    )


def stored(
    request: Request, response_id: str, param: str | None = None
) -> StoredResponse:
    """The caller's own stored response (another key's is not found)."""
    state = state_of(request)
    entry = state.responses.get(info_of(request.scope).key_id, response_id)
    if entry is None:
        raise not_found(response_id, param)
    return entry


async def create_response(request: Request) -> Response:
    state, body = await read_generation(request, ResponsesRequest)
    served = state.served
    history: list[dict[str, Any]] = []
    if body.previous_response_id is not None:
        history = stored(
            request, body.previous_response_id, "previous_response_id"
        ).history
    chat = body.to_chat(history)
    key_id = info_of(request.scope).key_id

    def keep(response: dict[str, Any], message: dict[str, Any]) -> None:
        turn = history + body.input_messages() + [message]
        entry = StoredResponse(response, body.input_items(), turn)
        state.responses.put(key_id, entry)

    def make_answer(request_id: str, n: int, _prompt_tokens: int) -> ChatAnswer:
        return ResponsesAnswer.of(
            served,
            request_id,
            n,
            body=body,
            keep=keep if body.store is not False else None,
            top_logprobs=None,
            stream=bool(body.stream),
            one_call=body.parallel_tool_calls is False,
        )

    return await answer_chat(request, state, chat, "resp", make_answer)


async def get_response(request: Request) -> Response:
    return JSONResponse(stored(request, request.path_params["response_id"]).response)


async def delete_response(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    state = state_of(request)
    if not state.responses.delete(info_of(request.scope).key_id, response_id):
        raise not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(request: Request) -> Response:
    response_id = request.path_params["response_id"]
    entry = stored(request, response_id)
    items = [
        {"id": f"in_{response_id.removeprefix('resp-')}_{i}"} | item
        for i, item in enumerate(entry.input_items)
    ]
    return JSONResponse(
        {
            "object": "list",
            "data": items,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None,
            "has_more": False,
        }
    )
