"""From a request's structured-output fields to the engine's constraint.

Chat: `response_format` (or vLLM's `guided_regex` / `guided_choice`),
`tool_choice` and `max_reasoning_tokens` decide the shape of the turn
(chat/harmony_grammar.py); a request that sets none of them runs
unconstrained, as before. Completions: the same answer fields constrain the
whole text. Every schema is compiled before the request is queued, so an
invalid or unsupported one is a 400 that names it, never an unconstrained
answer.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from mlx_gen.chat.harmony_grammar import (
    ANY_OBJECT,
    TurnShape,
    answer_lark,
    harmony_lark,
    json_schema_lark,
)
from mlx_gen.chat.harmony_tokens import control_token_ids
from mlx_gen.engine.constraints import (
    Constraint,
    InvalidGrammar,
    compile_grammar,
    lark_grammar,
)
from mlx_gen.server.errors import bad_request
from mlx_gen.server.schemas.chat import ChatCompletionRequest
from mlx_gen.server.schemas.structured import GuidedFields, ResponseFormat
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import AppState

# (request field, Lark expression): each is compiled alone first, so that an
# error names the field at fault.
Part = tuple[str, str]


async def chat_constraint(
    state: AppState, body: ChatCompletionRequest
) -> Constraint | None:
    served = state.served
    shape, parts = turn_shape(body, served)
    if shape is None:
        return None
    ids = control_token_ids(served.tokenizer)
    if ids is not None and served.chat_format.name == "harmony":
        lark = harmony_lark(shape, ids)
    elif shape.tools or not shape.final_allowed:
        raise bad_request(
            f"tool_choice is enforced for the harmony format only, not for "
            f"{served.chat_format.name!r}.",
            "tool_choice",
        )
    else:  # a plain chat template: the whole answer is constrained
        lark = f"start: {shape.answer or json_schema_lark(ANY_OBJECT)}\n"
    return await _compile(state, parts, lark)


async def completion_constraint(
    state: AppState, response_format: ResponseFormat | None, guided: GuidedFields
) -> Constraint | None:
    part = answer_part(response_format, guided)
    if part is None:
        return None
    return await _compile(state, [part], f"start: {part[1]}\n")


def answer_part(
    response_format: ResponseFormat | None, guided: GuidedFields
) -> Part | None:
    """The one answer constraint a request sets, or None for free text."""
    given = {
        "response_format": answer_lark(
            schema=response_format.answer_schema() if response_format else None
        ),
        "guided_regex": answer_lark(regex=guided.guided_regex),
        "guided_choice": answer_lark(choice=guided.guided_choice),
    }
    parts = [(name, lark) for name, lark in given.items() if lark is not None]
    if len(parts) > 1:
        names = " and ".join(name for name, _ in parts)
        raise bad_request(f"Give one answer constraint, not {names}.", parts[1][0])
    return parts[0] if parts else None


def turn_shape(
    body: ChatCompletionRequest, served: ServedModel
) -> tuple[TurnShape | None, list[Part]]:
    """The shape the turn must have (None: leave it free), and its parts."""
    answer = answer_part(body.response_format, body)
    choice = body.tool_choice
    named = choice if not isinstance(choice, str | None) else None
    forced = choice == "required" or named is not None
    if answer is None and not forced and body.max_reasoning_tokens is None:
        return None, []
    tools = {
        t.function.name: json_schema_lark(t.function.parameters or ANY_OBJECT)
        for t in body.tools or []
    }
    if forced and not tools:
        raise bad_request(
            "tool_choice forces a tool call, but no tools are given.", "tool_choice"
        )
    if named is not None:
        if named.function.name not in tools:
            raise bad_request(
                f"tool_choice names {named.function.name!r}, which is not among "
                "the tools.",
                "tool_choice",
            )
        tools = {named.function.name: tools[named.function.name]}
    elif choice == "none":
        tools = {}
    budget = body.max_reasoning_tokens
    if budget is None:
        budget = served.default_max_reasoning_tokens
    shape = TurnShape(
        answer=answer[1] if answer else None,
        tools=list(tools.items()),
        final_allowed=not forced,
        reasoning_budget=budget,
    )
    parts = [answer] if answer else []
    return shape, parts + [(f"tools ({name})", lark) for name, lark in tools.items()]


async def _compile(state: AppState, parts: list[Part], lark: str) -> Constraint:
    tokenizer = state.served.tokenizer
    for where, part in parts:
        try:
            await run_in_threadpool(
                compile_grammar, lark_grammar(f"start: {part}\n"), tokenizer
            )
        except InvalidGrammar as exc:
            raise bad_request(
                f"Invalid or unsupported constraint in {where}: {exc}",
                where.split()[0],
            ) from None
    start = time.perf_counter()
    try:
        constraint = await run_in_threadpool(
            compile_grammar, lark_grammar(lark), tokenizer
        )
    except InvalidGrammar as exc:
        raise bad_request(f"The output grammar does not compile: {exc}") from None
    state.metrics.constrained_requests.inc()
    state.metrics.schema_compile.observe(time.perf_counter() - start)
    return constraint
