"""POST /v1/responses end to end: the real server, the official SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from ..conftest import MODEL
from ..helpers import script_ids
from .test_chat_completions import THINK_THEN_ANSWER, TOOL_CALL, WEATHER_TOOL

RESPONSES_TOOL = {"type": "function", **WEATHER_TOOL["function"]}
ASK = "Weather in Paris?"


def tool_loop_history(call, result: str) -> list[dict]:
    """The chat messages of a tool loop: the question, the call, its result."""
    function = {"name": call.name, "arguments": call.arguments}
    return [
        {"role": "user", "content": ASK},
        {
            "role": "assistant",
            "reasoning": "need weather",
            "tool_calls": [
                {"id": call.call_id, "type": "function", "function": function}
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": result},
    ]


def test_reasoning_then_message(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.responses.create(
        model=MODEL,
        input="Hi",
        instructions="Be brief.",
        reasoning={"effort": "low"},
        max_output_tokens=64,
        metadata={"case": "plain"},
        user="u1",
    )
    assert reply.object == "response" and reply.status == "completed"
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    reasoning, message = reply.output
    assert reasoning.content[0].type == "reasoning_text"
    assert reasoning.content[0].text == "think hard"
    assert message.content[0].type == "output_text"
    assert reply.output_text == "Hello there"
    assert reply.metadata == {"case": "plain"}
    assert reply.instructions == "Be brief."
    usage = reply.usage
    assert usage.output_tokens == len(script.ids)
    assert 0 < usage.output_tokens_details.reasoning_tokens < usage.output_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_input_renders_as_the_chat_conversation(server, client, script, tiny_tokenizer):
    """Items, instructions and effort reach the prompt the chat route renders."""
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Again"},
    ]
    chat = {"model": MODEL, "messages": messages, "reasoning_effort": "high"}
    count = httpx.post(server.url("/tokenize"), json=chat).json()["count"]
    reply = client.responses.create(
        model=MODEL,
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Hi"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello"}],
            },
            {"role": "user", "content": [{"type": "input_text", "text": "Again"}]},
        ],
        reasoning={"effort": "high"},
        max_output_tokens=64,
    )
    assert reply.usage.input_tokens == count
    low = client.responses.create(
        model=MODEL, input=reply.output_text, reasoning={"effort": "low"}
    )
    assert low.usage.input_tokens != count


def test_tool_loop_without_stored_state(server, client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, TOOL_CALL)
    first = client.responses.create(
        model=MODEL,
        input=ASK,
        tools=[RESPONSES_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
        max_output_tokens=64,
    )
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[1]
    assert call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments) == {"city": "Paris"}

    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    given_back = [item.model_dump(exclude_none=True) for item in first.output]
    result = {"type": "function_call_output", "call_id": call.call_id}
    result["output"] = '{"temp": 21}'
    second = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": ASK}, *given_back, result],
        tools=[RESPONSES_TOOL],
        max_output_tokens=64,
    )
    assert second.output_text == "Hello there"
    chat_history = tool_loop_history(call, '{"temp": 21}')
    chat = {"model": MODEL, "messages": chat_history, "tools": [WEATHER_TOOL]}
    count = httpx.post(server.url("/tokenize"), json=chat).json()["count"]
    assert second.usage.input_tokens == count


def test_named_tool_choice_calls_that_tool(client):
    """The constraint comes from structured.py, as on the chat route."""
    set_mode = {
        "type": "function",
        "name": "set_mode",
        "parameters": {
            "type": "object",
            "properties": {"mode": {"enum": ["a", "b"]}},
            "required": ["mode"],
            "additionalProperties": False,
        },
    }
    for seed in range(2):
        reply = client.responses.create(
            model=MODEL,
            input=ASK,
            tools=[RESPONSES_TOOL, set_mode],
            tool_choice={"type": "function", "name": "set_mode"},
            max_output_tokens=60,
            extra_body={"max_reasoning_tokens": 2, "seed": seed},
        )
        calls = [item for item in reply.output if item.type == "function_call"]
        assert [c.name for c in calls] == ["set_mode"]
        assert json.loads(calls[0].arguments)["mode"] in ("a", "b")


def test_running_out_of_tokens_is_incomplete(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    reply = client.responses.create(model=MODEL, input="Hi", max_output_tokens=3)
    assert reply.status == "incomplete"
    assert reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage.output_tokens == 3


def test_errors_arrive_as_sdk_exceptions(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="gpt-4o", input="Hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as schema:
        client.responses.create(
            model=MODEL,
            input="Hi",
            text={
                "format": {
                    "type": "json_schema",
                    "name": "x",
                    "schema": {"type": "objekt"},
                }
            },
        )
    assert "objekt" in schema.value.message
    with pytest.raises(openai.BadRequestError) as image:
        client.responses.create(
            model=MODEL,
            input=[
                {"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}
            ],
        )
    assert image.value.param.startswith("input")
    with pytest.raises(openai.BadRequestError) as named:
        client.responses.create(
            model=MODEL,
            input="Hi",
            tools=[RESPONSES_TOOL],
            tool_choice={"type": "function", "name": "nope"},
        )
    assert named.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as too_long:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=5000)
    assert too_long.value.code == "context_length_exceeded"


def without_ids(response) -> dict:
    """A response's content: its ids and time differ from request to request."""
    data = response.model_dump(exclude={"id", "created_at"})
    # The repeated prompt is found in the prefix cache the second time.
    data["usage"].pop("input_tokens_details")
    for item in data["output"]:
        item.pop("id")
        item.pop("parsed_arguments", None)  # the stream helper's own field
        assert item.pop("call_id", "call") != ""
        for part in item.get("content") or []:
            part.pop("parsed", None)  # the stream helper's own field
    return data


