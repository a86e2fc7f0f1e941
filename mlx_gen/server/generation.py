"""The steps every generating endpoint shares, from body to engine events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mlx_gen.engine.constraints import Constraint
from mlx_gen.engine.types import (
    ContextLengthExceeded,
    EngineDead,
    EngineError,
    GenerationEvent,
    GenerationRequest,
    QueueFull,
    SamplingParams,
)
from mlx_gen.server import faults
from mlx_gen.server.errors import (
    APIError,
    bad_request,
    from_validation_error,
    model_not_found,
    unavailable,
)
from mlx_gen.server.limits import Reservation
from mlx_gen.server.schemas import SamplingFields
from mlx_gen.server.served import ServedModel

Body = TypeVar("Body", bound=BaseModel)
_SURROGATE = re.compile("[\ud800-\udfff]")


async def read_body(request: Request, schema: type[Body]) -> Body:
    """The JSON body, validated; every failure is a 400 naming what is wrong."""
    raw = await request.body()
    # Off the event loop: a large body must not stall the streams in flight.
    return await run_in_threadpool(parse_body, raw, schema)


def parse_body(raw: bytes, schema: type[Body]) -> Body:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, RecursionError, ValueError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    if _has_lone_surrogate(data):
        raise bad_request(
            "The request body has an unpaired UTF-16 surrogate escape (such as "
            "\\ud800): it is not valid Unicode text."
        )
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _has_lone_surrogate(data: Any) -> bool:
    """json.loads turns an unpaired `\\ud800` escape into a str that no
    tokenizer (nor UTF-8) takes. Iterative: the body may nest deep."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending += [*item, *item.values()]
        elif isinstance(item, list):
            pending += item
    return False


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
    body: SamplingFields,
    served: ServedModel,
    max_tokens: int,
    stop_token_ids: list[int],
) -> SamplingParams:
    """Request fields over the registry's defaults over the engine's."""
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
        stop=list(body.stop or []),
        stop_token_ids=list(stop_token_ids),
        n=body.n or 1,
    )


def submit(
    served: ServedModel,
    prompt_ids: list[int],
    sampling: SamplingParams,
    request_id: str,
    reservation: Reservation,
    user: str | None = None,
    constraint: Constraint | None = None,
) -> AsyncIterator[GenerationEvent]:
    """Hand the request to the engine; its refusals become HTTP errors (and
    give back the rate-limit reservation)."""
    gen = GenerationRequest(
        prompt_token_ids=prompt_ids,
        sampling=sampling,
        request_id=request_id,
        constraint=constraint,
    )
    if served.prepare_request is not None:
        served.prepare_request(gen)
    faults.arm(gen, user, served.fault_marker)
    try:
        return served.engine.submit(gen)
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


async def wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect_until_disconnect(
    request: Request,
    events: AsyncIterator[GenerationEvent],
    on_event: Callable[[GenerationEvent], object],
) -> bool:
    """Consume all events, or stop early if the client leaves first.

    A non-streaming handler has no other way to learn of the disconnect: once
    the body is read, the next ASGI message can only be `http.disconnect`.
    Returns False when the client left (the caller then aborts the request).
    """

    async def consume() -> None:
        async for event in events:
            on_event(event)

    consumer = asyncio.ensure_future(consume())
    watcher = asyncio.ensure_future(wait_for_disconnect(request))
    try:
        done, _ = await asyncio.wait(
            {consumer, watcher}, return_when=asyncio.FIRST_COMPLETED
        )
        if consumer in done:
            consumer.result()
            return True
        return False
    finally:
        for task in (consumer, watcher):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def client_gone() -> APIError:
    """Answers a client that left: never delivered, but logged (status 499)."""
    return APIError(499, "The client closed the connection.", code="client_closed")
