"""A request's JSON body, read off the event loop and validated by its schema."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mlx_gen.server.errors import bad_request, from_validation_error

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
