"""Stop strings end what the user sees: a chat answer's content, a completion's
raw text. And `parallel_tool_calls: false` ends the turn after one call.
Forced token streams through the real engine and server, the SDK as client."""

from __future__ import annotations

import json

import pytest

from .conftest import MODEL
from .helpers import script_ids

HI = [{"role": "user", "content": "Hi"}]
THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>think hard<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello there<|return|>"
)
# No end: the forced model repeats its last token until max_tokens.
ENDLESS_ANSWER = (
    "<|channel|>analysis<|message|>think hard<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello there and so on"
)
# max_tokens of answers that only a stop ends early. The engine goes on for
# the few steps the server takes to see the stop and abort: far fewer than this.
LONG = 3000
CALL = (
    "<|start|>assistant<|channel|>commentary to=functions.get_weather "
    '<|constrain|>json<|message|>{"city":"Paris"}<|call|>'
)
# A model that ends its first call with <|end|>, where <|call|> belongs, goes on.
TWO_CALLS = (
    "<|channel|>analysis<|message|>two cities<|end|>"
    + CALL.replace("<|call|>", "<|end|>")
    + CALL.replace("Paris", "Rome")
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def generated(served) -> int:
    return served.engine.stats().generated_tokens_total


@pytest.mark.parametrize("stop", ["hard", "think", "analysis"])
def test_a_stop_string_in_the_reasoning_does_not_end_the_answer(
    client, script, tiny_tokenizer, stop
):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=64, stop=[stop]
    )
    message = reply.choices[0].message
    assert (message.reasoning, message.content) == ("think hard", "Hello there")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == len(script.ids)


@pytest.mark.parametrize("stop", ["final", "<|channel|>", "<|message|>", "assistant"])
def test_headers_and_control_tokens_are_not_content(
    client, script, tiny_tokenizer, stop
):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    stream = client.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=64, stop=stop, stream=True
    )
    chunks = [c for c in stream if c.choices]
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == "Hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_stop_string_in_the_content_ends_answer_and_generation(
    client, script, tiny_tokenizer, served
):
    script.ids = script_ids(tiny_tokenizer, ENDLESS_ANSWER)
    before = generated(served)
    reply = client.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=LONG, stop=["nothing", "there"]
    )
    choice = reply.choices[0]
    assert (choice.message.reasoning, choice.message.content) == (
        "think hard",
        "Hello ",
    )
    assert choice.finish_reason == "stop"
    # The engine stopped soon after "there" (its row freed, not run to
    # max_tokens), and usage counts every token it generated.
    until_stop = len(script_ids(tiny_tokenizer, ENDLESS_ANSWER.split(" and")[0]))
    assert until_stop <= reply.usage.completion_tokens < LONG // 2
    assert reply.usage.completion_tokens == generated(served) - before
    assert served.engine.stats().running == 0


def test_a_stop_string_split_over_tokens_is_held_back_while_streaming(
    client, script, tiny_tokenizer, served
):
    stop = "lo th"
    final = ENDLESS_ANSWER.split("<|message|>")[-1]
    pieces = [tiny_tokenizer.decode([i]) for i in script_ids(tiny_tokenizer, final)]
    script.ids = script_ids(tiny_tokenizer, ENDLESS_ANSWER)
    before = generated(served)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=LONG,
            stop=stop,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for index in (0, 1):
        mine = [
            c.choices[0] for c in chunks if c.choices and c.choices[0].index == index
        ]
        contents = [c.delta.content for c in mine if c.delta.content]
        # "H", "el", "lo", " th": the "l" of "el" may begin the stop string and
        # waits for "lo", which waits for " th", which completes the stop.
        assert pieces[:4] == ["H", "el", "lo", " th"]
        assert contents == ["H", "e", "l"]
        assert [c.finish_reason for c in mine if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage.completion_tokens == generated(served) - before
    assert usage.completion_tokens < 2 * LONG // 2


def test_completions_match_stops_against_the_raw_text(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.completions.create(
        model=MODEL, prompt="Say hello", max_tokens=64, stop=["final"]
    )
    text = (
        "<|channel|>analysis<|message|>think hard<|end|><|start|>assistant<|channel|>"
    )
    assert (reply.choices[0].text, reply.choices[0].finish_reason) == (text, "stop")
    stream = client.completions.create(
        model=MODEL, prompt="Say hello", max_tokens=64, stop="k ha", stream=True
    )
    streamed = [c.choices[0] for c in stream if c.choices]
    assert "".join(c.text for c in streamed) == "<|channel|>analysis<|message|>thin"
    assert streamed[-1].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_false_ends_the_turn_after_one_call(
    client, script, tiny_tokenizer, stream
):
    script.ids = script_ids(tiny_tokenizer, TWO_CALLS)

    def calls(parallel: bool | None) -> tuple[list[dict], str]:
        extra = {} if parallel is None else {"parallel_tool_calls": parallel}
        kwargs = dict(model=MODEL, messages=HI, tools=[WEATHER_TOOL], max_tokens=200)
        if not stream:
            choice = client.chat.completions.create(**kwargs, **extra).choices[0]
            made = choice.message.tool_calls or []
            return [c.function.model_dump() for c in made], choice.finish_reason
        made: dict[int, dict] = {}
        finish = None
        for chunk in client.chat.completions.create(**kwargs, **extra, stream=True):
            delta = chunk.choices[0].delta
            for call in delta.tool_calls or []:
                entry = made.setdefault(call.index, {"name": "", "arguments": ""})
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
            finish = chunk.choices[0].finish_reason or finish
        return [made[i] for i in sorted(made)], finish

    one, finish = calls(False)
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in one] == [
        ("get_weather", {"city": "Paris"})
    ]
    # Allowed (the default): whatever calls the model makes in its turn.
    for parallel in (None, True):
        both, finish = calls(parallel)
        assert [json.loads(c["arguments"])["city"] for c in both] == ["Paris", "Rome"]
        assert finish == "tool_calls"
