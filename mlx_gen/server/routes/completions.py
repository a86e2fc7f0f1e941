"""POST /v1/completions: raw text (or token ids) in, text out; no chat format."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.answers.base import new_id
from mlx_gen.server.answers.completions import CompletionAnswer
from mlx_gen.server.answers.deliver import respond
from mlx_gen.server.body import read_body
from mlx_gen.server.context import info_of
from mlx_gen.server.generate import (
    check_model,
    check_token_ids,
    resolve_max_tokens,
    sampling_params,
    submit,
)
from mlx_gen.server.schemas.completions import CompletionRequest
from mlx_gen.server.state import state_of


async def completions(request: Request) -> Response:
    state = state_of(request)
    served = state.served
    info = info_of(request.scope)
    body = await read_body(request, CompletionRequest)
    check_model(served, body.model)
    info.model = served.name
    if isinstance(body.prompt, str):
        prompt_text = body.prompt
        prompt_ids = await run_in_threadpool(served.tokenizer.encode, body.prompt)
    else:
        check_token_ids(body.prompt, served, "prompt")
        prompt_ids = list(body.prompt)
        prompt_text = served.tokenizer.decode(prompt_ids) if body.echo else ""
    max_tokens = resolve_max_tokens(
        body.max_tokens, len(prompt_ids), served, state.settings.max_tokens_default
    )
    n = body.n or 1
    reservation = state.limiter.admit(info.key_id, len(prompt_ids) + max_tokens * n)
    stop_ids = sorted(served.tokenizer.eos_token_ids or [])
    stops = list(body.stop or [])
    sampling = sampling_params(body, served, max_tokens, stop_ids, engine_stops=stops)
    answer = CompletionAnswer(
        new_id("cmpl"),
        served.name,
        n,
        decoder_for(served.tokenizer),
        body.top_logprobs_asked,
        echo=prompt_text if body.echo else "",
        stream=bool(body.stream),
        include_usage=body.include_usage,
    )
    events = submit(
        served, prompt_ids, sampling, answer.request_id, reservation, body.user
    )
    return await respond(request, state, answer, events, reservation, len(prompt_ids))
