"""From a validated request to engine events: the model's limits, the one
`SamplingParams` of a request, and the engine's refusals as HTTP errors."""

from __future__ import annotations

from typing import Any, TypeVar

from starlette.requests import Request

from mlx_gen.engine.constraints import Constraint
from mlx_gen.engine.types import (
    ContextLengthExceeded,
    EngineDead,
    EngineError,
    GenerationRequest,
    QueueFull,
    SamplingParams,
)
from mlx_gen.server.body import read_body
from mlx_gen.server.context import info_of
from mlx_gen.server.errors import APIError, bad_request, model_not_found, unavailable
from mlx_gen.server.rate_limits import Reservation
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.schemas.completions import CompletionRequest
from mlx_gen.server.schemas.messages import MessagesRequest
from mlx_gen.server.schemas.responses import ResponsesRequest
from mlx_gen.server.served import EventStream, ServedModel
from mlx_gen.server.state import AppState, state_of

GenerationBody = TypeVar(
    "GenerationBody",
    ChatCompletionRequest,
    CompletionRequest,
    ResponsesRequest,
    MessagesRequest,
)


async def read_generation(
    request: Request, schema: type[GenerationBody]
) -> tuple[AppState, GenerationBody]:
    """The app's state and the validated body of a request for the served model."""
    state = state_of(request)
    body = await read_body(request, schema)
    check_model(state.served, body.model)
    info_of(request.scope).model = state.served.name
    return state, body


def admit_lookup(request: Request) -> dict[str, str]:
    """One request against its key's requests per minute, for the endpoints
    that only read the tokenizer (/tokenize, count_tokens): they generate
    nothing, but they are not free. Its rate-limit headers."""
    key_id = info_of(request.scope).key_id
    reservation = state_of(request).limiter.admit(key_id, 0)
    reservation.settle(0)
    return reservation.headers


def admit(
    request: Request,
    body: ChatCompletionRequest | CompletionRequest,
    prompt_tokens: int,
    stop_token_ids: list[int],
    engine_stops: list[str],
) -> tuple[SamplingParams, Reservation]:
    """The request's sampling, once its budget fits in the context and in its
    key's rate limits (the reservation is settled when the answer is done)."""
    params, reservation = admit_many(
        request, body, [prompt_tokens], stop_token_ids, engine_stops
    )
    return params[0], reservation


def admit_many(
    request: Request,
    body: ChatCompletionRequest | CompletionRequest,
    prompt_tokens: list[int],
    stop_token_ids: list[int],
    engine_stops: list[str],
) -> tuple[list[SamplingParams], Reservation]:
    """`admit` for a batch of prompts of these lengths: each its own budget
    in the context, one reservation for them all."""
    state = state_of(request)
    served = state.served
    params = []
    for length in prompt_tokens:
        max_tokens = resolve_max_tokens(
            body.requested_max_tokens, length, served, state.settings.max_tokens_default
        )
        params.append(
            sampling_params(body, served, max_tokens, stop_token_ids, engine_stops)
        )
    key_id = info_of(request.scope).key_id
    completion = sum(p.max_tokens * p.n for p in params)
    reservation = state.limiter.admit(key_id, sum(prompt_tokens) + completion)
    return params, reservation


def check_model(served: ServedModel, name: str) -> None:
    """Only the served model's own name is accepted: never a path."""
    if name != served.name:
        raise model_not_found(name)


def context_error(prompt: int, completion: int, limit: int) -> APIError:
    return APIError(
        400,
        f"This model's maximum context length is {limit} tokens. However, you "
        f"requested {prompt + completion} tokens ({prompt} in the prompt, "
        f"{completion} for the completion). Shorten the prompt or lower the "
        "maximum number of tokens.",
        param="messages",
        code="context_length_exceeded",
    )


