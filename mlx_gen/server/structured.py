"""From a request's structured-output fields to the engine's constraint.

Chat: `response_format`, `tool_choice` and `max_reasoning_tokens` decide the
shape of the turn (chat/harmony_grammar.py); a request that sets none of them
runs unconstrained, as before. Completions: `response_format` constrains the
whole text. Every schema is compiled before the request is queued, so an
invalid or unsupported one is a 400 that names it, never an unconstrained
answer.
"""

from __future__ import annotations

from typing import Any

from llguidance import LLMatcher
from starlette.concurrency import run_in_threadpool

from mlx_gen.chat.harmony_grammar import (
    ANY_OBJECT,
    TurnShape,
    harmony_lark,
    json_schema_lark,
)
from mlx_gen.chat.harmony_tokens import control_token_ids
from mlx_gen.engine.constraints import Constraint, InvalidGrammar, compile_grammar
from mlx_gen.server.errors import bad_request
from mlx_gen.server.schemas import ChatCompletionRequest
from mlx_gen.server.schemas_structured import ResponseFormat
from mlx_gen.server.served import ServedModel
from mlx_gen.server.state import AppState


async def chat_constraint(
    state: AppState, body: ChatCompletionRequest
) -> Constraint | None:
    served = state.served
    shape = turn_shape(body, served)
    if shape is None:
        return None
    ids = control_token_ids(served.tokenizer)
    if ids is not None and served.chat_format.name == "harmony":
        grammar = LLMatcher.grammar_from_lark(harmony_lark(shape, ids))
    elif shape.tools or not shape.final_allowed:
        raise bad_request(
            f"tool_choice is enforced for the harmony format only, not for "
            f"{served.chat_format.name!r}.",
            "tool_choice",
        )
    else:  # a plain template: the whole answer is the JSON
        grammar = _json_grammar(shape.answer or ANY_OBJECT)
    return await _compile(state, shape, grammar)


async def completion_constraint(
    state: AppState, response_format: ResponseFormat | None
) -> Constraint | None:
    schema = response_format.answer_schema() if response_format else None
    if schema is None:
        return None
    return await _compile(state, TurnShape(answer=schema), _json_grammar(schema))


def turn_shape(body: ChatCompletionRequest, served: ServedModel) -> TurnShape | None:
    """The shape the turn must have, or None to leave it free."""
    answer = body.response_format.answer_schema() if body.response_format else None
    choice = body.tool_choice
    forced = choice == "required" or not isinstance(choice, str | None)
    if answer is None and not forced and body.max_reasoning_tokens is None:
        return None
    tools = {
        t.function.name: t.function.parameters or ANY_OBJECT for t in body.tools or []
    }
    if forced and not tools:
        raise bad_request(
            "tool_choice forces a tool call, but no tools are given.", "tool_choice"
        )
    if not isinstance(choice, str | None):
        name = choice.function.name
        if name not in tools:
            raise bad_request(
                f"tool_choice names {name!r}, which is not among the tools.",
                "tool_choice",
            )
        tools = {name: tools[name]}
    elif choice == "none":
        tools = {}
    budget = body.max_reasoning_tokens
    return TurnShape(
        answer=answer,
        tools=list(tools.items()),
        final_allowed=not forced,
        reasoning_budget=served.default_max_reasoning_tokens
        if budget is None
        else budget,
    )


def _json_grammar(schema: dict[str, Any]) -> str:
    return LLMatcher.grammar_from_lark(f"start: {json_schema_lark(schema)}\n")


async def _compile(state: AppState, shape: TurnShape, grammar: str) -> Constraint:
    served = state.served
    # Each schema alone first, so that the error names the one at fault.
    checks = [("response_format", shape.answer)] if shape.answer is not None else []
    checks += [(f"tools ({name})", schema) for name, schema in shape.tools]
    try:
        for where, schema in checks:
            try:
                await run_in_threadpool(
                    compile_grammar, _json_grammar(schema), served.tokenizer
                )
            except InvalidGrammar as exc:
                raise bad_request(
                    f"Invalid or unsupported JSON schema in {where}: {exc}",
                    where.split()[0],
                ) from None
        constraint = await run_in_threadpool(compile_grammar, grammar, served.tokenizer)
    except InvalidGrammar as exc:
        raise bad_request(
            f"The output grammar does not compile: {exc}", "response_format"
        ) from None
    state.metrics.constrained_requests.inc()
    state.metrics.schema_compile.observe(constraint.compile_seconds)
    return constraint
