"""POST /tokenize and POST /detokenize: see exactly what the model gets."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mlx_gen.server.body import read_body
from mlx_gen.server.generate import admit_lookup, check_model, check_token_ids
from mlx_gen.server.routes.chat_completions import render_chat
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.schemas.tokenize import DetokenizeRequest, TokenizeRequest
from mlx_gen.server.state import state_of


async def tokenize(request: Request) -> Response:
    headers = admit_lookup(request)
    state = state_of(request)
    served = state.served
    body = await read_body(request, TokenizeRequest)
    check_model(served, body.model)
    if body.prompt is not None:
        text = body.prompt
        tokens = await run_in_threadpool(served.tokenizer.encode, body.prompt)
    else:
        chat = ChatCompletionRequest(
            model=body.model,
            messages=body.messages,
            tools=body.tools,
            reasoning_effort=body.reasoning_effort,
        )
        add_generation_prompt = body.add_generation_prompt is not False
        rendered = await run_in_threadpool(
            render_chat, state, chat, add_generation_prompt
        )
        text, tokens = rendered.text, rendered.token_ids
    return JSONResponse(
        {
            "tokens": list(tokens),
            "count": len(tokens),
            "max_model_len": served.max_context,
            "prompt": text,
        },
        headers=headers,
    )


async def detokenize(request: Request) -> Response:
    headers = admit_lookup(request)
    state = state_of(request)
    served = state.served
    body = await read_body(request, DetokenizeRequest)
    check_model(served, body.model)
    check_token_ids(body.tokens, served, "tokens")
    text = served.tokenizer.decode(body.tokens)
    return JSONResponse({"prompt": text}, headers=headers)
