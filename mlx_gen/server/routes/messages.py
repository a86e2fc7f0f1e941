"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API,
answered through the chat path (the request stands for a chat request,
schemas/messages.py)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.server.answers.chat import ChatAnswer
from mlx_gen.server.answers.messages import MessagesAnswer
from mlx_gen.server.body import read_body
from mlx_gen.server.generate import admit_lookup, check_model, read_generation
from mlx_gen.server.routes.chat_completions import answer_chat, render_chat
from mlx_gen.server.schemas.messages import CountTokensRequest, MessagesRequest
from mlx_gen.server.state import state_of


async def create_message(request: Request) -> Response:
    state, body = await read_generation(request, MessagesRequest)
    chat = body.to_chat()

    def make_answer(request_id: str, n: int, prompt_tokens: int) -> ChatAnswer:
        return MessagesAnswer.of(
            state.served,
            request_id,
            n,
            prompt_tokens=prompt_tokens,
            top_logprobs=None,
            stream=bool(body.stream),
            stops=body.stop_sequences,
            one_call=chat.parallel_tool_calls is False,
        )

    return await answer_chat(request, state, chat, "msg", make_answer)


async def count_tokens(request: Request) -> Response:
    headers = admit_lookup(request)
    state = state_of(request)
    body = await read_body(request, CountTokensRequest)
    check_model(state.served, body.model)
    prompt = await run_in_threadpool(render_chat, state, body.to_chat())
    return JSONResponse({"input_tokens": len(prompt.token_ids)}, headers=headers)
