"""The streaming harmony parser on scripted token streams."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlx_gen.chat import HarmonyFormat, collect
from mlx_gen.chat.base import (
    ContentDelta,
    MessageEnd,
    ReasoningDelta,
    ToolCallArgumentsDelta,
    ToolCallStart,
)


def stream(harmony: HarmonyFormat, ids: list[int]) -> tuple[list, Any]:
    """Feed one id at a time, as the engine does; return events and the parser."""
    parser = harmony.parser()
    events = []
    for token_id in ids:
        events += parser.feed([token_id])
    return events + parser.finish(), parser


def test_reasoning_then_final_answer(harmony: HarmonyFormat, script) -> None:
    ids = script(
        "<|channel|>analysis<|message|>Simple sum.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>"
    )
    parser = harmony.parser()
    events = parser.feed(ids) + parser.finish()
    assert events == [
        ReasoningDelta("Simple sum."),
        MessageEnd("analysis"),
        ContentDelta("2 + 2 = 4."),
        MessageEnd("final"),
    ]
    analysis = script("<|channel|>analysis<|message|>Simple sum.<|end|>")
    assert parser.reasoning_tokens == len(analysis)


def test_stop_tokens_are_return_and_call_never_end(
    harmony: HarmonyFormat, harmony_tokenizer: Any
) -> None:
    ids = harmony_tokenizer.convert_tokens_to_ids(["<|return|>", "<|call|>"])
    assert harmony.stop_token_ids == ids
    assert harmony_tokenizer.convert_tokens_to_ids("<|end|>") not in ids


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>commentary to=functions.get_weather <|constrain|>json",
        " to=functions.get_weather<|channel|>commentary <|constrain|>json",
        "<|channel|>commentary to=functions.get_weather",
        "<|channel|>analysis to=functions.get_weather<|constrain|>json",
        "<|channel|>commentary to=functions.get_weather json",
    ],
)
def test_tool_call_with_recipient_anywhere(
    harmony: HarmonyFormat, script, header: str
) -> None:
    ids = script(header + '<|message|>{"city": "Paris"}<|call|>')
    events, _ = stream(harmony, ids)
    start = events[0]
    assert isinstance(start, ToolCallStart)
    assert (start.index, start.name) == (0, "get_weather")
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", start.id)
    deltas = [e for e in events if isinstance(e, ToolCallArgumentsDelta)]
    assert len(deltas) > 1, "arguments stream as they arrive"
    assert {d.index for d in deltas} == {0}
    assert "".join(d.text for d in deltas) == '{"city": "Paris"}'
    assert isinstance(events[-1], MessageEnd)
    assert not any(isinstance(e, ContentDelta | ReasoningDelta) for e in events)


def test_preamble_and_two_tool_calls(harmony: HarmonyFormat, script) -> None:
    ids = script(
        "<|channel|>analysis<|message|>Two cities.<|end|>"
        "<|start|>assistant<|channel|>commentary<|message|>Checking both.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary "
        '<|constrain|>json<|message|>{"city":"Rome"}<|call|>'
        "<|start|>assistant<|channel|>commentary to=functions.get_time "
        '<|constrain|>json<|message|>{"tz":"CET"}<|call|>'
    )
    answer = harmony.parse_all(ids)
    assert answer.reasoning == "Two cities."
    assert answer.content == "Checking both."
    calls = [
        (c["function"]["name"], c["function"]["arguments"]) for c in answer.tool_calls
    ]
    assert calls == [("get_weather", '{"city":"Rome"}'), ("get_time", '{"tz":"CET"}')]
    assert len({c["id"] for c in answer.tool_calls}) == 2
    assert answer.reasoning_tokens == len(
        script("<|channel|>analysis<|message|>Two cities.<|end|>")
    )


def test_header_split_over_many_tokens_is_held_until_message(
    harmony: HarmonyFormat, script
) -> None:
    ids = script("<|channel|>final<|message|>Hi")
    parser = harmony.parser()
    # Nothing can be shown before the header is complete.
    assert parser.feed(ids[:-2]) == []
    assert parser.feed(ids[-2:]) == [ContentDelta("Hi")]


def test_character_split_across_tokens_is_never_replaced(
    harmony: HarmonyFormat, harmony_tokenizer: Any, script
) -> None:
    text = "Größe: 😀 ok"
    body = harmony_tokenizer.encode(text, add_special_tokens=False)
    assert len(body) > len(text), "precondition: some character spans tokens"
    ids = script("<|channel|>final<|message|>") + body + script("<|return|>")
    events, _ = stream(harmony, ids)
    deltas = [e.text for e in events if isinstance(e, ContentDelta)]
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)


def test_unfinished_character_at_the_end_is_flushed_as_replacement(
    harmony: HarmonyFormat, harmony_tokenizer: Any, script
) -> None:
    emoji = harmony_tokenizer.encode("😀", add_special_tokens=False)
    assert len(emoji) > 1, "precondition: the emoji spans tokens"
    ids = script("<|channel|>final<|message|>ok ") + emoji[:1]
    parser = harmony.parser()
    assert collect(parser.feed(ids)).content == "ok "
    assert collect(parser.finish()).content == "\ufffd"


def test_plain_text_without_any_header_is_content(
    harmony: HarmonyFormat, script
) -> None:
    text = "Just words, no structure at all."
    assert harmony.parse_all(script(text)).content == text


def test_a_newline_ends_a_would_be_header_early(harmony: HarmonyFormat, script) -> None:
    parser = harmony.parser()
    assert parser.feed(script("Hello\n")) == [ContentDelta("Hello\n")]


def test_text_that_cannot_open_a_header_is_shown_at_once(
    harmony: HarmonyFormat, script
) -> None:
    # A random-weight model writes words where the channel should be: the
    # first token already rules out a header, so nothing waits for more.
    first = script("Paris")[:1]
    events = harmony.parser().feed(first)
    assert events and isinstance(events[0], ContentDelta)


def test_a_recipient_being_written_is_still_held(
    harmony: HarmonyFormat, script
) -> None:
    parser = harmony.parser()
    assert parser.feed(script(" to=functions.get")) == []
    events = parser.feed(script("_weather<|channel|>commentary json<|message|>{"))
    assert [type(e).__name__ for e in events] == [
        "ToolCallStart",
        "ToolCallArgumentsDelta",
    ]
    assert events[0].name == "get_weather"


def test_fresh_start_after_end_and_forgotten_start(
    harmony: HarmonyFormat, script
) -> None:
    ids = script(
        "<|channel|>analysis<|message|>a<|end|>"
        "<|channel|>analysis<|message|>b<|end|>"  # `<|start|>assistant` forgotten
        "<|start|><|channel|>final<|message|>c<|return|>"  # role forgotten
    )
    answer = harmony.parse_all(ids)
    assert (answer.reasoning, answer.content) == ("ab", "c")


def test_misplaced_control_tokens_never_leak_and_never_lose_text(
    harmony: HarmonyFormat, script
) -> None:
    ids = script(
        "<|channel|>final<|message|>one<|message|> two<|constrain|> three"
        "<|channel|>analysis<|message|>think<|return|>"
        "<|end|> four<|start|>user<|message|>five<|end|>"
        "<|start|>bad header words<|message|>six<|end|>"
        "<|endoftext|><|startoftext|>seven"
    )
    answer = harmony.parse_all(ids)
    assert answer.content == "one two three fourfivebad header wordssixseven"
    assert answer.reasoning == "think"
    assert "<|" not in answer.content


def test_cut_short_header_shows_text_only_when_it_is_not_a_header(
    harmony: HarmonyFormat, script
) -> None:
    valid = script("<|channel|>analysis<|end|><|start|>assistant<|return|>")
    assert harmony.parse_all(valid).content == ""
    invalid = script("<|start|>not a header<|end|>")
    assert harmony.parse_all(invalid).content == "not a header"


def test_recipients_that_are_not_functions_are_not_tool_calls(
    harmony: HarmonyFormat, script
) -> None:
    ids = script(
        "<|channel|>analysis to=python<|message|>print(1)<|call|>"
        "<|start|>functions.x to=assistant<|channel|>commentary<|message|>out<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.<|message|>{}<|call|>"
    )
    answer = harmony.parse_all(ids)
    assert answer.tool_calls == []
    assert answer.reasoning == "print(1)"
    assert answer.content == "out{}"


def test_special_tokens_outside_harmony_carry_no_text(
    harmony: HarmonyFormat, script
) -> None:
    ids = script("<|channel|>final<|message|>a<|endoftext|>b<|startoftext|>c")
    assert harmony.parse_all(ids).content == "abc"


def test_unknown_and_out_of_vocabulary_ids_carry_no_text(
    harmony: HarmonyFormat, harmony_tokenizer: Any, script
) -> None:
    ids = [*script("<|channel|>final<|message|>a"), len(harmony_tokenizer) + 5, -1]
    assert harmony.parse_all(ids + script("b")).content == "ab"


def test_a_cut_character_between_messages_does_not_break_the_next_header(
    harmony: HarmonyFormat, harmony_tokenizer: Any, script
) -> None:
    emoji = harmony_tokenizer.encode("😀", add_special_tokens=False)
    ids = [
        *script("<|channel|>final<|message|>a<|end|>"),
        emoji[0],
        *script("<|start|>assistant<|channel|>analysis<|message|>b<|end|>"),
        emoji[0],
        *script("<|channel|>final<|message|>c<|return|>"),
    ]
    answer = harmony.parse_all(ids)
    assert (answer.reasoning, answer.content) == ("b", "a\ufffd\ufffdc")


def test_a_cut_character_after_the_last_message_is_not_lost(
    harmony: HarmonyFormat, harmony_tokenizer: Any, script
) -> None:
    emoji = harmony_tokenizer.encode("😀", add_special_tokens=False)
    ids = [*script("<|channel|>final<|message|>a<|end|>"), emoji[0]]
    assert harmony.parse_all(ids).content == "a\ufffd"
