"""POST /v1/responses: rendered, constrained, admitted and answered through
the chat path (the request stands for a chat request, schemas/responses.py)."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.answers.base import new_id
from mlx_gen.server.answers.deliver import respond
from mlx_gen.server.answers.responses import ResponsesAnswer
from mlx_gen.server.generate import admit, read_generation, submit
from mlx_gen.server.routes.chat_completions import render_chat
from mlx_gen.server.schemas.responses import ResponsesRequest
from mlx_gen.server.structured import chat_constraint


async def create_response(request: Request) -> Response:
    state, body = await read_generation(request, ResponsesRequest)
    served = state.served
    chat = body.to_chat()
    prompt = await run_in_threadpool(render_chat, state, chat)
    constraint = await chat_constraint(state, chat)
    n_prompt = len(prompt.token_ids)
    stop_ids = served.chat_format.stop_token_ids
    sampling, reservation = admit(request, chat, n_prompt, stop_ids, engine_stops=[])
    request_id = new_id("resp")
    answer = ResponsesAnswer(
        body,
        request_id,
        served.name,
        1,
        served.chat_format.parser,
        decoder_for(served.tokenizer),
        partial(served.engine.abort, request_id),
        None,
        stream=bool(body.stream),
        one_call=body.parallel_tool_calls is False,
    )
    events = submit(
        served,
        prompt.token_ids,
        sampling,
        request_id,
        reservation,
        body.user,
        constraint,
    )
    return await respond(request, state, answer, events, reservation, n_prompt)
