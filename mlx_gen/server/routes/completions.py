"""POST /v1/completions: raw text (or token ids) in, text out; no chat format."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.answers.base import new_id
from mlx_gen.server.answers.completions import CompletionAnswer
from mlx_gen.server.answers.deliver import respond
from mlx_gen.server.generate import admit, check_token_ids, read_generation, submit
from mlx_gen.server.schemas.completions import CompletionRequest
from mlx_gen.server.structured import completion_constraint


async def completions(request: Request) -> Response:
    state, body = await read_generation(request, CompletionRequest)
    served = state.served
    if isinstance(body.prompt, str):
        prompt_text = body.prompt
        prompt_ids = await run_in_threadpool(served.tokenizer.encode, body.prompt)
    else:
        check_token_ids(body.prompt, served, "prompt")
        prompt_ids = list(body.prompt)
        prompt_text = served.tokenizer.decode(prompt_ids) if body.echo else ""
    constraint = await completion_constraint(state, body.response_format, body)
    stop_ids = sorted(served.tokenizer.eos_token_ids or [])
    stops = list(body.stop or [])
    sampling, reservation = admit(
        request, body, len(prompt_ids), stop_ids, engine_stops=stops
    )
    answer = CompletionAnswer(
        new_id("cmpl"),
        served.name,
        sampling.n,
        decoder_for(served.tokenizer),
        body.top_logprobs_asked,
        echo=prompt_text if body.echo else "",
        stream=bool(body.stream),
        include_usage=body.include_usage,
    )
    events = submit(
        served,
        prompt_ids,
        sampling,
        answer.request_id,
        reservation,
        body.user,
        constraint,
    )
    return await respond(request, state, answer, events, reservation, len(prompt_ids))