@pytest.mark.parametrize("forced", [THINK_THEN_ANSWER, TOOL_CALL])
def test_streamed_response_equals_the_whole_one(client, script, tiny_tokenizer, forced):
    script.ids = script_ids(tiny_tokenizer, forced)
    args = dict(model=MODEL, input=ASK, tools=[RESPONSES_TOOL], max_output_tokens=64)
    whole = client.responses.create(**args)
    with client.responses.stream(**args) as stream:
        events = list(stream)
        streamed = stream.get_final_response()
    assert without_ids(streamed) == without_ids(whole)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds.count("response.output_item.added") == len(whole.output)
    assert kinds.count("response.output_item.done") == len(whole.output)
    deltas = {"reasoning": "", "message": "", "function_call": ""}
    kind_of = {
        "response.reasoning_text.delta": "reasoning",
        "response.output_text.delta": "message",
        "response.function_call_arguments.delta": "function_call",
    }
    for event in events:
        if event.type in kind_of:
            deltas[kind_of[event.type]] += event.delta
    for item in whole.output:
        if item.type == "function_call":
            assert deltas["function_call"] == item.arguments
        else:
            assert deltas[item.type] == item.content[0].text


def test_a_stream_cut_short_ends_incomplete(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    # Cut inside the reasoning: the open reasoning item ends incomplete.
    budget = len(script_ids(tiny_tokenizer, "<|channel|>analysis<|message|>think"))
    with client.responses.stream(
        model=MODEL, input="Hi", max_output_tokens=budget
    ) as s:
        events = list(s)
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.status == "incomplete"
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output[0].status == "incomplete"


def test_text_format_json_schema_shapes_the_message(client):
    schema = {
        "type": "object",
        "properties": {"mode": {"enum": ["a", "b"]}},
        "required": ["mode"],
        "additionalProperties": False,
    }
    text = {"format": {"type": "json_schema", "name": "m", "schema": schema}}
    reply = client.responses.create(
        model=MODEL,
        input="Hi",
        text=text,
        max_output_tokens=60,
        extra_body={"max_reasoning_tokens": 2, "seed": 1},
    )
    assert reply.status == "completed"
    assert json.loads(reply.output_text)["mode"] in ("a", "b")
    assert reply.text.format.type == "json_schema"


def test_a_generation_failing_mid_stream_ends_failed(client, script, tiny_tokenizer):
    script.ids = script_ids(tiny_tokenizer, THINK_THEN_ANSWER)
    script.fail_after = 3
    with client.responses.stream(model=MODEL, input="Hi", max_output_tokens=50) as s:
        events = list(s)
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error.code == "engine_error"
    assert "Generation failed" in failed.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
