"""Grammars (llguidance Lark) of what a GPT-OSS turn may generate under a
structured-output request.

The generation prompt ends with `<|start|>assistant`. The model may first
reason freely on the analysis channel, within the reasoning budget (a budget
of 0: no analysis at all); then it answers on the final channel, in text or in
JSON that follows a schema (or text that matches a regex, or one of a list of
strings), and ends with `<|return|>`, or it calls one of the
allowed tools, `to=functions.NAME <|constrain|>json`, with arguments that
follow the tool's parameter schema, and ends with `<|call|>`. Control tokens
are matched by id, so user text can never stand in for them. JSON is compact:
no whitespace between its tokens, so a model cannot pad forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llguidance import regex_to_lark

from mlx_gen.chat.harmony_tokens import (
    CALL,
    CHANNEL,
    CONSTRAIN,
    END,
    MESSAGE,
    RETURN,
    START,
)

# Compact JSON: no whitespace between tokens, so padding is impossible.
_JSON_OPTIONS = {"whitespace_flexible": False}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class TurnShape:
    """What the turn must be.

    `answer`: None for free text, else the Lark expression the final answer
    matches (`answer_lark`).
    `tools`: (name, Lark expression of its arguments) of the tools the turn
    may call.
    `final_allowed`: False when a tool call is required.
    `reasoning_budget`: the analysis channel's token budget, None unbounded.
    """

    answer: str | None = None
    tools: list[tuple[str, str]] = field(default_factory=list)
    final_allowed: bool = True
    reasoning_budget: int | None = None


def json_schema_lark(schema: dict[str, Any]) -> str:
    """A `%json` body for `schema`, compact."""
    options = {**_JSON_OPTIONS, **schema.get("x-guidance", {})}
    return "%json " + json.dumps({**schema, "x-guidance": options})


def answer_lark(
    schema: dict[str, Any] | None = None,
    regex: str | None = None,
    choice: list[str] | None = None,
) -> str | None:
    """The Lark expression of an answer: JSON following `schema`, text
    matching `regex` (whole), or exactly one of the `choice` strings."""
    if schema is not None:
        return json_schema_lark(schema)
    if regex is not None:
        return f"/{regex_to_lark(regex, 'dw')}/"
    if choice is not None:
        return "(" + " | ".join(json.dumps(text) for text in choice) + ")"
    return None


def harmony_lark(shape: TurnShape, token_ids: dict[str, int]) -> str:
    """The Lark grammar of a turn of `shape`, control tokens by id."""

    def tok(name: str) -> str:
        return f"<[{token_ids[name]}]>"

    lines = []
    answers = []
    if shape.final_allowed:
        answers.append("final")
        body = "FREE_TEXT" if shape.answer is None else "answer_body"
        lines.append(
            f'final: {tok(CHANNEL)} "final" {tok(MESSAGE)} {body} {tok(RETURN)}'
        )
        if shape.answer is not None:
            lines.append(f"answer_body: {shape.answer}")
    for i, (name, arguments) in enumerate(shape.tools):
        answers.append(f"call_{i}")
        header = json.dumps(f"commentary to=functions.{name} ")
        lines.append(
            f"call_{i}: {tok(CHANNEL)} {header} {tok(CONSTRAIN)} "
            f'"json" {tok(MESSAGE)} args_{i} {tok(CALL)}'
        )
        lines.append(f"args_{i}: {arguments}")
    if not answers:
        raise ValueError("a turn needs a final answer or a tool to call")
    lines.append("answer: " + " | ".join(answers))
    budget = shape.reasoning_budget
    if budget == 0:
        lines.append("start: answer")
    else:
        limit = "" if budget is None else f"[max_tokens={budget}]"
        lines += [
            "start: analysis? answer",
            f'analysis: {tok(CHANNEL)} "analysis" {tok(MESSAGE)} thinking '
            f'{tok(END)} {tok(START)} "assistant"',
            f"thinking{limit}: FREE_TEXT",
        ]
    lines.append("FREE_TEXT: /(?s:.*)/")
    return "\n".join(lines) + "\n"
