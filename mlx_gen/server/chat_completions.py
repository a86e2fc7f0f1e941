"""POST /v1/chat/completions."""

from __future__ import annotations

from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.chat.base import RenderedPrompt
from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.chat_answer import ChatAnswer
from mlx_gen.server.context import info_of
from mlx_gen.server.errors import bad_request
from mlx_gen.server.generation import (
    check_model,
    read_body,
    resolve_max_tokens,
    sampling_params,
    submit,
)
from mlx_gen.server.outputs import new_id
from mlx_gen.server.respond import respond
from mlx_gen.server.schemas import ChatCompletionRequest
from mlx_gen.server.state import AppState, state_of
from mlx_gen.server.structured import chat_constraint


def render_chat(
    state: AppState, body: ChatCompletionRequest, add_generation_prompt: bool = True
) -> RenderedPrompt:
    """The prompt of a chat request (also what /tokenize shows)."""
    if len(body.messages) > state.settings.max_messages:
        raise bad_request(
            f"Too many messages: {len(body.messages)}, the limit is "
            f"{state.settings.max_messages}.",
            "messages",
        )
    served = state.served
    try:
        return served.chat_format.render(
            [m.to_format() for m in body.messages],
            body.tools_for_format(),
            body.effort or served.default_reasoning_effort,
            add_generation_prompt,
        )
    except ValueError as exc:  # a conversation the format cannot express
        raise bad_request(f"Invalid conversation: {exc}", "messages") from None


async def chat_completions(request: Request) -> Response:
    state = state_of(request)
    served = state.served
    info = info_of(request.scope)
    body = await read_body(request, ChatCompletionRequest)
    check_model(served, body.model)
    info.model = served.name
    # Rendering tokenizes the whole conversation: off the event loop.
    prompt = await run_in_threadpool(render_chat, state, body)
    constraint = await chat_constraint(state, body)
    n_prompt = len(prompt.token_ids)
    max_tokens = resolve_max_tokens(
        body.requested_max_tokens, n_prompt, served, state.settings.max_tokens_default
    )
    n = body.n or 1
    reservation = state.limiter.admit(info.key_id, n_prompt + max_tokens * n)
    sampling = sampling_params(
        body, served, max_tokens, served.chat_format.stop_token_ids
    )
    # Stop strings apply to the answer's content, not to the raw text with
    # the format's headers and reasoning that the engine sees.
    stops, sampling.stop = sampling.stop, []
    top_logprobs = (body.top_logprobs or 0) if body.logprobs else None
    sampling.logprobs = top_logprobs is not None
    sampling.top_logprobs = top_logprobs or 0
    request_id = new_id("chatcmpl")
    answer = ChatAnswer(
        request_id,
        served.name,
        n,
        served.chat_format.parser,
        decoder_for(served.tokenizer),
        partial(served.engine.abort, request_id),
        top_logprobs,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        stops=stops,
        one_call=body.parallel_tool_calls is False,
    )
    events = submit(
        served,
        prompt.token_ids,
        sampling,
        answer.request_id,
        reservation,
        body.user,
        constraint,
    )
    return await respond(
        request, state, answer, events, reservation, n_prompt, bool(body.stream)
    )