def resolve_max_tokens(
    requested: int | None, prompt_tokens: int, served: ServedModel, default: int
) -> int:
    """The completion budget; prompt + budget must fit in the context."""
    room = served.max_context - prompt_tokens
    if requested is None:
        if room < 1:
            raise context_error(prompt_tokens, 1, served.max_context)
        return min(default, room)
    if requested > room:
        raise context_error(prompt_tokens, requested, served.max_context)
    return requested


def check_token_ids(ids: list[int], served: ServedModel, param: str) -> None:
    for token_id in ids:
        if not 0 <= token_id < served.vocab_size:
            raise bad_request(
                f"Token id {token_id} is outside the vocabulary "
                f"(0 to {served.vocab_size - 1}).",
                param,
            )


def sampling_params(
    body: ChatCompletionRequest | CompletionRequest,
    served: ServedModel,
    max_tokens: int,
    stop_token_ids: list[int],
    engine_stops: list[str],
) -> SamplingParams:
    """The one `SamplingParams` of a request: its fields over the registry's
    defaults over the engine's. `engine_stops` are the stop strings the engine
    matches in the raw text (a chat answer matches its own in the content)."""
    defaults = served.sampling_defaults

    def pick(name: str, fallback: float) -> Any:
        value = getattr(body, name)
        return value if value is not None else defaults.get(name, fallback)

    bias = None
    if body.logit_bias:
        bias = {int(k): v for k, v in body.logit_bias.items()}
        check_token_ids(list(bias), served, "logit_bias")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=pick("temperature", 1.0),
        top_p=pick("top_p", 1.0),
        top_k=pick("top_k", 0),
        min_p=pick("min_p", 0.0),
        repetition_penalty=body.repetition_penalty or 1.0,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        logit_bias=bias,
        seed=body.seed,
        stop=list(engine_stops),
        stop_token_ids=list(stop_token_ids),
        n=body.n or 1,
        logprobs=body.top_logprobs_asked is not None,
        top_logprobs=body.top_logprobs_asked or 0,
        speculative=body.speculative is not False,
    )


def submit(
    served: ServedModel,
    prompt_ids: list[int],
    sampling: SamplingParams,
    request_id: str,
    reservation: Reservation,
    user: str | None = None,
    constraint: Constraint | None = None,
) -> EventStream:
    """Hand the request to the engine; its refusals become HTTP errors (and
    give back the rate-limit reservation)."""
    return submit_many(
        served, [prompt_ids], [sampling], request_id, reservation, user, constraint
    )


def submit_many(
    served: ServedModel,
    prompts: list[list[int]],
    params: list[SamplingParams],
    request_id: str,
    reservation: Reservation,
    user: str | None = None,
    constraint: Constraint | None = None,
) -> EventStream:
    """`submit` for a batch of prompts, queued as one unit: one engine request
    each (`request_id`, or `request_id-k` in a batch), their events on one
    stream, prompt k's choice i as index k*n + i."""
    ids = (
        [request_id]
        if len(prompts) == 1
        else [f"{request_id}-{k}" for k in range(len(prompts))]
    )
    gens = [
        GenerationRequest(
            prompt_token_ids=prompt,
            sampling=sampling,
            request_id=engine_id,
            user=user,
            constraint=constraint,
        )
        for prompt, sampling, engine_id in zip(prompts, params, ids, strict=True)
    ]
    try:
        return served.engine.submit_many(gens)
    except EngineError as exc:
        reservation.settle(0)
        raise _engine_refusal(exc) from None


def _engine_refusal(exc: EngineError) -> APIError:
    if isinstance(exc, ContextLengthExceeded):
        return context_error(exc.prompt_tokens, exc.max_tokens, exc.limit)
    if isinstance(exc, QueueFull):
        return unavailable(
            "The server is busy: too many requests are waiting. Retry shortly.",
            code="server_overloaded",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, EngineDead):
        return unavailable("The generation engine has stopped.", "engine_unavailable")
    return bad_request(f"The engine refused the request: {exc}")
