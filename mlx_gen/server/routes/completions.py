"""POST /v1/completions: raw text (or token ids) in, text out; no chat format.

`prompt` may be a batch (a list of strings or of token-id lists): its prompts
are admitted as one unit, for the rate limits and the engine's queue, and
answered together, prompt k's choice i as index k*n + i.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mlx_gen.engine.detokenizer import decoder_for
from mlx_gen.server.answers.base import new_id
from mlx_gen.server.answers.completions import CompletionAnswer
from mlx_gen.server.answers.deliver import respond
from mlx_gen.server.errors import bad_request
from mlx_gen.server.generate import (
    admit_many,
    check_token_ids,
    read_generation,
    submit_many,
)
from mlx_gen.server.schemas.completions import CompletionRequest, Prompt
from mlx_gen.server.served import ServedModel
from mlx_gen.server.structured import completion_constraint


def _token_ids(prompts: list[Prompt], served: ServedModel) -> list[list[int]]:
    """Each prompt as token ids (runs off the event loop)."""
    batch = len(prompts) > 1
    ids = []
    for k, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            ids.append(served.tokenizer.encode(prompt))
        else:
            check_token_ids(prompt, served, f"prompt[{k}]" if batch else "prompt")
            ids.append(list(prompt))
    return ids


async def completions(request: Request) -> Response:
    state, body = await read_generation(request, CompletionRequest)
    served = state.served
    prompts = body.prompts
    # The engine queues a batch whole or not at all: refuse one that never fits
    # before tokenizing it.
    most = state.settings.max_queue + state.settings.max_batch_size
    if len(prompts) > most:
        raise bad_request(f"At most {most} prompts fit in one request.", "prompt")
    prompt_ids = await run_in_threadpool(_token_ids, prompts, served)
    echoes = None
    if body.echo:
        echoes = [
            p if isinstance(p, str) else served.tokenizer.decode(p) for p in prompts
        ]
    constraint = await completion_constraint(state, body.response_format, body)
    stop_ids = sorted(served.tokenizer.eos_token_ids or [])
    lengths = [len(ids) for ids in prompt_ids]
    params, reservation = admit_many(
        request, body, lengths, stop_ids, engine_stops=list(body.stop or [])
    )
    for sampling in params:
        sampling.prompt_logprobs = body.prompt_logprobs_asked
    answer = CompletionAnswer(
        new_id("cmpl"),
        served.name,
        params[0].n,
        decoder_for(served.tokenizer),
        body.top_logprobs_asked,
        prompt_ids,
        echoes,
        body.prompt_logprobs,
        stream=bool(body.stream),
        include_usage=body.include_usage,
    )
    events = submit_many(
        served,
        prompt_ids,
        params,
        answer.request_id,
        reservation,
        body.user,
        constraint,
    )
    return await respond(request, state, answer, events, reservation, sum(lengths))
