"""POST /v1/chat/completions."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.chat.base import RenderedPrompt
from mlx_gen.server.answers.base import new_id
from mlx_gen.server.answers.chat import ChatAnswer
from mlx_gen.server.answers.deliver import respond
from mlx_gen.server.errors import bad_request
from mlx_gen.server.generate import admit, read_generation, submit
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.state import AppState
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


async def answer_chat(
    request: Request,
    state: AppState,
    body: ChatCompletionRequest,
    id_prefix: str,
    make_answer: Callable[[str, int, int], ChatAnswer],
) -> Response:
    """Render, constrain, admit and generate a chat request; `make_answer`
    builds the answer from the request id, the number of choices and of
    prompt tokens."""
    served = state.served
    # Rendering tokenizes the whole conversation: off the event loop.
    prompt = await run_in_threadpool(render_chat, state, body)
    constraint = await chat_constraint(state, body)
    n_prompt = len(prompt.token_ids)
    # Stop strings apply to the answer's content, not to the raw text with
    # the format's headers and reasoning that the engine sees.
    stop_ids = served.chat_format.stop_token_ids
    sampling, reservation = admit(request, body, n_prompt, stop_ids, engine_stops=[])
    request_id = new_id(id_prefix)
    answer = make_answer(request_id, sampling.n, n_prompt)
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


async def chat_completions(request: Request) -> Response:
    state, body = await read_generation(request, ChatCompletionRequest)
    served = state.served

    def make_answer(request_id: str, n: int, _prompt_tokens: int) -> ChatAnswer:
        return ChatAnswer.of(
            served,
            request_id,
            n,
            top_logprobs=body.top_logprobs_asked,
            stream=bool(body.stream),
            include_usage=body.include_usage,
            stops=list(body.stop or []),
            one_call=body.parallel_tool_calls is False,
        )

    return await answer_chat(request, state, body, "chatcmpl", make_answer)
