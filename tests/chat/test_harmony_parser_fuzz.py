"""Any token sequence at all: the harmony parser never raises and never loses text."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_gen.chat import HarmonyFormat, collect
from mlx_gen.chat.base import (
    ContentDelta,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.chat.harmony_tokens import CALL, CONTROL_TOKENS, END, MESSAGE, RETURN

# Pieces a model is likely to combine, so that random streams often form
# headers, tool calls and half-headers, not only noise.
SNIPPETS = [
    "assistant",
    "analysis",
    "final",
    "commentary",
    " to=functions.f",
    " to=python",
    " json",
    "user",
    "\n",
    "é😀",
    "Hello world",
    "<|end|>",  # plain characters, as a user could type them
    "<|endoftext|>",
]
FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def token_streams(tokenizer: Any) -> st.SearchStrategy[list[int]]:
    control = [tokenizer.convert_tokens_to_ids(t) for t in CONTROL_TOKENS]
    snippets = [
        tokenizer._tokenizer.encode(
            s, add_special_tokens=False, split_special_tokens=True
        )
        for s in SNIPPETS
    ]
    special = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|startoftext|>"])
    atom = st.one_of(
        st.sampled_from(control).map(lambda i: [i]),
        st.sampled_from(snippets),
        st.sampled_from(special).map(lambda i: [i]),
        st.integers(0, len(tokenizer) + 8).map(lambda i: [i]),
        st.sampled_from(snippets).map(lambda ids: ids[:1]),  # cut characters
    )
    return st.lists(atom, max_size=60).map(lambda atoms: [i for a in atoms for i in a])


def text_runs(tokenizer: Any, ids: list[int]) -> list[tuple[str, bool]]:
    """Each run of non-control ids: its text, and whether it must be shown.

    Text right after `<|message|>` or after an end token is never a header,
    so it must reach the events; other runs may be consumed as a header.
    """
    control = {tokenizer.convert_tokens_to_ids(t): t for t in CONTROL_TOKENS}
    runs: list[tuple[str, bool]] = []
    run: list[int] = []
    before: str | None = None
    for token_id in [*ids, None]:
        if token_id is not None and token_id not in control:
            run.append(token_id)
            continue
        if run:
            text = tokenizer.decode(run, skip_special_tokens=True)
            runs.append((text, before in (MESSAGE, END, RETURN, CALL)))
        run = []
        before = control.get(token_id)
    return runs


def is_subsequence_concatenation(output: str, runs: list[tuple[str, bool]]) -> bool:
    """Is `output` some runs joined in order, skipping only optional ones?"""
    reachable = {0}
    for text, must in runs:
        after = {p + len(text) for p in reachable if output.startswith(text, p)}
        reachable = after if must else after | reachable
    return len(output) in reachable


def run_parser(harmony: HarmonyFormat, ids: list[int], chunks: list[int]) -> tuple:
    parser = harmony.parser()
    events, start = [], 0
    for size in chunks:
        events += parser.feed(ids[start : start + size])
        start += size
    events += parser.feed(ids[start:]) + parser.finish()
    return events, parser


@FUZZ
@given(data=st.data())
def test_any_token_stream_is_parsed_without_losing_text(
    harmony: HarmonyFormat, harmony_tokenizer: Any, data: st.DataObject
) -> None:
    ids = data.draw(token_streams(harmony_tokenizer))
    chunks = data.draw(st.lists(st.integers(1, 5), max_size=30))
    events, parser = run_parser(harmony, ids, chunks)

    started = []
    text = []
    for event in events:
        if isinstance(event, ToolCallStart):
            assert event.index == len(started)
            assert re.fullmatch(r"call_[A-Za-z0-9]{24}", event.id)
            assert event.name
            started.append(event.id)
        elif isinstance(event, ToolCallArgumentsDelta):
            assert event.index == len(started) - 1
        if isinstance(event, ContentDelta | ReasoningDelta | ToolCallArgumentsDelta):
            assert event.text
            text.append(event.text)
    assert is_subsequence_concatenation(
        "".join(text), text_runs(harmony_tokenizer, ids)
    )
    assert 0 <= parser.reasoning_tokens <= len(ids)

    # Chunking is invisible: one id at a time gives the same answer.
    one_by_one, _ = run_parser(harmony, ids, [1] * len(ids))
    assert same_answer(collect(events), collect(one_by_one))


def same_answer(a: Any, b: Any) -> bool:
    def calls(answer: Any) -> list:
        return [
            (c["function"]["name"], c["function"]["arguments"])
            for c in answer.tool_calls
        ]

    return (a.reasoning, a.content, calls(a)) == (b.reasoning, b.content, calls(b))


def test_conservation_check_rejects_lost_and_invented_text() -> None:
    runs = [("head", False), ("body", True)]
    assert is_subsequence_concatenation("body", runs)
    assert is_subsequence_concatenation("headbody", runs)
    assert not is_subsequence_concatenation("head", runs)
    assert not is_subsequence_concatenation("bodyx", runs)
