"""POST /v1/messages end to end: the real server, the official anthropic SDK."""

from __future__ import annotations

import json

import httpx
import pytest

from ..conftest import MODEL
from ..helpers import script_ids
from .test_chat_completions import THINK_THEN_ANSWER, TOOL_CALL, WEATHER_TOOL

ASK = "Weather in Paris?"
WEATHER = {
    "name": "get_weather",
    "description": WEATHER_TOOL["function"]["description"],
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
SET_MODE = {
    "name": "set_mode",
    "input_schema": {
        "type": "object",
        "properties": {"mode": {"enum": ["a", "b"]}},
        "required": ["mode"],
        "additionalProperties": False,
    },
}


def count(server, **body) -> int:
    """What /v1/messages/count_tokens says a request's prompt is."""
    answer = httpx.post(
        server.url("/v1/messages/count_tokens"), json={"model": MODEL, **body}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["input_tokens"]


def prompt_of(usage) -> int:
    """The whole prompt: Anthropic counts cached tokens apart from the rest."""
    return usage.input_tokens + usage.cache_read_input_tokens


def test_thinking_then_text(server, claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    messages = [{"role": "user", "content": "Hi"}]
    reply = claude.messages.create(
        model=MODEL,
        system="Be brief.",
        messages=messages,
        max_tokens=64,
        thinking={"type": "enabled", "budget_tokens": 2048},
        metadata={"user_id": "u1"},
    )
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.id.startswith("msg_") and reply.model == MODEL
    assert [block.type for block in reply.content] == ["thinking", "text"]
    thinking, text = reply.content
    assert thinking.thinking == "think hard" and thinking.signature
    assert text.text == "Hello there"
    assert reply.stop_reason == "end_turn" and reply.stop_sequence is None
    usage = reply.usage
    assert usage.output_tokens == len(script.ids)
    assert usage.cache_creation_input_tokens == 0
    assert prompt_of(usage) == count(
        server,
        system="Be brief.",
        messages=messages,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )


def test_tool_loop(server, claude, script, tiny_tokenizer):
    """tool_use → tool_result → answer; the thinking of the call is given back."""
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    question = {"role": "user", "content": ASK}
    first = claude.messages.create(
        model=MODEL, messages=[question], tools=[WEATHER], max_tokens=64
    )
    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert call.input == {"city": "Paris"}

    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    result = {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": [{"type": "text", "text": '{"temp": 21}'}],
    }
    messages = [
        question,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]
    second = claude.messages.create(
        model=MODEL, messages=messages, tools=[WEATHER], max_tokens=64
    )
    assert second.stop_reason == "end_turn"
    assert second.content[-1].text == "Hello there"
    given_back = [block.model_dump(exclude_none=True) for block in first.content]
    replayed = [question, {"role": "assistant", "content": given_back}]
    replayed.append({"role": "user", "content": [result]})
    tokens = prompt_of(second.usage)
    assert tokens == count(server, messages=replayed, tools=[WEATHER])
    # The same conversation in chat's words renders to the same prompt.
    chat_call = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    chat = [
        question,
        {
            "role": "assistant",
            "reasoning": "need weather",
            "tool_calls": [{"id": call.id, "type": "function", "function": chat_call}],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    tokenized = httpx.post(
        server.url("/tokenize"),
        json={"model": MODEL, "messages": chat, "tools": [WEATHER_TOOL]},
    )
    assert tokens == tokenized.json()["count"]


@pytest.mark.parametrize(
    "choice", [{"type": "any"}, {"type": "tool", "name": "set_mode"}]
)
def test_forced_tool_choice_calls_a_tool(claude, choice):
    """The constraint comes from structured.py, as on the chat route."""
    for seed in range(2):
        reply = claude.messages.create(
            model=MODEL,
            messages=[{"role": "user", "content": ASK}],
            tools=[SET_MODE],
            tool_choice=choice,
            max_tokens=60,
            extra_body={"max_reasoning_tokens": 2, "seed": seed},
        )
        calls = [block for block in reply.content if block.type == "tool_use"]
        assert [c.name for c in calls] == ["set_mode"]
        assert calls[0].input["mode"] in ("a", "b")
        assert reply.stop_reason == "tool_use"


def test_tool_choice_none_renders_no_tools(server, claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    messages = [{"role": "user", "content": ASK}]
    reply = claude.messages.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        max_tokens=64,
    )
    assert [block.type for block in reply.content] == ["thinking", "text"]
    without_tools = count(server, messages=messages)
    assert prompt_of(reply.usage) == without_tools
    assert count(server, messages=messages, tools=[WEATHER]) > without_tools


def test_a_stop_sequence_ends_the_text(claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = claude.messages.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        # "hard" is in the thinking: stops apply to the text only.
        stop_sequences=["hard", "ere"],
        max_tokens=64,
    )
    assert reply.stop_reason == "stop_sequence" and reply.stop_sequence == "ere"
    assert reply.content[0].thinking == "think hard"
    assert reply.content[1].text == "Hello th"


def test_running_out_of_tokens_stops_at_max_tokens(claude, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = claude.messages.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 3


def test_thinking_budget_sets_the_reasoning_effort(server):
    messages = [{"role": "user", "content": "Hi"}]

    def tokens(thinking: dict) -> int:
        return count(server, messages=messages, thinking=thinking)

    def chat_tokens(effort: str) -> int:
        body = {"model": MODEL, "messages": messages, "reasoning_effort": effort}
        return httpx.post(server.url("/tokenize"), json=body).json()["count"]

    # The efforts' words tokenize to different lengths in the tiny vocabulary.
    efforts = {effort: chat_tokens(effort) for effort in ("low", "medium", "high")}
    assert len(set(efforts.values())) == 3
    assert tokens({"type": "disabled"}) == efforts["low"]
    assert tokens({"type": "enabled", "budget_tokens": 1024}) == efforts["low"]
    assert tokens({"type": "enabled", "budget_tokens": 4095}) == efforts["low"]
    assert tokens({"type": "enabled", "budget_tokens": 4096}) == efforts["medium"]
    assert tokens({"type": "enabled", "budget_tokens": 16383}) == efforts["medium"]
    assert tokens({"type": "enabled", "budget_tokens": 16384}) == efforts["high"]


def test_an_output_format_shapes_the_text(claude):
    reply = claude.messages.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        output_config={
            "effort": "low",
            "format": {"type": "json_schema", "schema": SET_MODE["input_schema"]},
        },
        max_tokens=60,
        extra_body={"max_reasoning_tokens": 2, "seed": 1},
    )
    assert reply.stop_reason == "end_turn"
    assert json.loads(reply.content[-1].text)["mode"] in ("a", "b")


def test_thinking_given_back_follows_harmonys_history_rules(server):
    """The thinking of a finished turn is dropped; that of a turn still
    calling tools is kept."""
    thinking = {"type": "thinking", "thinking": "weigh the options", "signature": "x"}
    answer = {"type": "text", "text": "Paris."}
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
            "input": {"city": "Paris"}}  # fmt: skip
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21"}

    def turns(assistant: list, then: list) -> list:
        return [
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": then},
        ]

    again = [{"type": "text", "text": "And Rome?"}]
    finished = count(server, messages=turns([thinking, answer], again))
    assert finished == count(server, messages=turns([answer], again))
    calling = count(server, messages=turns([thinking, call], [result]), tools=[WEATHER])
    without = count(server, messages=turns([call], [result]), tools=[WEATHER])
    assert calling > without
